# The project's two commands: `make demo` and `make test`. Both create .venv on first use
# (Python 3.11, torch pinned by constraints.txt) and reuse it afterwards.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo lint test test-apps dist clean

# Integration environments that `make test-apps` builds before running tests/apps (MONAI Label and MONAI
# Deploy live in venvs of their own because their pins clash with the main one). Building them takes about
# 9 minutes on the 2-core machine, which would push `make test` past 15 minutes, so CI (.ci/run) runs
# `make test-apps` as a second step; in `make test` the app tests skip with a reason. Each app venv is first
# seeded with hard links to .venv's torch stack (.ci/seed_venv.py: about 5.3 GB of CUDA libraries that would
# otherwise be installed four times over and fill the CI machine's disk).
APP_ENVS :=
APP_ENVS += deploy-env
APP_ENVS += label-env
APP_ENVS += share-env
APP_ENVS += dicom-tools
APP_ENVS += pacs-tools

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/monai-fusion demo --overwrite

# The linter and formatter (ruff, configured in pyproject.toml) run first: a violation fails `make test`.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The console pages' checks (marker console_pages: every `$ monai-fusion ...` example of docs/cli.md and of the
# bundle's README run as its own process, about 4 minutes of torch/MONAI imports on the 2-core machine) run in
# `make test-apps`, CI's second step, to keep `make test` under 15 minutes.
test: $(STAMP) lint
	$(BIN)/python -m pytest -m "not console_pages" $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo 'pytest collected no tests' >&2; exit 1; fi; exit $$rc

test-apps: $(STAMP) $(APP_ENVS)
	MONAI_FUSION_REQUIRE_APPS=1 $(BIN)/python -m pytest tests/apps $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo 'pytest collected no app tests' >&2; exit 1; fi; \
	if [ $$rc -ne 0 ]; then exit $$rc; fi; \
	$(BIN)/python -m pytest -m console_pages tests/docs $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo 'pytest collected no console-page tests' >&2; exit 1; fi; exit $$rc

# The sdist and the wheel of monai-fusion (shipped weights included as package data; the version is
# monai_fusion.__version__, which the bundle's required_packages_version names), checked with twine.
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --no-isolation --outdir dist .
	$(BIN)/twine check dist/*

clean:
	rm -rf $(VENV) $(SHARE_VENV) demo_output .pytest_cache dist

# MONAI Label app (apps/monailabel, docs/label.md): monailabel 0.8.5 needs pydicom<3, which holds
# numpy<2, so it gets a venv of its own with monai-fusion installed editable beside it (extra `bundle`: the app
# trains through the bundle's train.json, whose TensorBoardStatsHandler needs tensorboard).
LABEL_VENV := .venv-label
LABEL_STAMP := $(LABEL_VENV)/.installed
.PHONY: label-env

label-env: $(LABEL_STAMP)

$(LABEL_STAMP): $(STAMP) .ci/seed_venv.py setup.cfg pyproject.toml constraints.txt apps/monailabel/requirements.txt
	test -x $(LABEL_VENV)/bin/python || $(PYTHON) -m venv $(LABEL_VENV)
	$(BIN)/python .ci/seed_venv.py $(VENV) $(LABEL_VENV)
	$(LABEL_VENV)/bin/python -m pip install -q --upgrade pip
	$(LABEL_VENV)/bin/python -m pip install -q --no-cache-dir -c constraints.txt -r apps/monailabel/requirements.txt -e ".[bundle]"
	touch $(LABEL_STAMP)

# MONAI Deploy app (apps/deploy, docs/deploy.md): monai-deploy-app-sdk 4.0 with holoscan-cu13, plus
# holoscan-cli 3.11 for the `monai-deploy` command (which holds packaging<26); a venv of its own
# keeps its protobuf/ml_dtypes/packaging pins out of the main one.
DEPLOY_VENV := .venv-deploy
DEPLOY_STAMP := $(DEPLOY_VENV)/.installed
.PHONY: deploy-env

deploy-env: $(DEPLOY_STAMP)

$(DEPLOY_STAMP): $(STAMP) .ci/seed_venv.py setup.cfg pyproject.toml constraints.txt apps/deploy/requirements.txt apps/deploy/requirements-env.txt
	test -x $(DEPLOY_VENV)/bin/python || $(PYTHON) -m venv $(DEPLOY_VENV)
	$(BIN)/python .ci/seed_venv.py $(VENV) $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/python -m pip install -q --upgrade pip
	$(DEPLOY_VENV)/bin/python -m pip install -q --no-cache-dir -c constraints.txt -r apps/deploy/requirements-env.txt -e .
	touch $(DEPLOY_STAMP)

# Bundle sharing (tests/apps/test_sharing.py, docs/bundle.md "Sharing this bundle"): a venv with only what a user
# of the shared bundle installs: the wheel that `make dist` builds and the packages the bundle metadata pins
# (`python -m monai_fusion.bundle.sharing requirements`), from the same local wheel cache as .venv.
SHARE_VENV := .venv-share
SHARE_STAMP := $(SHARE_VENV)/.installed
META := bundles/multimodal_fusion/configs/metadata.json
.PHONY: share-env

share-env: $(SHARE_STAMP)

$(SHARE_STAMP): $(STAMP) .ci/seed_venv.py setup.cfg pyproject.toml constraints.txt $(META)
	$(MAKE) dist
	test -x $(SHARE_VENV)/bin/python || $(PYTHON) -m venv $(SHARE_VENV)
	$(BIN)/python .ci/seed_venv.py $(VENV) $(SHARE_VENV)
	$(SHARE_VENV)/bin/python -m pip install -q --upgrade pip
	$(BIN)/python -m monai_fusion.bundle.sharing requirements $(META) > $(SHARE_VENV)/requirements.txt
	$(SHARE_VENV)/bin/python -m pip install -q --no-cache-dir -c constraints.txt dist/monai_fusion-*.whl -r $(SHARE_VENV)/requirements.txt
	touch $(SHARE_STAMP)

# DICOM validators (tests/apps/test_dicom_validator.py): dicom3tools' dciodvfy and dcmtk's dcm2pnm, Debian packages
# (apt-get needs root, as on the CI machine); nothing is installed when both are already on the PATH.
.PHONY: dicom-tools

dicom-tools:
	command -v dciodvfy >/dev/null && command -v dcm2pnm >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dicom3tools dcmtk; }

# A real PACS for the app tests (tests/apps/conftest.py starts it on 127.0.0.1 with a temporary storage): Orthanc
# and its DICOMweb plugin, Debian packages; nothing is installed when both are present. The Debian service is not
# used (the tests run their own Orthanc process, with a bind shim built by gcc so it listens on 127.0.0.1 only).
.PHONY: pacs-tools

pacs-tools:
	test -x /usr/sbin/Orthanc && dpkg -s orthanc-dicomweb >/dev/null 2>&1 && command -v cc >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq orthanc orthanc-dicomweb gcc; }
