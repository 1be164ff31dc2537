"""The app's settings (``--conf KEY VALUE`` of ``monailabel start_server``) and how a method name becomes a fuser.

Settings (all optional):

- ``bundle``: the MONAI bundle folder (default: ``bundles/multimodal_fusion`` of the checkout that holds
  the app, else of the checkout monai-fusion is installed from in editable mode).
- ``model_dir``: where training writes ``model.pt``/``checkpoint_last.pt`` and where infer looks for
  ``model.pt`` (default: ``<bundle>/models``, the files ``python -m monai.bundle run training`` writes).
- ``method``: ``auto`` (default: the bundle network when ``<model_dir>/model.pt`` exists, else the
  shipped default model with the package's weights, which the result says), ``bundle`` (the bundle
  network; the server refuses to start without ``model.pt``), ``default`` (the shipped model) or a
  classical registry name (``laplacian``, ``max``, ...).
- ``register``: ``true`` (default) registers the other image onto the MRI first (as the CLI does).
- ``batch_size``: slices per fuser call for volumes (default 16).
- ``network_def#<arg>``: an override of the bundle's ``network_def`` (e.g. ``network_def#channels 8``),
  used by both training and inference so the weights always fit the network built for them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from monai_fusion.fusers import Fuser, available_fusers, get_fuser
from monai_fusion.utils.constants import DEFAULT_METHOD
from monai_fusion.utils.errors import FusionInputError

__all__ = [
    "NETWORK_METHODS",
    "SHIPPED_METHODS",
    "FusionAppConfig",
    "parse_value",
    "parse_bool",
    "find_bundle",
    "bundle_network_args",
]

#: Registry names of networks whose ``model.pt`` the app trains and loads (``method=bundle``).
NETWORK_METHODS: tuple[str, ...] = ("default", "poster", "msrpan", "msdra")
#: Network methods the app runs by name with the package's shipped weights (the default model).
SHIPPED_METHODS: tuple[str, ...] = (DEFAULT_METHOD,)
#: ``network_def`` classes the app loads ``model.pt`` into: the bundle's WeightMapFusionNet (fuser ``default``)
#: and TwoSourceFusionNet, a bundle that wraps the poster/MSRPAN/MSDRA networks (fuser ``network_def#network``).
_NETWORK_TARGETS: tuple[str, ...] = ("WeightMapFusionNet", "TwoSourceFusionNet")


def parse_value(text: Any) -> Any:
    """A ``--conf``/request value: JSON when it parses (``8``, ``true``, ``[64, 64]``), else the string."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_bool(value: Any, what: str) -> bool:
    """``true``/``false`` (any case), ``1``/``0`` or a bool.

    Raises:
        FusionInputError: any other value, naming the option.
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise FusionInputError(f"{what}={value!r}: expected true or false")


def find_bundle(app_dir: str | os.PathLike) -> Path:
    """The default bundle folder: ``bundles/multimodal_fusion`` beside the app's checkout or monai-fusion's.

    Raises:
        FusionInputError: neither place holds ``configs/train.json`` (pass ``--conf bundle DIR``).
    """
    import monai_fusion

    candidates = [
        Path(app_dir).resolve().parents[1] / "bundles" / "multimodal_fusion",
        Path(monai_fusion.__file__).resolve().parents[1] / "bundles" / "multimodal_fusion",
    ]
    for cand in candidates:
        if (cand / "configs" / "train.json").is_file():
            return cand
    raise FusionInputError(
        "no MONAI bundle found at "
        + " or ".join(map(str, candidates))
        + "; pass --conf bundle <folder with configs/train.json>"
    )


def bundle_network_args(bundle: Path, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The bundle's ``network_def`` (from ``configs/inference.json``) as ``get_fuser`` arguments.

    Args:
        bundle: the bundle folder.
        overrides: ``{"network_def#channels": 8, ...}`` applied first.

    Returns:
        ``{"name": "default", "channels": 16, "full_channels": 8, ...}``: the fuser's registry name
        and the network's constructor arguments.

    Raises:
        FusionInputError: the config is missing or its ``network_def`` is not a ``WeightMapFusionNet``
            (or a ``TwoSourceFusionNet``).
    """
    from monai.bundle import ConfigParser

    path = bundle / "configs" / "inference.json"
    if not path.is_file():
        raise FusionInputError(f"bundle {bundle}: {path} not found")
    parser = ConfigParser()
    parser.read_config(str(path))
    parser.update(dict(overrides))
    raw = parser.get("network_def")
    target = str(raw.get("_target_", "")).rsplit(".", 1)[-1] if isinstance(raw, dict) else ""
    if target not in _NETWORK_TARGETS:
        raise FusionInputError(f"{path}: network_def must be a {' or '.join(_NETWORK_TARGETS)} (got {raw!r})")
    args = {k: parser.get_parsed_content(f"network_def#{k}") for k in raw if not k.startswith("_")}
    if target == "WeightMapFusionNet":
        return {"name": "default", **args}
    name = args.pop("network", "poster")
    if name not in NETWORK_METHODS:
        raise FusionInputError(f"{path}: network_def#network={name!r} is not one of {', '.join(NETWORK_METHODS)}")
    return {"name": name, **args}


