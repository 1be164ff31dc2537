"""Data layer: paired datalists, the pair-type sampler, readers/writers (PNG, NIfTI, DICOM), volume slices, the
embedded demo pair and dataset."""

from .datalist import (
    PairedDatalist,
    bundle_datalist,
    case_folds,
    case_of,
    find_pairs,
    folds_per_pair_type,
    split_by_case,
    split_by_fold,
)
from .demo import default_dataset_dir, write_demo_dataset
from .io import LoadedImage, read_image, read_volume, write_nifti, write_png
from .sampler import pair_type_sampler
from .volumes import VolumeSliceDataset, find_volume_pairs

__all__ = [
    "default_dataset_dir",
    "write_demo_dataset",
    "PairedDatalist",
    "bundle_datalist",
    "case_of",
    "find_pairs",
    "split_by_case",
    "case_folds",
    "folds_per_pair_type",
    "split_by_fold",
    "LoadedImage",
    "read_image",
    "read_volume",
    "write_nifti",
    "write_png",
    "pair_type_sampler",
    "VolumeSliceDataset",
    "find_volume_pairs",
]
