"""Data layer: paired datalists, readers/writers (PNG, NIfTI, DICOM), volume slices, the embedded demo pair."""

from .datalist import PairedDatalist, case_of, find_pairs, split_by_case
from .io import LoadedImage, read_image, read_volume, write_nifti, write_png
from .volumes import VolumeSliceDataset, find_volume_pairs

__all__ = ["PairedDatalist", "case_of", "find_pairs", "split_by_case", "LoadedImage", "read_image", "read_volume",
           "write_nifti", "write_png", "VolumeSliceDataset", "find_volume_pairs"]
