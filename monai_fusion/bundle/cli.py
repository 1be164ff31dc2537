"""The bundle's command-line glue: ``python -m monai.bundle`` argv, override spelling, one-line errors."""

from __future__ import annotations

import ast
import difflib
import inspect
import sys
from pathlib import Path
from pydoc import locate
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..utils.errors import FusionInputError, find_input_error

__all__ = [
    "parse_bundle_argv",
    "bundle_root_from_cli",
    "check_cli_overrides",
    "check_training_settings",
    "install_input_error_hook",
]


#: ``monai.bundle run``'s own parameters, in positional order.
_RUN_PARAMS = ("run_id", "init_id", "final_id", "meta_file", "config_file", "logging_file", "tracking", "args_file")


def parse_bundle_argv(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    """Read a ``python -m monai.bundle <command> ...`` command line (``sys.argv`` by default).

    Returns:
        ``{"command", "params", "overrides"}`` for ``run``/``run_workflow`` (``params``: ``run``'s own
        arguments, positional ones included; ``overrides``: every other ``--key value`` as given), or
        ``None`` when this process was not started as ``monai.bundle``.
    """
    argv = list(sys.argv if argv is None else argv)
    if not argv or not Path(argv[0]).as_posix().endswith("monai/bundle/__main__.py") or len(argv) < 2:
        return None
    command, rest = argv[1], argv[2:]
    positional: list[str] = []
    named: dict[str, str] = {}
    i = 0
    while i < len(rest):
        tok = rest[i]
        if tok.startswith("--") and len(tok) > 2:
            key, eq, val = tok[2:].partition("=")
            if not eq:
                if i + 1 < len(rest) and not rest[i + 1].startswith("--"):
                    val, i = rest[i + 1], i + 1
                else:
                    val = "True"
            named[key] = val
        elif tok != "--":
            positional.append(tok)
        i += 1
    params: dict[str, Any] = dict(zip(_RUN_PARAMS, positional))
    overrides: dict[str, str] = {}
    for key, val in named.items():
        norm = key.replace("-", "_")
        if norm in _RUN_PARAMS:
            params[norm] = val
        else:
            overrides[key] = val
    return {"command": command, "params": params, "overrides": overrides}


def _file_list(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    text = str(value).strip()
    if text[:1] in "[(":
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return [text]
        return [str(v) for v in (parsed if isinstance(parsed, (list, tuple)) else [parsed])]
    return [text]


def bundle_root_from_cli(argv: Sequence[str] | None = None, default: str = ".") -> str:
    """The bundle folder of the ``--config_file`` that ``python -m monai.bundle`` was given.

    ``.../multimodal_fusion/configs/train.json`` gives ``.../multimodal_fusion`` (absolute), wherever the command runs;
    ``default`` when the process is not a ``monai.bundle`` command (e.g. a workflow built from Python).
    """
    cmd = parse_bundle_argv(argv)
    files = _file_list(cmd["params"]["config_file"]) if cmd and cmd["params"].get("config_file") else []
    if not files:
        return default
    parent = Path(files[0]).resolve().parent
    return str(parent.parent if parent.name == "configs" else parent)


def _config_ids(node: Any, prefix: str = "") -> Iterable[str]:
    if isinstance(node, dict):
        items: Iterable[tuple[Any, Any]] = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return
    for k, v in items:
        key = f"{prefix}{k}"
        yield key
        yield from _config_ids(v, key + "#")


def _accepts_argument(config: dict, parent_id: str, name: str) -> bool:
    node: Any = config
    for part in parent_id.split("#") if parent_id else []:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    if not isinstance(node, dict) or not isinstance(node.get("_target_"), str):
        return False
    from monai.bundle import ConfigComponent

    obj = locate(ConfigComponent(node).resolve_module_name())
    if obj is None:
        return False
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return False
    if name in params:
        return True
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return False
    # ``**kwargs`` takes any name: refuse only what looks like a misspelling of a known argument
    return not difflib.get_close_matches(name, [*params, *node], n=1, cutoff=0.8)


def check_cli_overrides(argv: Sequence[str] | None = None) -> None:
    """Refuse ``python -m monai.bundle run`` overrides and run ids that the configs do not define.

    ``monai.bundle`` silently adds an override with a misspelt id (``--epocs 1`` trains with the default
    epochs). This check, run from the configs' ``initialize``, compares every ``--id value`` of the command
    line with the ids of the given config files (and the metadata): an id is accepted when it exists, or when
    its parent is a component whose ``_target_`` takes that argument (for a ``**kwargs`` target: any name that
    is not a near-miss of a known argument, e.g. ``batchsize`` for ``batch_size``). It does nothing for
    workflows built from Python (no ``monai.bundle`` command line) or for ``--args_file`` runs.

    Raises:
        FusionInputError: naming the unknown id and the closest known ones.
    """
    cmd = parse_bundle_argv(argv)
    if cmd is None or cmd["command"] not in ("run", "run_workflow") or not cmd["params"].get("config_file"):
        return
    from monai.bundle import ConfigParser

    files = _file_list(cmd["params"]["config_file"])
    config = ConfigParser.load_config_files(files)
    meta_file = cmd["params"].get("meta_file") or str(Path(files[0]).parent / "metadata.json")
    ids = set(_config_ids(config))
    meta_files = [f for f in _file_list(meta_file) if Path(f).is_file()]
    if meta_files:
        ids |= {f"_meta_#{k}" for k in _config_ids(ConfigParser.load_config_files(meta_files))} | {"_meta_"}
    where = ", ".join(files)
    for raw in cmd["overrides"]:
        key = raw.replace("::", "#").replace("-", "_")  # fire turns every '-' of an option name into '_'
        parent, _, name = key.rpartition("#")
        if key in ids or _accepts_argument(config, parent, name):
            continue
        if "-" in raw:
            head = raw.replace("::", "#").split("#")
            owner = "#".join(head[: next(i for i, part in enumerate(head) if "-" in part)])
            fix = f"; set the whole --{owner} instead (its value may hold '-')" if owner else ""
            raise FusionInputError(
                f"override --{raw}: python -m monai.bundle (fire) reads '-' in an option name "
                f"as '_', so this would set '{key}', which is not in {where}{fix}"
            )
        siblings = sorted(i.rpartition("#")[2] for i in ids if i.rpartition("#")[0] == parent)
        close = [f"{parent}#{c}" if parent else c for c in difflib.get_close_matches(name, siblings, n=3, cutoff=0.6)]
        hint = f"; did you mean {' or '.join('--' + c for c in close)}?" if close else ""
        raise FusionInputError(f"unknown override --{raw}: no id '{key}' in {where}{hint}")
    run_id = cmd["params"].get("run_id")
    if run_id is not None and run_id not in config:

        def runs(v: Any, depth: int = 0) -> bool:  # a list of expressions (not only imports) or a reference to one
            if isinstance(v, str):  # "run": "@training" runs; "train_seed": "@seed" does not
                return v.startswith("@") and depth < 8 and runs(config.get(v[1:].replace("::", "#")), depth + 1)
            return (
                isinstance(v, list)
                and bool(v)
                and all(isinstance(e, str) and e.startswith("$") for e in v)
                and not all(e.split()[0] in ("$import", "$from") for e in v)
            )

        runnable = sorted(k for k, v in config.items() if runs(v) and k not in ("initialize", "finalize"))
        raise FusionInputError(f"run id '{run_id}' is not in {where}; choose one of {', '.join(runnable)}")


def check_training_settings(**settings: Any) -> dict[str, Any]:
    """Check the settings of a bundle run by name before anything is built.

    ``epochs``, ``batch_size``, ``val_batch_size``, ``val_interval``: positive integers; ``epoch_length`` and
    ``max_*``: positive integers or None; ``num_workers``: an integer >= 0; ``learning_rate``: > 0;
    ``val_fraction``: in [0, 1); ``patch_size``: two positive integers; ``train_split``: ``train`` or ``all``;
    ``fold``/``num_folds``: integers or None; ``resume``, ``register``, ``amp``, ``written_loss``:
    True or False (``python -m monai.bundle`` reads ``--resume False`` as a bool but ``false`` as a string).
    Other names pass unchecked.

    Returns:
        The settings as given.

    Raises:
        FusionInputError: naming the option and the value that does not fit.
    """

    def is_int(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    def is_num(v: Any) -> bool:
        return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)

    checks: dict[str, tuple[Callable[[Any], bool], str]] = {
        "positive": (lambda v: is_int(v) and v > 0, "a positive integer"),
        "optional": (lambda v: v is None or is_int(v) and v > 0, "a positive integer or null"),
        "count": (lambda v: is_int(v) and v >= 0, "an integer >= 0"),
        "rate": (lambda v: is_num(v) and v > 0, "a positive number"),
        "fraction": (lambda v: is_num(v) and 0 <= v < 1, "a number in [0, 1)"),
        "patch": (
            lambda v: isinstance(v, (list, tuple)) and len(v) == 2 and all(is_int(x) and x > 0 for x in v),
            "two positive integers, e.g. --patch_size '[128, 128]'",
        ),
        "flag": (lambda v: isinstance(v, bool), "True or False (capitalised)"),
        "split": (lambda v: v in ("train", "all"), "'train' (the training cases of the split or fold) or 'all'"),
        "fold": (lambda v: v is None or is_int(v) and v >= 0, "an integer >= 0 or null"),
    }
    kinds = {
        "epochs": "positive",
        "batch_size": "positive",
        "val_batch_size": "positive",
        "val_interval": "positive",
        "epoch_length": "optional",
        "num_workers": "count",
        "learning_rate": "rate",
        "val_fraction": "fraction",
        "patch_size": "patch",
        "resume": "flag",
        "register": "flag",
        "amp": "flag",
        "written_loss": "flag",
        "train_split": "split",
        "fold": "fold",
        "num_folds": "optional",
    }
    for name, value in settings.items():
        kind = kinds.get(name, "optional" if name.startswith("max_") else None)
        if kind is not None and not checks[kind][0](value):
            raise FusionInputError(f"--{name} {value!r}: expected {checks[kind][1]}")
    return settings


def install_input_error_hook() -> None:
    """Make an uncaught :class:`~monai_fusion.utils.FusionInputError` end the process with one line.

    ``monai.bundle`` wraps failures of config items in ``RuntimeError("Failed to instantiate ...")`` and prints
    the whole traceback. With this hook (installed by the configs' ``initialize``), an error whose chain holds
    a ``FusionInputError`` prints ``error: <message>`` on stderr (exit status 1); any other error keeps its
    full traceback. Idempotent.
    """
    previous = sys.excepthook
    if getattr(previous, "_fusion_input_errors", False):
        return

    def hook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        found = find_input_error(exc)
        if found is None:
            previous(exc_type, exc, tb)
            return
        print(f"error: {found}", file=sys.stderr)

    hook._fusion_input_errors = True  # type: ignore[attr-defined]
    sys.excepthook = hook
