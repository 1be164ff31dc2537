"""Re-raise an engine's exception before MONAI's handlers log its traceback."""

from __future__ import annotations

from ignite.engine import Engine, Events

__all__ = ["PropagateErrors"]


class PropagateErrors:
    """Re-raise an exception of the engine's run at once, before any other ``EXCEPTION_RAISED`` handler.

    Ignite hands an exception to the ``EXCEPTION_RAISED`` handlers, and MONAI's ``StatsHandler`` logs it with
    its whole traceback before re-raising. Attached first (the engine factories here do), this handler lets the
    exception leave ``engine.run()`` untouched instead: bad input then ends in the one ``error:`` line of
    :func:`install_input_error_hook`, and any other error in Python's own traceback, printed once.
    """

    def attach(self, engine: Engine) -> None:
        """Register on ``EXCEPTION_RAISED``."""
        engine.add_event_handler(Events.EXCEPTION_RAISED, self)

    def __call__(self, _engine: Engine, err: BaseException) -> None:
        """Re-raise ``err``."""
        raise err