class FusionAppConfig:
    """The parsed ``--conf`` settings, with the method resolved per request.

    Args:
        app_dir: the app folder.
        conf: ``--conf`` pairs as MONAI Label passes them (strings).

    Raises:
        FusionInputError: an unknown method, a missing bundle, or ``method=bundle`` without ``model.pt``.
    """

    def __init__(self, app_dir: str | os.PathLike, conf: Mapping[str, Any]) -> None:
        self.bundle = Path(conf["bundle"]).resolve() if conf.get("bundle") else find_bundle(app_dir)
        if not (self.bundle / "configs" / "train.json").is_file():
            raise FusionInputError(f"--conf bundle {self.bundle}: configs/train.json not found there")
        self.model_dir = Path(conf["model_dir"]).resolve() if conf.get("model_dir") else self.bundle / "models"
        self.register = parse_bool(conf.get("register", "true"), "--conf register")
        self.batch_size = int(parse_value(conf.get("batch_size", 16)))
        if self.batch_size < 1:
            raise FusionInputError(f"--conf batch_size {self.batch_size}: expected a positive integer")
        self.network_overrides = {k: parse_value(v) for k, v in conf.items() if k.startswith("network_def#")}
        self.method = str(conf.get("method", "auto")).strip().lower()
        self.check_method(self.method, "--conf method")
        if self.method == "bundle" and not self.model_path.is_file():
            raise FusionInputError(
                f"--conf method bundle: {self.model_path} does not exist; train first (python -m "
                "monai.bundle run training, or POST /train/fusion to a server started with method "
                "auto) or choose a classical method, e.g. --conf method laplacian"
            )
        self._fusers: dict[tuple[Any, ...], Fuser] = {}

    @property
    def model_path(self) -> Path:
        """``<model_dir>/model.pt``: the trained bundle network."""
        return self.model_dir / "model.pt"

    @staticmethod
    def check_method(method: str, what: str) -> None:
        """Refuse a method this app cannot run.

        Raises:
            FusionInputError: network names (they run as ``bundle``) and unknown names.
        """
        if method in ("auto", "bundle"):
            return
        if method in NETWORK_METHODS and method not in SHIPPED_METHODS:
            raise FusionInputError(
                f"{what} {method}: networks run here as the bundle's trained network; use method bundle (or auto)"
            )
        if method not in available_fusers():
            choices = [
                "auto",
                "bundle",
                *(m for m in available_fusers() if m not in NETWORK_METHODS or m in SHIPPED_METHODS),
            ]
            raise FusionInputError(f"{what} {method!r}: choose one of {', '.join(choices)}")

    def resolve(self, method: str | None = None) -> str:
        """The method a request runs: ``bundle`` or a registry name (``auto`` decided now, by the model file).

        Raises:
            FusionInputError: as :meth:`check_method`, or ``bundle`` without ``model.pt``.
        """
        m = (method or self.method).strip().lower()
        self.check_method(m, "method")
        if m == "auto":
            return "bundle" if self.model_path.is_file() else DEFAULT_METHOD
        if m == "bundle" and not self.model_path.is_file():
            raise FusionInputError(f"method bundle: {self.model_path} does not exist; train first (POST /train/fusion)")
        return m

    def fuser(self, method: str, device: str = "cpu") -> tuple[Fuser, dict[str, Any]]:
        """The fuser of a resolved method (cached; the bundle network is reloaded when ``model.pt`` changes).

        Returns:
            The fuser and a description for the result (method, and for the bundle the weights and network).
        """
        if method != "bundle":
            key: tuple[Any, ...] = (method, device)
            info: dict[str, Any] = {"method": method}
            if method in SHIPPED_METHODS:  # a network with the package's weights: said, and run on the device
                from monai_fusion.fusers.learned import DEFAULT_WEIGHTS

                info["weights"] = f"shipped ({DEFAULT_WEIGHTS.name})"
            if key not in self._fusers:
                self._fusers[key] = get_fuser(method, device=device) if method in SHIPPED_METHODS else get_fuser(method)
            return self._fusers[key], info
        stat = self.model_path.stat()
        args = bundle_network_args(self.bundle, self.network_overrides)
        key = ("bundle", device, str(self.model_path), stat.st_mtime_ns, stat.st_size, json.dumps(args, sort_keys=True))
        info = {"method": "bundle", "weights": str(self.model_path), "network": args}
        if key not in self._fusers:
            self._fusers = {k: v for k, v in self._fusers.items() if k[0] != "bundle"}
            kwargs = dict(args)
            name = kwargs.pop("name")
            self._fusers[key] = get_fuser(name, weights=str(self.model_path), device=device, **kwargs)
        return self._fusers[key], info
