"""The ``fusion`` train task: the bundle's training (``configs/train.json`` through ``monai.bundle``) on the datastore.

Every complete 2D study of the datastore (``<study>_MRI.png`` + ``<study>_CT|PET|SPECT.png``) is linked into
a temporary folder in the Whole Brain Atlas layout (``<PAIR>/<MODALITY>/<study>.png``), which the bundle's
``bundle_datalist`` reads and splits by case (``<case><slice:3>`` study names keep a case's slices together).
The request's options override the bundle's settings of the same name (``epochs``, ``batch_size``, ...);
the checkpoints go to the app's ``model_dir``, where the infer task picks up ``model.pt``.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.train import TrainTask

from monai_fusion.utils.errors import FusionInputError

from ..config import FusionAppConfig, parse_bool, parse_value
from ..studies import StudyPair, study_pairs

__all__ = ["FusionTrainTask", "DEFAULT_TRAIN_OPTIONS", "APP_KEYS", "RESERVED_KEYS", "link_atlas_layout"]

logger = logging.getLogger(__name__)

#: Options shown by ``/info/`` (and the clients' option panels), with the app's defaults.
DEFAULT_TRAIN_OPTIONS: dict[str, Any] = {
    "epochs": 10,
    "val_interval": 1,
    "batch_size": 8,
    "learning_rate": 0.003,
    "patch_size": [128, 128],
    "pair_types": "all",
    "val_fraction": 0.2,
    "num_workers": 0,
    "resume": True,
}
#: Request keys that MONAI Label itself adds; not bundle settings.
APP_KEYS: frozenset[str] = frozenset(
    {"model", "bundle_path", "device", "gpus", "multi_gpu", "local_rank", "run_id", "name", "client_id"}
)
#: Bundle settings the app sets itself (paths), refused in a request.
RESERVED_KEYS: frozenset[str] = frozenset(
    {"bundle_root", "ckpt_dir", "output_dir", "tensorboard_dir", "dataset_dir", "device", "network_def"}
)


def _settings_of(config: Mapping[str, Any]) -> set[str]:
    """Top-level ids of ``train.json`` that are plain settings (numbers, strings, lists, null)."""
    out = set()
    for k, v in config.items():
        if isinstance(v, str) and v.startswith(("$", "@", "%")):
            continue
        if v is None or isinstance(v, (bool, int, float, str, list)):
            out.add(k)
    return out - RESERVED_KEYS - {"imports", "initialize", "training", "run", "finalize"}


def link_atlas_layout(pairs: list[StudyPair], root: Path) -> Path:
    """Link each 2D study into ``<root>/<PAIR>/MRI/<study><ext>`` and ``<root>/<PAIR>/<MODALITY>/<study><ext>``.

    Returns:
        ``root``.
    """
    for pair in pairs:
        for src, mod in ((pair.mri, "MRI"), (pair.other, pair.modality)):
            target = root / pair.pair_type / mod / f"{pair.study}{src.suffix.lower()}"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(Path(src).resolve())
    return root


class FusionTrainTask(TrainTask):
    """Run the bundle's ``train.json`` (``monai.bundle.ConfigWorkflow``) on the datastore's 2D studies.

    Args:
        settings: the app's parsed ``--conf`` settings (bundle, model folder, network overrides).
        description: shown by ``/info/``.
    """

    def __init__(self, settings: FusionAppConfig, description: str) -> None:
        super().__init__(description)
        self.settings = settings
        self._stats: dict[str, Any] = {}

    def config(self) -> dict[str, Any]:
        """The options a client may change, with the app's defaults."""
        return dict(DEFAULT_TRAIN_OPTIONS)

    def stats(self) -> dict[str, Any]:
        """The last run's summary (empty before the first run)."""
        return dict(self._stats)

    def overrides(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """The bundle overrides of a request: its settings (checked against ``train.json``) and the app's paths.

        Raises:
            FusionInputError: a key that ``train.json`` does not define, or one the app sets itself.
        """
        from monai.bundle import ConfigParser

        config = ConfigParser.load_config_file(str(self.settings.bundle / "configs" / "train.json"))
        allowed = _settings_of(config)
        out: dict[str, Any] = {}
        for key, value in {**DEFAULT_TRAIN_OPTIONS, **request}.items():
            if key in APP_KEYS:
                continue
            if key in RESERVED_KEYS or key.startswith("network_def"):
                raise FusionInputError(
                    f"train option {key!r} is set by the app (network_def: --conf network_def#ARG "
                    "VALUE, so that infer builds the same network)"
                )
            if key not in allowed:
                raise FusionInputError(
                    f"train option {key!r} is not a setting of {self.settings.bundle}/configs/"
                    f"train.json; choose among {', '.join(sorted(allowed))}"
                )
            out[key] = parse_value(value)
        for key in ("resume", "register", "amp"):
            if key in out:
                out[key] = parse_bool(out[key], key)
        device = request.get("device") or "cpu"  # MONAI Label sends a name or a list of names
        device = str(device[0] if isinstance(device, (list, tuple)) and device else device)
        out["device"] = (
            "$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')"
            if device.startswith("cuda")
            else "$torch.device('cpu')"
        )
        out.update(self.settings.network_overrides)
        out["bundle_root"] = str(self.settings.bundle)
        out["ckpt_dir"] = str(self.settings.model_dir)
        out["output_dir"] = str(self.settings.model_dir.parent / "eval")
        return out

    def __call__(self, request: Mapping[str, Any], datastore: Datastore) -> dict[str, Any]:
        """Train on the datastore's 2D studies.

        Returns:
            A summary: pairs used, studies skipped, epochs run, the best key metric, the model file and the time.

        Raises:
            FusionInputError: bad options or no 2D study in the datastore.
        """
        from monai.bundle import ConfigWorkflow

        start = time.perf_counter()
        overrides = self.overrides(request)
        pairs, skipped = study_pairs((i, datastore.get_image_uri(i)) for i in sorted(datastore.list_images()))
        volumes = [p.study for p in pairs if p.volume]
        pairs = [p for p in pairs if not p.volume]
        skipped += [f"study {s!r}: volumes are not trained on (the bundle trains 2D slices)" for s in volumes]
        if not pairs:
            raise FusionInputError(
                "train: the datastore holds no complete 2D study (<study>_MRI.png beside "
                f"<study>_CT|PET|SPECT.png); skipped: {'; '.join(skipped) or 'nothing'}"
            )
        for line in skipped:
            logger.info("train: skipped %s", line)
        self.settings.model_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="monai_fusion_label_train_") as tmp:
            overrides["dataset_dir"] = str(link_atlas_layout(pairs, Path(tmp)))
            logger.info("train: %d studies, bundle %s, overrides %s", len(pairs), self.settings.bundle, overrides)
            workflow = ConfigWorkflow(
                config_file=str(self.settings.bundle / "configs" / "train.json"),
                meta_file=str(self.settings.bundle / "configs" / "metadata.json"),
                workflow_type="train",
                **overrides,
            )
            workflow.initialize()
            n_train = len(workflow.parser.get_parsed_content("train#dataset#data"))
            n_val = len(workflow.parser.get_parsed_content("validate#dataset#data"))
            workflow.run()
            trainer = workflow.parser.get_parsed_content("train#trainer")
            evaluator = workflow.parser.get_parsed_content("validate#evaluator")
            workflow.finalize()
        model = self.settings.model_path
        self._stats = {
            "pairs": len(pairs),
            "pairs_train": n_train,
            "pairs_val": n_val,
            "skipped": skipped,
            "epochs": int(trainer.state.epoch),
            "iterations": int(trainer.state.iteration),
            "key_metric": evaluator.state.key_metric_name if hasattr(evaluator.state, "key_metric_name") else None,
            "best_metric": float(evaluator.state.best_metric) if evaluator.state.best_metric is not None else None,
            "best_metric_epoch": int(evaluator.state.best_metric_epoch),
            "model": str(model) if model.is_file() else None,
            "time_s": round(time.perf_counter() - start, 2),
        }
        logger.info("train: done %s", self._stats)
        return dict(self._stats)
