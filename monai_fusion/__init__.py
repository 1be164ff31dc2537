"""monai-fusion: multimodal brain image fusion (MRI with CT, PET or SPECT) on MONAI."""

__version__ = "0.1.0"

__all__ = ["__version__"]
