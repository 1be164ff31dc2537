"""Optional dependencies: imported where one surface needs them, with an error that names the extra.

``setup.cfg`` says which extra brings what: ``plots`` (matplotlib), ``demo`` (nilearn's templates),
``poster`` (phasepack for the ``poster`` protocol's FSIM), ``bundle`` (fire and tensorboard for
``python -m monai.bundle``), ``all``.
"""

from __future__ import annotations

from typing import Any

from monai.utils import OptionalImportError, optional_import

from .errors import FusionInputError

__all__ = ["MissingExtraError", "require_extra"]


class MissingExtraError(FusionInputError, OptionalImportError):
    """An optional package is not installed; the message names the ``monai-fusion`` extra that brings it.

    A :class:`FusionInputError`, so the command line shows it as one ``error:`` line, and MONAI's
    ``OptionalImportError``, so code that handles MONAI's optional imports handles it too.
    """


def require_extra(module: str, extra: str, what: str) -> Any:
    """Import ``module`` through MONAI's ``optional_import``; without it, say which extra installs it.

    Args:
        module: e.g. ``"matplotlib"``.
        extra: the ``monai-fusion`` extra that brings it, e.g. ``"plots"``.
        what: what needs it, named in the message.

    Returns:
        The module.

    Raises:
        MissingExtraError: the module is not installed.
    """
    mod, found = optional_import(module)
    if not found:
        raise MissingExtraError(f'{what} needs {module}: pip install "monai-fusion[{extra}]"')
    return mod
