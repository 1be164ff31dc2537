"""How a fusion study lies in MONAI Label's datastore: two images named ``<study>_<MODALITY>.<ext>``.

MONAI Label's local datastore is a flat folder of images, one image per id (the file name without
its extension). A fusion study is two of them: ``<study>_MRI.<ext>`` and exactly one of
``<study>_CT.<ext>``, ``<study>_PET.<ext>``, ``<study>_SPECT.<ext>``, both 2D slices (``.png``,
``.jpg``, ``.jpeg``, ``.tif``, ``.tiff``, ``.bmp``) or both NIfTI volumes (``.nii``, ``.nii.gz``). An
infer request names either image of the study; the task finds the partner beside it. The train
task gathers every complete 2D study into the Whole Brain Atlas layout that the bundle reads.

A DICOMweb datastore (a PACS) has no file names: an image id is a SeriesInstanceUID, and a study is the series
of one StudyInstanceUID: exactly one MR series and one CT, PT or NM series (:func:`dicomweb_study_ids`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from monai_fusion.data.io import IMAGE_SUFFIXES, VOLUME_SUFFIXES
from monai_fusion.utils.constants import OTHER_MODALITIES
from monai_fusion.utils.errors import FusionInputError

__all__ = [
    "STUDY_SUFFIXES",
    "StudyPair",
    "split_image_id",
    "split_image_name",
    "find_study_pair",
    "study_ids",
    "study_pairs",
    "DICOM_MODALITIES",
    "dicomweb_study_ids",
]

#: File suffixes a study image may have (2D slices, then volumes).
STUDY_SUFFIXES: tuple[str, ...] = (*IMAGE_SUFFIXES, *VOLUME_SUFFIXES)
_NAME = re.compile(r"^(?P<study>.+)_(?P<modality>MRI|CT|PET|SPECT)$", re.IGNORECASE)


@dataclass(frozen=True)
class StudyPair:
    """One study's two images.

    Attributes:
        study: the study name (file names without ``_<MODALITY>.<ext>``).
        mri: path of the MRI.
        other: path of the CT, PET or SPECT image.
        modality: ``CT``, ``PET`` or ``SPECT``.
        volume: whether the pair is two volumes (NIfTI) rather than two 2D slices.
    """

    study: str
    mri: Path
    other: Path
    modality: str
    volume: bool

    @property
    def pair_type(self) -> str:
        """``CT-MRI``, ``PET-MRI`` or ``SPECT-MRI``."""
        return f"{self.modality}-MRI"


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def split_image_id(image_id: str) -> tuple[str, str] | None:
    """Split a datastore image id ``<study>_<MODALITY>`` into ``(study, MODALITY)``.

    Returns:
        The two parts (modality upper-cased), or ``None`` when the id does not follow the convention.
    """
    m = _NAME.match(str(image_id))
    return None if m is None else (m.group("study"), m.group("modality").upper())


def split_image_name(path: str | os.PathLike) -> tuple[str, str, str] | None:
    """Split ``<study>_<MODALITY>.<ext>`` into ``(study, MODALITY, ext)``.

    Args:
        path: an image file name or path.

    Returns:
        The three parts (modality upper-cased, suffix lower-cased), or ``None`` when the name does not
        follow the convention or the suffix is not an image/volume suffix.
    """
    p = Path(path)
    ext = _suffix(p)
    if ext not in STUDY_SUFFIXES:
        return None
    parts = split_image_id(p.name[: len(p.name) - len(ext)])
    return None if parts is None else (*parts, ext)


def _members(folder: Path, study: str) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for f in sorted(folder.iterdir()):
        parts = split_image_name(f.name)
        if f.is_file() and parts is not None and parts[0] == study:
            found.setdefault(parts[1], []).append(f)
    return found


def find_study_pair(image: str | os.PathLike, other: str | os.PathLike | None = None) -> StudyPair:
    """The study of ``image``: the image itself and its partner found beside it by name.

    Args:
        image: path of either image of a study (``<study>_MRI.png``, ``<study>_PET.nii.gz``, ...).
        other: path of the partner, when it is given rather than found by name; ``image`` is then the
            MRI unless ``other`` is named ``..._MRI``.

    Returns:
        The pair.

    Raises:
        FusionInputError: a missing file, a name outside the convention, no partner or several
            candidates, or a 2D image paired with a volume.
    """
    p = Path(image)
    if not p.is_file():
        raise FusionInputError(f"image {p} does not exist")
    parts = split_image_name(p)
    if other is not None:
        o = Path(other)
        if not o.is_file():
            raise FusionInputError(f"other image {o} (request parameter 'other') does not exist")
        o_parts = split_image_name(o)
        if o_parts is not None and o_parts[1] == "MRI":
            p, o, parts, o_parts = o, p, o_parts, parts
        if parts is not None and parts[1] != "MRI":
            raise FusionInputError(
                f"image {p.name} and other image {o.name}: one of them must be the MRI (<study>_MRI.<ext>)"
            )
        mod = o_parts[1] if o_parts is not None else None
        if mod is None:
            raise FusionInputError(
                f"other image {o}: name it <study>_CT|PET|SPECT.<ext> so its modality is known "
                "(the MRI is the image the request names)"
            )
        pair = StudyPair(parts[0] if parts else p.stem, p, o, mod, _suffix(p) in VOLUME_SUFFIXES)
        _check_kinds(pair)
        return pair
    if parts is None:
        raise FusionInputError(
            f"image {p.name}: expected a name <study>_<MRI|CT|PET|SPECT>.<ext> with ext one of "
            f"{', '.join(STUDY_SUFFIXES)}, so that its partner can be found beside it "
            "(or pass the partner as request parameter 'other')"
        )
    study = parts[0]
    members = _members(p.parent, study)
    mris = members.get("MRI", [])
    others = [(m, f) for m in OTHER_MODALITIES for f in members.get(m, [])]
    if len(mris) != 1 or len(others) != 1:
        listing = ", ".join(f.name for fs in members.values() for f in fs)
        raise FusionInputError(
            f"study {study!r} in {p.parent} must hold exactly one <study>_MRI image and one "
            f"<study>_CT|PET|SPECT image; found: {listing}"
        )
    ((mod, o),) = others
    pair = StudyPair(study, mris[0], o, mod, _suffix(mris[0]) in VOLUME_SUFFIXES)
    _check_kinds(pair)
    return pair


def _check_kinds(pair: StudyPair) -> None:
    if (_suffix(pair.other) in VOLUME_SUFFIXES) != pair.volume:
        raise FusionInputError(
            f"study {pair.study!r}: {pair.mri.name} and {pair.other.name} must both be 2D images "
            "or both be NIfTI volumes"
        )


def study_ids(image_id: str, ids: Iterable[str]) -> tuple[str, str, str]:
    """The ids of ``image_id``'s study among a datastore's ids: ``(mri_id, other_id, MODALITY)``.

    Raises:
        FusionInputError: the id is outside the convention, or the study lacks an image or has too many.
    """
    parts = split_image_id(image_id)
    if parts is None:
        raise FusionInputError(
            f"image {image_id!r}: expected an id <study>_<MRI|CT|PET|SPECT> (file "
            "<study>_<MODALITY>.<ext>) so that its partner can be found, or the partner's id "
            "as request parameter 'other'"
        )
    members: dict[str, list[str]] = {}
    for i in ids:
        p = split_image_id(i)
        if p is not None and p[0] == parts[0]:
            members.setdefault(p[1], []).append(i)
    mris = members.get("MRI", [])
    others = [(m, i) for m in OTHER_MODALITIES for i in members.get(m, [])]
    if len(mris) != 1 or len(others) != 1:
        listing = ", ".join(sorted(i for v in members.values() for i in v))
        raise FusionInputError(
            f"study {parts[0]!r} must hold exactly one image {parts[0]}_MRI and one of "
            f"{parts[0]}_CT|PET|SPECT in the datastore; found: {listing}"
        )
    ((mod, other),) = others
    return mris[0], other, mod


def study_pairs(images: Iterable[tuple[str, str | os.PathLike]]) -> tuple[list[StudyPair], list[str]]:
    """Group a datastore's images into complete studies.

    Args:
        images: ``(image_id, path)`` of each image, in any order; ids follow ``<study>_<MODALITY>``.

    Returns:
        The complete studies sorted by name, and one line per image that is in no complete study
        (with the reason).
    """
    groups: dict[str, dict[str, list[Path]]] = {}
    skipped: list[str] = []
    for image_id, path in images:
        parts = split_image_id(image_id)
        if parts is None:
            skipped.append(f"{image_id}: id is not <study>_<MRI|CT|PET|SPECT>")
            continue
        groups.setdefault(parts[0], {}).setdefault(parts[1], []).append(Path(path))
    pairs: list[StudyPair] = []
    for study, members in sorted(groups.items()):
        mris = members.get("MRI", [])
        others = [(m, f) for m in OTHER_MODALITIES for f in members.get(m, [])]
        names = ", ".join(f.name for fs in members.values() for f in fs)
        if len(mris) != 1 or len(others) != 1:
            skipped.append(f"study {study!r} ({names}): needs one MRI and one CT/PET/SPECT image")
            continue
        ((mod, o),) = others
        pair = StudyPair(study, mris[0], o, mod, _suffix(mris[0]) in VOLUME_SUFFIXES)
        try:
            _check_kinds(pair)
        except FusionInputError as err:
            skipped.append(str(err))
            continue
        pairs.append(pair)
    return pairs, skipped


#: DICOM Modality (0008,0060) of a PACS series -> the library's modality name.
DICOM_MODALITIES: dict[str, str] = {"MR": "MRI", "CT": "CT", "PT": "PET", "NM": "SPECT"}


def dicomweb_study_ids(series_uid: str, index: Iterable[tuple[str, str, str]]) -> tuple[str, str, str, str]:
    """The study of a PACS series: its MR series and its one CT/PT/NM series, grouped by StudyInstanceUID.

    Args:
        series_uid: the SeriesInstanceUID a request names (either series of the study).
        index: ``(SeriesInstanceUID, StudyInstanceUID, DICOM Modality)`` of the datastore's series.

    Returns:
        ``(mri_series, other_series, MODALITY, StudyInstanceUID)`` with MODALITY ``CT``, ``PET`` or ``SPECT``.

    Raises:
        FusionInputError: the series is not listed, or its study lacks an MR series or a partner, or has several.
    """
    rows = list(index)
    study = next((st for uid, st, _ in rows if uid == series_uid), None)
    if study is None:
        raise FusionInputError(f"series {series_uid!r} is not an MR, CT, PT or NM series of the DICOMweb datastore")
    members = [(uid, mod) for uid, st, mod in rows if st == study]
    mris = [uid for uid, mod in members if DICOM_MODALITIES.get(mod) == "MRI"]
    others = [(uid, DICOM_MODALITIES[mod]) for uid, mod in members if DICOM_MODALITIES.get(mod) in OTHER_MODALITIES]
    if len(mris) != 1 or len(others) != 1:
        listing = ", ".join(f"{mod} {uid}" for uid, mod in sorted(members, key=lambda m: m[1]))
        raise FusionInputError(
            f"study {study} must hold exactly one MR series and one CT, PT or NM series "
            f"(or pass the partner as request parameter 'other'); found: {listing}"
        )
    return mris[0], others[0][0], others[0][1], study
