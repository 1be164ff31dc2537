"""The one exception type that bad input raises, so callers (CLI, bundle) can show it cleanly."""

from __future__ import annotations

__all__ = ["FusionInputError", "find_input_error"]


class FusionInputError(ValueError):
    """Bad input: the message names the file or argument and what was expected.

    A subclass of ``ValueError`` so generic callers still catch it.
    """


def find_input_error(err: BaseException | None) -> FusionInputError | None:
    """The first :class:`FusionInputError` in an exception's cause/context chain (``None`` if there is none).

    MONAI wraps failures (``Compose`` steps, bundle config items) in ``RuntimeError``; callers use this
    to show the user the one message that names the bad input.
    """
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, FusionInputError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None
