"""SimpleITK's DICOM writer leaves the process in the C locale; the library puts the locale back."""

from __future__ import annotations

import locale
from pathlib import Path

import numpy as np

from monai_fusion.data.demo_study import write_series
from monai_fusion.utils.locale_guard import preserved_locale


def test_writing_a_dicom_series_keeps_the_locale(tmp_path: Path) -> None:
    before = locale.setlocale(locale.LC_ALL)
    vol = np.zeros((1, 8, 8, 3), np.float32)
    write_series(tmp_path / "s", vol, np.eye(4), "1.2.826.0.1.3680043.8.498.7")
    assert len(list((tmp_path / "s").glob("*.dcm"))) == 3
    assert locale.setlocale(locale.LC_ALL) == before


def test_the_guard_restores_what_a_block_changed() -> None:
    before = locale.setlocale(locale.LC_ALL)
    with preserved_locale():
        locale.setlocale(locale.LC_CTYPE, "C")
    assert locale.setlocale(locale.LC_ALL) == before
