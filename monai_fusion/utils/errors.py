"""The one exception type that bad input raises, so callers (CLI, bundle) can show it cleanly."""

from __future__ import annotations

__all__ = ["FusionInputError"]


class FusionInputError(ValueError):
    """Bad input: the message names the file or argument and what was expected.

    A subclass of ``ValueError`` so generic callers still catch it.
    """
