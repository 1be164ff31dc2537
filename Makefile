# The project's two commands: `make demo` and `make test`. Both create .venv on first use
# (Python 3.11, torch pinned by constraints.txt) and reuse it afterwards.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test clean

# Integration environments that `make test` builds before pytest (MONAI Label, MONAI Deploy live
# in venvs of their own because their pins clash with the main one). Each adds itself below.
APP_ENVS :=

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/monai-fusion demo --overwrite

test: $(STAMP) $(APP_ENVS)
	MONAI_FUSION_REQUIRE_APPS=1 $(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo 'pytest collected no tests' >&2; exit 1; fi; exit $$rc

clean:
	rm -rf $(VENV) demo_output .pytest_cache
