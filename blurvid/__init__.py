"""blurvid: a sharp photo and a video of the motion from ONE motion-blurred photo.

Implements Purohit, Shah and Rajagopalan, "Bringing Alive Blurred Moments" (CVPR 2019). Heavy modules
(torch, the networks) are imported lazily, so ``import blurvid`` and ``blurvid --help`` stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.5.0.dev0"

if TYPE_CHECKING:
    import numpy as np
    from torch import nn


def deblur(image: np.ndarray, device: str = "auto", precision: str = "auto") -> np.ndarray:
    """Deblur an ``(H, W, 3)`` float image in [0, 1] with the default checkpoint; returns the same shape."""
    from . import pipeline

    dev = pipeline.select_device(device)
    return pipeline.Deblurrer(pipeline.load_model("dm"), dev, pipeline.resolve_precision(precision, dev))(
        image
    )


def animate(
    image: np.ndarray, frames: int = 9, device: str = "auto", precision: str = "auto"
) -> list[np.ndarray]:
    """The ``frames`` sharp frames of the motion inside an ``(H, W, 3)`` blurred image, in time order."""
    from . import pipeline

    dev = pipeline.select_device(device)
    d = pipeline.Deblurrer(pipeline.load_model("dm"), dev, pipeline.resolve_precision(precision, dev))
    return pipeline.Animator(d, pipeline.load_model("bie"), pipeline.load_model("rvd"))(image, frames)


def load_model(arch: str, name: str | None = None) -> nn.Module:
    """The registered ``arch`` network ('dm', 'bie', 'rvd') as an eval-mode CPU module, shared by every
    caller in the process: copy it before changing it."""
    from .pipeline import load_model as _load

    return _load(arch, name)


__all__ = ["__version__", "animate", "deblur", "load_model"]
