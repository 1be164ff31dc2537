"""Array and dictionary transforms of monai-fusion, in MONAI's layout (``<area>/{array,dictionary}.py``)."""

from .colour import *  # noqa: F401,F403
from .colour import __all__ as _colour
from .intensity import *  # noqa: F401,F403
from .intensity import __all__ as _intensity
from .io import *  # noqa: F401,F403
from .io import __all__ as _io
from .presets import fusion_postprocess, fusion_preprocess
from .registration import *  # noqa: F401,F403
from .registration import __all__ as _registration

__all__ = [*_colour, *_intensity, *_io, *_registration, "fusion_preprocess", "fusion_postprocess"]
