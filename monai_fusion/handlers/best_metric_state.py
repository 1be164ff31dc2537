"""The evaluator's best-metric record as a checkpoint entry, so a resumed run keeps it.

MONAI's evaluators keep ``state.best_metric`` and ``state.best_metric_epoch`` in memory only; Ignite's
``Engine.state_dict`` does not hold them. Without this entry a resumed run starts from ``-1`` and logs
"Got new best metric" for a value below the best of the epochs before the resume.
"""

from __future__ import annotations

from typing import Any, Mapping

from ignite.engine import Engine

__all__ = ["BestMetricState"]


class BestMetricState:
    """``state_dict`` / ``load_state_dict`` of an evaluator's best metric, for a checkpoint's ``save_dict``.

    Args:
        evaluator: the MONAI evaluator whose ``state.best_metric`` and ``state.best_metric_epoch`` are kept.
    """

    def __init__(self, evaluator: Engine) -> None:
        self.evaluator = evaluator

    def state_dict(self) -> dict[str, Any]:
        """``{"best_metric", "best_metric_epoch"}`` as the evaluator holds them now."""
        state = self.evaluator.state
        return {
            "best_metric": float(getattr(state, "best_metric", -1.0)),
            "best_metric_epoch": int(getattr(state, "best_metric_epoch", -1)),
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the record into the evaluator's state."""
        self.evaluator.state.best_metric = float(state_dict["best_metric"])
        self.evaluator.state.best_metric_epoch = int(state_dict["best_metric_epoch"])
