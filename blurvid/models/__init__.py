"""Pure network modules of the paper: DM, RVE, RVD, BIE and the warping layer."""

from .deblur import DeblurNet, DMConfig
from .decoder import DecodeResult, RecurrentVideoDecoder
from .encoders import BlurredImageEncoder, RecurrentVideoEncoder, VideoConfig
from .warp import Warp, resize_flow, warp

__all__ = [
    "BlurredImageEncoder",
    "DMConfig",
    "DeblurNet",
    "DecodeResult",
    "RecurrentVideoDecoder",
    "RecurrentVideoEncoder",
    "VideoConfig",
    "Warp",
    "resize_flow",
    "warp",
]
