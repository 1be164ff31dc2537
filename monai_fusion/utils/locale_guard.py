"""Keep the process's locale across calls that change it behind Python's back.

SimpleITK's DICOM writer (GDCM) sets the C library's character-type locale to ``C`` while it writes tags and leaves
it so: afterwards Python's default text encoding in that process is ASCII, and reading or printing any non-ASCII
text (a metric table with ``±``, a file name) fails far from the cause. Python's ``locale`` module can restore it.
"""

from __future__ import annotations

import locale
from contextlib import contextmanager
from typing import Iterator

__all__ = ["preserved_locale"]


@contextmanager
def preserved_locale() -> Iterator[None]:
    """Restore every locale category to what it was before the block, whatever the block did to it."""
    saved = locale.setlocale(locale.LC_ALL)  # a query: the current settings of every category
    try:
        yield
    finally:
        locale.setlocale(locale.LC_ALL, saved)
