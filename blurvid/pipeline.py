"""Inference: image in, image / frames out. Devices, precision, padding, tiling — no files, no printing.

* :class:`Deblurrer` runs the DM on any size: pad to the network's multiple and crop back; photos larger
  than one tile go through overlapping tiles blended without seams (memory bounded by the tile).
* :class:`Animator` deblurs, then runs BIE -> RVD on a copy bounded to ``motion_size`` px, resizes and
  rescales the flows to full resolution and warps the full-resolution sharp photo into each frame.
* :func:`load_model` builds networks from registered checkpoints (see :mod:`blurvid.weights`), once
  per process.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import operator
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any, Literal, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import __version__
from .config import check_number
from .io import flatten_alpha as flatten_alpha  # the API's name for it since 0.4 (the maths is io's)
from .metrics import gaussian_blur, psnr
from .models.deblur import DeblurNet, DMConfig
from .models.decoder import RecurrentVideoDecoder
from .models.encoders import BlurredImageEncoder, RecurrentVideoEncoder, VideoConfig
from .models.warp import resample_in_time, resize_flow, warp, warp_rows  # noqa: F401 (pipeline.warp: re-exported)
from .text import first_few
from .tiling import crop_to, pad_to_multiple, run_tiled, tiles

TileCallback = Callable[[int, int], None]


_INSIDE = tuple(os.path.dirname(os.path.abspath(m)) + os.sep for m in (__file__, torch.__file__))


def warn_caller(message: str) -> None:
    """``message`` as a ``UserWarning`` that points at the first line outside blurvid and torch: the
    user's call, however it came in (``tensor``, ``__call__``, through :class:`Animator`, or torch's
    ``inference_mode`` wrapper). A fixed ``stacklevel`` pointed into blurvid on some of those paths."""
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_code.co_filename.startswith(_INSIDE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, UserWarning, stacklevel=level)


def select_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' -> CUDA when available else CPU; 'cuda' without a GPU raises ValueError."""
    device = str(device).lower()
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device {device!r} was asked for, but no CUDA GPU is available; use 'cpu' or 'auto'"
        )
    try:
        parsed = torch.device(device)
    except RuntimeError:  # 'cpux', 'cuda:x'...
        parsed = None
    if parsed is None or parsed.type not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}: use auto, cpu or cuda")
    return parsed


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """'auto': bf16 on CPUs with native bf16 (AVX512-BF16/AMX), fp32 otherwise and on CUDA;
    'half': fp16 on CUDA (bf16 on CPU); 'fp32' / 'bf16' / 'fp16' as named."""
    if precision == "auto":
        if device.type == "cpu" and torch.cpu._is_avx512_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if precision == "half":
        return torch.float16 if device.type == "cuda" else torch.bfloat16
    table = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    if precision not in table:
        raise ValueError(f"unknown precision {precision!r}: use auto, fp32, bf16, fp16 or half")
    if table[precision] is torch.float16 and device.type == "cpu":
        raise ValueError("fp16 needs a CUDA device; use bf16 on the CPU")
    return table[precision]


def autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Mixed precision in ``dtype`` on ``device`` for the block (none for float32)."""
    if dtype is torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def to_tensor(image: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """``(H, W, 3)`` image -> ``(1, 3, H, W)`` float32 in [0, 1] on ``device``.

    Floats must lie in [0, 1] (a rounding margin of 1e-3 is clipped); unsigned integers (uint8, uint16)
    are scaled by their full range. A torch tensor is read as the same ``(H, W, 3)`` array (detached;
    any device, half precision too). Raises ValueError for another shape, an empty image, NaN or
    infinity, floats outside [0, 1] (e.g. 0-255 values) or other dtypes.

    A writable float32 array already in [0, 1] is not copied on the CPU: the result is a view of its
    memory (channels-last strides), so a big photo is not held twice; do not change the array while the
    tensor is in use. Anything else is converted into a new array.
    """
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        image = (image.float() if image.is_floating_point() else image).numpy()
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
    if image.size == 0:
        raise ValueError(f"the image is empty (shape {image.shape})")
    if image.dtype in (np.uint8, np.uint16):
        scaled = image.astype(np.float32)
        scaled /= np.float32(np.iinfo(image.dtype).max)  # in place: the values of a division, one copy
    elif image.dtype.kind == "f":
        scaled = np.ascontiguousarray(image, dtype=np.float32)
        lo, hi = float(scaled.min()), float(scaled.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError("the image holds NaN or infinite values")
        if lo < -1e-3 or hi > 1.001:
            raise ValueError(f"float images must hold values in [0, 1], got {lo:.4g} to {hi:.4g}")
        if lo < 0.0 or hi > 1.0 or not scaled.flags.writeable:  # clipping in range changes nothing
            scaled = np.clip(scaled, 0.0, 1.0)
    else:
        raise ValueError(f"expected a float image in [0, 1], uint8 or uint16, got dtype {image.dtype}")
    return torch.from_numpy(scaled).permute(2, 0, 1)[None].to(device)


def check_image_tensor(x: torch.Tensor, channels: int | None = 3, batch: bool = False) -> None:
    """Raise ValueError unless ``x`` is one ``(1, C, H, W)`` float image (``batch``: ``(B, C, H, W)``,
    any B) with values in [0, 1] and ``C == channels`` (``None``: any number of channels)."""
    if (
        x.dim() != 4
        or (x.shape[0] != 1 and not batch)
        or x.shape[0] < 1
        or x.shape[1] < 1
        or x.shape[2] < 1
        or x.shape[3] < 1
        or (channels is not None and x.shape[1] != channels)
    ):
        c = "C" if channels is None else channels
        what = f"a (B, {c}, H, W) batch of images" if batch else f"one (1, {c}, H, W) image"
        raise ValueError(f"expected {what}, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"expected a float image in [0, 1], got dtype {x.dtype} (divide by 255 first)")
    lo, hi = float(x.min()), float(x.max())
    if not (lo >= -1e-3 and hi <= 1.001):  # also NaN
        raise ValueError(f"image values must lie in [0, 1], got {lo:.4g} to {hi:.4g}")


def _check_frames(frames: object) -> None:
    """ValueError unless ``frames`` is a whole number >= 1 (-1 gave torch's own error, 0 no frames)."""
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
        raise ValueError(f"frames must be a whole number >= 1, got {frames!r}")


def _check_pixels(name: str, value: object, least: int) -> int:
    """``value`` as a plain int if it is a whole number of pixels (an int or any integer type, such as
    numpy's, but not a bool), at least ``least`` (a size setting); ValueError otherwise."""
    try:
        pixels = None if isinstance(value, bool) else operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        pixels = None
    if pixels is None or pixels < least:
        bound = "0 or more" if least == 0 else f"at least {least}"
        raise ValueError(f"{name} must be a whole number of pixels, {bound}, got {value!r}")
    return pixels


def _same_device(a: torch.device, b: torch.device) -> bool:
    """Whether ``a`` and ``b`` are one device: ``cuda`` is the current CUDA device, so it is ``cuda:0``
    there (``torch.device('cuda') == torch.device('cuda:0')`` is False)."""
    if a.type != b.type:
        return False
    if a.index == b.index or a.type != "cuda":
        return True
    current = torch.cuda.current_device()
    return (current if a.index is None else a.index) == (current if b.index is None else b.index)


def _on(module: nn.Module, device: torch.device, channels_last: bool = False) -> nn.Module:
    """``module`` on ``device`` in eval mode (with channels-last weights if asked), as a copy unless it is
    so already: the caller's module (e.g. :func:`load_model`'s cached one) is never moved, switched to
    eval mode or re-laid out (channels-last weights cannot be saved as safetensors)."""
    params = list(module.parameters())
    ready = not module.training and all(_same_device(p.device, device) for p in params)
    if channels_last:
        ready = ready and all(
            p.dim() != 4 or p.is_contiguous(memory_format=torch.channels_last) for p in params
        )
    if not ready:
        module = copy.deepcopy(module).to(device).eval()
        if channels_last:
            module = module.to(memory_format=torch.channels_last)
    return module


def to_numpy(x: torch.Tensor, inplace: bool = False) -> np.ndarray:
    """``(1, 3, H, W)`` -> ``(H, W, 3)`` float32 in [0, 1] on the CPU (clamped; a channels-last view of
    the clamped values, not a contiguous copy).

    ``inplace``: clamp ``x`` itself where it is float32 (on the CPU the array then shares its memory; on a
    GPU ``x`` is clamped too before the copy to the CPU) instead of a full-size copy of it: for a result the
    caller does not use again. Same values either way.
    """
    y = x[0].float()
    if inplace:
        with torch.inference_mode():  # x may be an inference tensor made by the pipeline
            y = y.clamp_(0, 1)
    else:
        y = y.clamp(0, 1)
    return y.permute(1, 2, 0).cpu().numpy()


class Deblurrer:
    """Deblur photos of any size with a :class:`DeblurNet`.

    ``tile`` / ``overlap`` (px) bound memory, which grows with the pixel count: inputs of more than
    ``2 * tile * tile`` pixels are processed in overlapping ``tile`` px tiles blended with linear ramps
    (``tile`` is rounded down to a multiple of the DM's ``multiple``, 32: it then needs no padding);
    smaller ones (up to 1920x1080 at the default) in one pass, whatever their aspect ratio: at that size
    one pass peaks no higher than its tiles did (~0.8 GiB either way at 1080p) and computes half the
    pixels. Each tile sees at least ``overlap`` px of context; the DM sees further, so tiled output is
    close to, not equal to, one pass (1920x1200 with dm-v12: mean |d| 3e-4, up to 0.2 in the last rows,
    where one pass pads; no seam).
    """

    def __init__(
        self,
        dm: DeblurNet,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        tile: int = 1024,
        overlap: int = 128,
    ) -> None:
        if not isinstance(getattr(dm, "multiple", None), int):  # a BIE, say: a missing attribute later
            raise TypeError(f"dm must be a DeblurNet (load_model('dm')), got {type(dm).__name__}")
        if dtype not in (torch.float32, torch.bfloat16, torch.float16):  # "bf16" was torch's TypeError
            raise ValueError(f"dtype must be torch.float32, torch.bfloat16 or torch.float16, got {dtype!r}")
        tile = _check_pixels("tile", tile, 32)
        overlap = _check_pixels("overlap", overlap, 0)  # < 0: NaN pixels
        device = select_device(device)
        self.dm = _on(dm, device, channels_last=True)
        # a multiple of the DM's padding: a tile padded inside the DM blends worse (the astronaut
        # example at 300 px tiles: 38.6 dB against one pass; at 288: 51.9, benchmarks/bench_tiling.py)
        step = int(getattr(dm, "multiple", 1))
        tile = max(step, tile - tile % step)
        # the overlap shrinks with a small tile (it must stay under half of it)
        self.device, self.dtype, self.tile, self.overlap = device, dtype, tile, min(overlap, tile // 4)

    @torch.inference_mode()
    def batch(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [0, 1] -> sharp ``(B, 3, H, W)`` float32 on the pipeline's device, in one
        untiled pass (small images, e.g. training crops); the result is an inference tensor: clone it
        outside inference mode to use it where autograd records. Raises ValueError as :meth:`tensor`
        does (a 0-255 uint8 batch came back as clamped garbage)."""
        check_image_tensor(x, batch=True)
        # float32 whatever the caller's float type: an fp32 network cannot take half or double input
        xp, size = pad_to_multiple(x.to(self.device, torch.float32), self.dm.multiple)
        with autocast(self.device, self.dtype):
            y = self.dm(xp.contiguous(memory_format=torch.channels_last))
        return crop_to(y.float(), size).clamp(0, 1)

    @torch.inference_mode()
    def tensor(self, x: torch.Tensor, on_tile: TileCallback | None = None) -> torch.Tensor:
        """``(1, 3, H, W)`` float in [0, 1] (any device, any float type) -> sharp ``(1, 3, H, W)``
        float32 on the input's device. Raises ValueError for another shape or dtype, or values outside
        [0, 1] (say, 0-255)."""
        check_image_tensor(x)
        return run_tiled(
            self.batch, x, self.tile, self.overlap, on_tile, out_device=x.device, max_pixels=2 * self.tile**2
        )

    def __call__(self, image: np.ndarray, on_tile: TileCallback | None = None) -> np.ndarray:
        """``(H, W, 3)`` float in [0, 1] -> sharp ``(H, W, 3)`` float32 in [0, 1]."""
        return to_numpy(self.tensor(to_tensor(image, torch.device("cpu")), on_tile), inplace=True)


def bounded_size(h: int, w: int, max_side: int, multiple: int = 1) -> tuple[int, int]:
    """``(h, w)`` scaled down (never up) so the longer side is <= ``max_side``; at least ``multiple``."""
    s = min(1.0, max_side / max(h, w))
    return max(multiple, round(h * s)), max(multiple, round(w * s))


def fit_image(image: np.ndarray, max_side: int) -> np.ndarray:
    """``(H, W, 3)`` float in [0, 1] shrunk (antialiased, never enlarged) so that its longer side is at
    most ``max_side`` px; returned as it is when it fits or ``max_side`` is 0."""
    h, w = image.shape[:2]
    if max_side <= 0 or max(h, w) <= max_side:
        return image
    return to_numpy(resize(to_tensor(image, torch.device("cpu")), bounded_size(h, w, max_side)), inplace=True)


def side_by_side(left: np.ndarray, frames: list[np.ndarray]) -> list[np.ndarray]:
    """Each ``(H, W, C)`` frame with ``left`` (same height and dtype) placed before it: ``(H, 2W, C)``.

    A frame that appears several times in ``frames`` (the same array, e.g. a boomerang's) gives one
    combined array, listed as often: one copy of each distinct frame.
    """
    made: dict[int, np.ndarray] = {}  # id of a frame -> its combined array
    out = []
    for f in frames:
        if id(f) not in made:
            made[id(f)] = np.concatenate([left, f], axis=1)
        out.append(made[id(f)])
    return out


def warped_frame(
    image: torch.Tensor,
    flow: torch.Tensor,
    convert: Callable[[np.ndarray], np.ndarray] | None = None,
    band_pixels: int = 1 << 19,
) -> np.ndarray:
    """``to_numpy(warp(image, flow))`` for one ``(1, 3, H, W)`` image and ``(1, 2, H, W)`` flow, as a
    contiguous ``(H, W, 3)`` array made in bands of about ``band_pixels`` pixels: the same values, without
    the full-size temporaries of one :func:`warp`. ``convert`` is applied to each float32 band (it must
    work pixel by pixel and keep the shape); the result has its dtype (float32 without it).
    """
    h, w = image.shape[-2:]
    rows = max(1, band_pixels // w)
    out: np.ndarray | None = None
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        band = to_numpy(warp_rows(image, flow, r0, r1), inplace=True)
        if convert is not None:
            band = convert(band)
        if out is None:
            out = np.empty((h, w, 3), dtype=band.dtype)
        out[r0:r1] = band
    assert out is not None
    return out


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize of ``(B, C, H, W)`` (identity when the size already matches)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)


def texture_window(x: torch.Tensor, size: int, stride: int = 16) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of the ``size`` x ``size`` window of a grey ``(H, W)`` image with
    the most gradient energy outside clipped highlights (where a blur kernel shows best); the whole
    image when it is smaller (a side shorter than ``size`` is taken whole)."""
    h, w = x.shape
    if h <= size and w <= size:
        return 0, 0, h, w
    sh, sw = min(size, h), min(size, w)
    g = (x[1:, :-1] - x[:-1, :-1]).abs() + (x[:-1, 1:] - x[:-1, :-1]).abs()
    g = g * (x[:-1, :-1] < 0.98)
    # window sums at every stride-th corner from a summed-area table: linear in the photo's size
    sat = F.pad(g.double().cumsum(0).cumsum(1), (1, 0, 1, 0))
    ys = torch.arange(0, h - sh + 1, stride, device=x.device)
    xs = torch.arange(0, w - sw + 1, stride, device=x.device)
    a, b = sh - 1, sw - 1
    score = sat[ys + a][:, xs + b] - sat[ys][:, xs + b] - sat[ys + a][:, xs] + sat[ys][:, xs]
    i = int(score.argmax())
    return int(ys[i // len(xs)]), int(xs[i % len(xs)]), sh, sw


def texture_crop(x: torch.Tensor, size: int, stride: int = 16) -> torch.Tensor:
    """The :func:`texture_window` of a grey ``(H, W)`` image, cropped out (``x`` itself when whole)."""
    y0, x0, sh, sw = texture_window(x, size, stride)
    return x if (sh, sw) == tuple(x.shape) else x[y0 : y0 + sh, x0 : x0 + sw]


def network_change_db(
    net: Sharpener, x: torch.Tensor, side: int = 1024, sigma: float = 1.0, grey: torch.Tensor | None = None
) -> float:
    """How much the deblurring network changes a photo: ``10 log10(1 / mse)`` (dB) of its change
    (output minus input) after a Gaussian low-pass of ``sigma`` px, on the ``side`` px window of ``x``
    (``(1, C, H, W)`` in [0, 1]; not three channels: its luminance, repeated) with the most texture
    (:func:`texture_window`; the whole photo when it is smaller), at full resolution: blur shows at
    the photo's own scale (the 12 MP photo of ``benchmarks/bench_memory.py``, shaken along 0.4 % of
    its long side, read 56 dB from a 1024 px copy: no blur; 33 dB from its full-resolution window).
    100 when it changes nothing. High means the network found little blur to remove. The low-pass
    discounts what the network does to sensor noise: with dm-v12, 40 sharp photos read 42-67 dB with
    or without noise of 5/255, Levin's 32 camera-shaken ones 26-40, the shaken examples and real
    photos 26-38 (``benchmarks/shake_on_sharp.py``; Levin's with ``--blurred $DATA/realblur/levin
    --count 32``). Little change is no proof of sharpness, though: blur far longer than the network
    handles (say 60 px) moves it little too. ``grey``: the photo's luminance ``(H, W)`` (the channels'
    mean), if computed already."""
    y0, x0, h, w = texture_window(x.float().mean(1)[0] if grey is None else grey, side)
    x = x[..., y0 : y0 + h, x0 : x0 + w].float()
    if x.shape[1] != 3:
        x = x.mean(1, keepdim=True).expand(-1, 3, -1, -1)
    change = net.tensor(x).float().to(x.device) - x
    return float(psnr(gaussian_blur(change, sigma), torch.zeros_like(change)))


NO_SHAKE = "no camera shake found (the blur kernel is about one pixel): the photo is left as it was"
NO_BLUR = "no camera shake found (the network finds almost no blur to remove): the photo is left as it was"
TOO_SMALL = (
    "too small to estimate camera shake in (its short side is under twice the longest blur looked for, "
    "{} px; look for shorter blur: a smaller --shake-size, or max_blur in Python): the photo is left as it was"
)
TOO_SMALL_ANY = (  # already at the shortest blur looked for: no smaller --shake-size to suggest
    "too small to estimate camera shake in (its short side is under {} px, twice the shortest blur "
    "looked for): the photo is left as it was"
)
MIN_SHAKE_TILE = 64
MAX_SHAKE_BLUR = 95  # px of the working copy: the longest blur a kernel is estimated for
MIN_SHAKE_BLUR = 5  # px of the working copy: the shortest "longest blur" looked for


def given_kernel(kernel: torch.Tensor | np.ndarray) -> torch.Tensor:
    """A blur kernel given to :meth:`ShakeRemover.tensor`, as float32 ``(kh, kw)`` summing to 1.
    Raises ValueError unless it is 2-D with odd sides (its centre is its middle pixel: an even side
    shifted the result by half a pixel), finite, without negative weights and not all zero."""
    k = torch.as_tensor(np.asarray(kernel) if isinstance(kernel, np.ndarray) else kernel).float()
    if k.dim() != 2 or k.shape[0] % 2 == 0 or k.shape[1] % 2 == 0:
        raise ValueError(
            f"a blur kernel must be 2-D with odd sides (its centre is the middle pixel), got {tuple(k.shape)}"
        )
    if not bool(torch.isfinite(k).all()) or bool((k < 0).any()) or float(k.sum()) <= 0:
        raise ValueError("a blur kernel must hold finite, non-negative weights, not all zero")
    return k / k.sum()


class ShakeRemover:
    """Remove uniform camera shake: one blur kernel estimated from the photo, inverted everywhere.

    The kernel is estimated (:func:`blurvid.shake.estimate_kernel`) on the luminance of a copy
    bounded to ``work_side`` px, in its ``crop`` px window with the most texture, for blur up to
    ``max_blur`` px of the photo (default: 31 px of that copy, i.e. 3 % of the long side of photos
    over ``work_side``; kept within 5-95 px of the copy). On larger photos it is then scaled up and
    re-estimated (:func:`blurvid.shake.refine_kernel`) at each doubling of the copy's scale up to the
    full resolution (``refine``; off, it is only scaled up, which leaves it as thick as one copy pixel
    and blurs the deconvolution), each time in the most textured window of at least ``crop`` px and 4
    kernel widths, as long as the luminance's noise at that scale (:func:`blurvid.shake.noise_sigma`)
    stays within ``refine_noise`` (above it the estimate gets worse, not better; then the last
    kernel is only scaled up). An estimated kernel with at least ``min_blur_core`` of its mass in one
    3 x 3 window (:func:`blurvid.shake.kernel_core`: a blur of about a pixel, what the estimate finds
    on some sharp photos) means there is no shake to remove: the photo is returned as it is, with a
    ``UserWarning``, since deconvolving it would only over-sharpen it (a sharp kodak24 scene went from
    59 to 27 dB). On most sharp photos the estimate invents a wider kernel, which that does not catch
    (``benchmarks/shake_on_sharp.py``: 40 sharp photos came out at 12-40 dB against themselves);
    hence the ``judge``: a deblurring network (:class:`Deblurrer`, as ``deblur --shake`` passes it)
    that, when it changes the photo by ``min_change_db`` or more (:func:`network_change_db`: little
    change, little blur), has the photo returned as it is before any kernel is estimated, with a
    ``UserWarning`` (every sharp photo of that benchmark, also with noise; no Levin photo).
    A photo whose copy has a side under twice that longest blur (62 px by default) is returned as it
    is, with a ``UserWarning``: it cannot hold a kernel estimate. Otherwise the photo is deconvolved with it
    (:func:`blurvid.shake.deconvolve_rgb`: luminance under a sparse prior of weight ``strength``,
    raised on noisy photos by :func:`blurvid.shake.prior_weight`, colour differences under a smooth
    one; other channel counts one channel at a time with :func:`blurvid.shake.deconvolve`), in
    overlapping tiles of ``tile`` px, overlapping by 4 kernel lengths (tiles grow to at least twice
    that) (large: each tile edge is a place where the deconvolution's periodic boundary handling
    differs slightly; within 0.05 of one untiled pass with 96 px tiles in the tests). A dark photo
    (its highlights, the luminance's 99.5th percentile, under ``exposure``; ``None``: off) is treated
    as the same scene exposed brighter (:func:`blurvid.shake.exposure_gain`): the kernel estimate's
    edge threshold and the prior weight are absolute: the same shake 2x darker came out 2 dB worse, 4x
    darker 6.3 dB worse, below the blurred photo (``benchmarks/shake_exposure.py``). Only right when the
    whole photo moved the same way (hand-held shake of a still scene); moving subjects and strong
    rotation need the network (:class:`Deblurrer`).
    """

    def __init__(
        self,
        device: torch.device,
        max_blur: int | None = None,
        work_side: int = 1024,
        crop: int = 512,
        strength: float = 4e-3,
        tile: int = 2048,
        refine: bool = True,
        refine_noise: float = 0.008,
        min_blur_core: float = 0.85,
        judge: Sharpener | None = None,
        min_change_db: float = 41.0,
        exposure: float | None = 0.6,
    ) -> None:
        tile = _check_pixels("tile", tile, MIN_SHAKE_TILE)
        work_side = _check_pixels("work_side", work_side, 16)
        crop = _check_pixels("crop", crop, 16)
        if max_blur is not None:
            max_blur = _check_pixels("max_blur", max_blur, 1)
        check_number("strength", strength, low_open=True)  # 0: the solve divides by the kernel's zeros
        check_number("refine_noise", refine_noise)
        check_number("min_change_db", min_change_db)
        check_number("min_blur_core", min_blur_core, high=1.0, low_open=True)  # a share of the mass
        if exposure is not None:
            check_number("exposure", exposure, high=1.0, low_open=True)  # a brightness
        if not isinstance(refine, bool):
            raise ValueError(f"refine must be True or False, got {refine!r}")
        if judge is not None and not callable(getattr(judge, "tensor", None)):
            raise ValueError(f"judge must be a Deblurrer (or None), got {type(judge).__name__}")
        device = select_device(device)
        self.device, self.max_blur, self.work_side, self.crop = device, max_blur, work_side, crop
        self.strength, self.tile, self.refine, self.refine_noise = strength, tile, refine, refine_noise
        self.min_blur_core, self.judge, self.min_change_db = min_blur_core, judge, min_change_db
        self.exposure = exposure
        self._photo_scale = 1.0  # px of what tensor() is given per px of the user's photo (at_scale)
        self._asked_blur = max_blur  # max_blur as the user gave it, in px of their photo

    def at_scale(self, factor: float) -> ShakeRemover:
        """A copy for photos resized by ``factor`` before they are given to it (``animate --size``):
        ``max_blur`` (px of the original photo) becomes px of the resized copy, the default longest blur
        is the one the full-size photo would get, and messages keep speaking of the original's px."""
        check_number("factor", factor, high=1.0, low_open=True)
        out = copy.copy(self)
        if self.max_blur is not None:
            out.max_blur = max(1, round(self.max_blur * factor))
        out._photo_scale = self._photo_scale * float(factor)
        return out

    @torch.inference_mode()
    def kernel(self, x: torch.Tensor) -> torch.Tensor:
        """``(1, C, H, W)`` in [0, 1] -> the blur kernel at full resolution ``(k, k)`` (odd k, sum 1).
        Raises ValueError for another shape or dtype, values outside [0, 1] (say, 0-255), or a photo
        too small to estimate one in (where :meth:`tensor` leaves the photo as it was)."""
        check_image_tensor(x, channels=None)
        too_small = self._too_small(*x.shape[-2:])
        if too_small is not None:
            raise ValueError(too_small.removesuffix(": the photo is left as it was"))
        lum = self._luminance(x)
        return self._kernel(lum * self._gain(lum))[0]

    def _too_small(self, h: int, w: int) -> str | None:
        """:data:`TOO_SMALL` (:data:`TOO_SMALL_ANY` at the shortest blur) for an ``h`` x ``w`` photo
        whose copy (of at most ``work_side`` px) is under twice the longest blur looked for on a side,
        else None. (A 7x7 photo came out 15 dB from itself, deconvolved with a kernel larger than
        itself.)"""
        size, blur = self._search_size(h, w)
        if min(size) >= 2 * blur:
            return None
        photo_px = blur * h / size[0] / self._photo_scale  # in px of the photo the user gave
        if blur <= MIN_SHAKE_BLUR:
            return TOO_SMALL_ANY.format(math.ceil(2 * photo_px))
        return TOO_SMALL.format(math.ceil(photo_px))

    def _luminance(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device).float().mean(1, keepdim=True)

    def _gain(self, lum: torch.Tensor) -> float:
        """:func:`blurvid.shake.exposure_gain` of the luminance ``(1, 1, H, W)`` (1 without ``exposure``)."""
        from .shake import exposure_gain

        return 1.0 if self.exposure is None else exposure_gain(lum[0, 0], self.exposure)

    def _kernel(self, lum: torch.Tensor, sigma: float | None = None) -> tuple[torch.Tensor, float]:
        """:meth:`kernel` from the photo's luminance ``(1, 1, H, W)`` on the device (``sigma``: its
        :func:`blurvid.shake.noise_sigma`, if measured already), and the
        :func:`~blurvid.shake.kernel_core` of the last kernel estimated (at the scale it was estimated
        at: only scaling it up would spread a one-pixel kernel over several pixels)."""
        from .shake import estimate_kernel, kernel_core, noise_sigma, refine_kernel

        h, w = lum.shape[-2:]
        size, blur = self._search_size(h, w)
        scale = size[0] / h
        if self.max_blur is not None and round(self.max_blur * scale) > MAX_SHAKE_BLUR:
            photo = scale * self._photo_scale  # working-copy px per px of the photo the user gave
            warn_caller(
                f"blur is looked for up to {MAX_SHAKE_BLUR} px of the {max(size)} px working copy, "
                f"{round(MAX_SHAKE_BLUR / photo)} px of the photo, not the {self._asked_blur} px asked "
                "(--shake-size, max_blur in Python)"
            )
        grey = resize(lum, size)[0, 0]
        k = estimate_kernel(texture_crop(grey, self.crop), blur)
        core = kernel_core(k)
        s = scale
        while s < 1:
            step = min(1.0, 2 * s) if self.refine else 1.0  # refine: re-estimate at each doubling
            grey = None
            if self.refine:
                grey = lum[0, 0] if step == 1 else resize(lum, (round(h * step), round(w * step)))[0, 0]
                noise = sigma if step == 1 and sigma is not None else noise_sigma(grey)
                if noise > self.refine_noise:  # too noisy there to see the kernel better
                    step, grey = 1.0, None
            k = self._scaled(k, step / s)
            s = step
            if grey is not None:
                # the window grows with the kernel: at least 4 kernel widths of photo around it
                k = refine_kernel(texture_crop(grey, max(self.crop, 4 * k.shape[0])), k)
                core = kernel_core(k)
        return k, core

    def _search_size(self, h: int, w: int) -> tuple[tuple[int, int], int]:
        """The size of the copy an ``h`` x ``w`` photo's kernel is estimated on, and the longest blur
        (px of that copy) looked for."""
        size = bounded_size(h, w, self.work_side)
        if self.max_blur is not None:
            return size, max(MIN_SHAKE_BLUR, min(MAX_SHAKE_BLUR, round(self.max_blur * size[0] / h)))
        # 31 px of the working copy of the user's photo at its full size (at_scale: a resized photo
        # looks for the blur deblur would look for in the full one)
        full = max(h, w) / self._photo_scale
        blur = 31 * max(1.0, full / self.work_side) * self._photo_scale * max(size) / max(h, w)
        return size, max(MIN_SHAKE_BLUR, min(MAX_SHAKE_BLUR, round(blur)))

    @staticmethod
    def _scaled(k: torch.Tensor, factor: float) -> torch.Tensor:
        """``k`` resized by ``factor`` (bilinear) to an odd size, non-negative, sum 1."""
        n = round(k.shape[0] * factor) | 1
        k = F.interpolate(k[None, None], size=(n, n), mode="bilinear", align_corners=False)[0, 0]
        return k.clamp_min(0) / k.sum().clamp_min(1e-12)

    @torch.inference_mode()
    def tensor(
        self,
        x: torch.Tensor,
        on_tile: TileCallback | None = None,
        kernel: torch.Tensor | np.ndarray | None = None,
        clipped: float | None = None,
    ) -> torch.Tensor:
        """``(1, C, H, W)`` in [0, 1] -> sharp ``(1, C, H, W)`` on the input's device (``kernel``:
        a full-resolution kernel to use instead of estimating one, see :func:`given_kernel`;
        ``clipped``, e.g. :data:`blurvid.shake.CLIPPED`: channels from that value count as clipped
        highlights, asked only for no less light than recorded, for up to 9x the deconvolution's time:
        +0.3 dB, +0.7 near the highlights with the true kernel, level with estimated ones,
        ``benchmarks/shake_saturation.py``). ``on_tile(done, total)`` counts the kernel estimate as the
        first step: ``(0, 2)`` before it, then ``(1 + tiles done, 1 + tiles)``. Raises ValueError for
        another shape or dtype, values outside [0, 1] (say, 0-255), a kernel :func:`given_kernel`
        refuses, or a ``clipped`` outside (0, 1]."""
        from .shake import check_clipped, deconvolve, deconvolve_rgb, noise_sigma, prior_weight

        check_image_tensor(x, channels=None)
        check_clipped(clipped)  # before the kernel's estimate, not after it
        if on_tile and kernel is None:
            on_tile(0, 2)  # the tile count depends on the kernel's size: known after it
        if kernel is None:
            too_small = self._too_small(*x.shape[-2:])
            if too_small is not None:
                return self._unchanged(x, too_small, on_tile)
        else:
            kernel = given_kernel(kernel)
        lum = self._luminance(x)
        if kernel is None and self.judge is not None:
            if network_change_db(self.judge, x, self.work_side, grey=lum[0, 0]) >= self.min_change_db:
                return self._unchanged(x, NO_BLUR, on_tile)
        # a dark photo is treated as the same scene exposed brighter (its noise scaled with it)
        gain = self._gain(lum)
        lum = lum * gain
        sigma = noise_sigma(lum[0, 0])  # measured once: the refinement's limit and the prior weight
        k, core = self._kernel(lum, sigma) if kernel is None else (kernel.to(self.device), 0.0)
        del lum
        if kernel is None and core >= self.min_blur_core:
            return self._unchanged(x, NO_SHAKE, on_tile)
        strength = prior_weight(sigma, self.strength)  # more prior on noisier photos (of gain * x)
        # the deconvolution reaches ~4 kernel lengths (the longer side's): tiles grow to hold that
        # overlap (cut to under half a tile, as it was, the tile edges showed: 69 % of a photo's pixels
        # off by over 4/255 with a 31 px kernel in 128 px tiles)
        overlap = 4 * max(k.shape)
        tile = max(self.tile, 2 * overlap + 2)
        if on_tile and kernel is None:
            report, n = on_tile, len(tiles(*x.shape[-2:], tile, overlap))
            report(1, n + 1)
            on_tile = lambda done, total: report(done + 1, total + 1)  # noqa: E731

        def one(c: torch.Tensor) -> torch.Tensor:  # (1, 1, h, w), times gain
            if clipped is None:
                return deconvolve(c, k, strength)
            # as a grey RGB photo: the clipped-highlight handling lives in deconvolve_rgb (its
            # luminance is the channel, its colour differences zero)
            # (the work of three channels, for the rounds' censored data term)
            return deconvolve_rgb(c.expand(-1, 3, -1, -1), k, strength, clipped=clipped, gain=gain)[:, :1]

        def run(t: torch.Tensor) -> torch.Tensor:
            t = t.to(self.device).float() * gain  # the same scene exposed brighter (gain 1: as it is)
            if t.shape[1] == 3:  # luminance sparse, colour differences smooth (and 2.4x faster)
                out = deconvolve_rgb(t, k, strength, clipped=clipped, gain=gain)
            else:  # one channel at a time bounds the FFT buffers (to one channel's without clipped)
                out = torch.cat([one(t[:, c : c + 1]) for c in range(t.shape[1])], 1)
            return (out / gain if gain != 1 else out).clamp(0, 1)

        return run_tiled(run, x, tile, overlap, on_tile, out_device=x.device)

    @staticmethod
    def _unchanged(x: torch.Tensor, why: str, on_tile: TileCallback | None) -> torch.Tensor:
        """``x`` as float32, with ``why`` as a ``UserWarning`` (raised from :meth:`tensor`'s caller)."""
        warn_caller(why)
        if on_tile:
            on_tile(2, 2)
        return x.float().clone()

    def __call__(self, image: np.ndarray, on_tile: TileCallback | None = None) -> np.ndarray:
        """``(H, W, 3)`` float in [0, 1] -> sharp ``(H, W, 3)`` float32 in [0, 1]."""
        return to_numpy(self.tensor(to_tensor(image, torch.device("cpu")), on_tile), inplace=True)


class Sharpener(Protocol):
    """Where :class:`Animator` gets the sharp photo: :class:`Deblurrer` (the paper's DM) or
    :class:`ShakeRemover` (``animate --shake``)."""

    device: torch.device

    def tensor(self, x: torch.Tensor, on_tile: TileCallback | None = None) -> torch.Tensor:
        """``(1, 3, H, W)`` in [0, 1] -> sharp ``(1, 3, H, W)`` on the input's device."""
        ...


MIN_MOTION_SIDE = 64  # px: the motion copy is padded to at least this on each side (see Animator.motion)


class Animator:
    """Extract ``frames`` sharp frames of the motion inside a blurred photo (paper Sec. 2, test time).

    ``deblurrer`` makes the sharp photo the frames are warped from (``None``: every call passes
    ``sharp``, e.g. the ground truth in evaluation). The BIE and RVD run on ``device`` in ``dtype``,
    by default the deblurrer's (a :class:`ShakeRemover` has no precision: then float32).
    """

    def __init__(
        self,
        deblurrer: Sharpener | None,
        bie: BlurredImageEncoder,
        rvd: RecurrentVideoDecoder,
        motion_size: int = 512,
        native_frames: int | Literal["trained"] | None = "trained",
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if device is None:
            if deblurrer is None:
                raise ValueError("Animator needs a deblurrer or a device")
            device = deblurrer.device
        self.deblurrer = deblurrer
        self.device = device = select_device(device)
        self.dtype = dtype or getattr(deblurrer, "dtype", torch.float32)
        self.bie = _on(bie, self.device)
        self.rvd = _on(rvd, self.device)
        self.motion_size = _check_pixels("motion_size", motion_size, 8)
        if native_frames == "trained":  # the N the RVD was trained to span (9 before it was recorded)
            native_frames = int(getattr(getattr(rvd, "config", None), "frames", 9))
        self.native_frames = native_frames

    @torch.inference_mode()
    def motion(self, blurred: torch.Tensor, sharp: torch.Tensor, frames: int) -> torch.Tensor:
        """Flows at the bounded motion size: ``(N, 2, hs, ws)`` float32 on the compute device, in pixels
        of that size (upsample one with :func:`resize_flow` to the photo's size to use it). ValueError
        for a ``frames`` that is no whole number >= 1.

        The RVD is recurrent: run for its training length (``native_frames``; by default the N its
        config records) its steps span the exposure; run longer it would extrapolate past the end. So
        other frame counts are sampled from the native trajectory (linear in time);
        ``native_frames=None`` runs the RVD for ``frames`` steps.
        """
        _check_frames(frames)
        h, w = blurred.shape[-2:]
        hs, ws = bounded_size(h, w, self.motion_size, 8)
        b = resize(blurred.to(self.device), (hs, ws))
        s = resize(sharp.to(self.device), (hs, ws))
        # padded (replicating the edge) to a multiple of 8 and at least MIN_MOTION_SIDE: on a strip a few
        # pixels wide the encoders' deepest maps would be narrower than their kernels, and in bf16 the
        # flows came out NaN at random (a 500x1 photo, 9 runs of 12)
        grow = [max(MIN_MOTION_SIDE, -(-n // 8) * 8) - n for n in (hs, ws)]
        bp, sp = (F.pad(t, (0, grow[1], 0, grow[0]), mode="replicate") for t in (b, s))
        steps = self.native_frames or frames
        flows = self._motion_flows(bp, sp, steps, self.dtype)
        if not torch.isfinite(flows).all() and self.dtype is not torch.float32:
            flows = self._motion_flows(bp, sp, steps, torch.float32)  # the half-precision run overflowed
        if not torch.isfinite(flows).all():
            raise ValueError("the motion networks gave non-finite flows for this photo")
        return resample_in_time(crop_to(flows, (hs, ws)), frames)

    def _motion_flows(
        self, bp: torch.Tensor, sp: torch.Tensor, steps: int, dtype: torch.dtype
    ) -> torch.Tensor:
        """BIE -> RVD on the padded motion copy in ``dtype``: the finest flows ``(steps, 2, h, w)`` float32."""
        with autocast(self.device, dtype):
            emb = self.bie(bp, sp)
            res = self.rvd(emb, sp, steps, warp_frames=False)
        return res.flows[-1][0].float()

    def flows(self, blurred: torch.Tensor, sharp: torch.Tensor, frames: int) -> torch.Tensor:
        """Full-resolution flows ``(N, 2, H, W)`` on the inputs' device for ``(1, 3, H, W)`` float
        inputs in [0, 1] (ValueError otherwise, or when their sizes differ)."""
        _check_frames(frames)
        for t in (blurred, sharp):
            check_image_tensor(t)
        if blurred.shape != sharp.shape:
            raise ValueError(
                f"blurred is {tuple(blurred.shape)} but sharp {tuple(sharp.shape)}: they must match"
            )
        f = self.motion(blurred, sharp, frames)
        return resize_flow(f, tuple(blurred.shape[-2:])).to(blurred.device)

    def frames(
        self,
        image: np.ndarray,
        frames: int = 9,
        sharp: np.ndarray | None = None,
        on_tile: TileCallback | None = None,
        convert: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> Iterator[np.ndarray]:
        """Yield ``frames`` arrays ``(H, W, 3)`` float32 in [0, 1], in time order, one at a time.

        ``sharp`` (the deblurred photo, the same size as ``image``) is made by the deblurrer when not
        given. Each frame's flow is upsampled and applied on the compute device when it is needed, so
        memory holds one full-size flow at a time whatever ``frames`` is; the frame is warped in bands
        of rows (:func:`blurvid.models.warp.warp_rows`, the same values as one :func:`warp`), so its
        temporaries follow the band. ``convert`` (e.g. :func:`blurvid.io.to_uint8`): applied to each
        band (float32 ``(rows, W, 3)`` in [0, 1]) and the frame assembled from its results, so a
        full-size float frame never exists; it must work pixel by pixel (the same values as on the
        whole frame) and keep the shape. The arguments are checked here (ValueError), not when the
        first frame is drawn.
        """
        _check_frames(frames)
        cpu = torch.device("cpu")
        x = to_tensor(image, cpu)
        s = to_tensor(sharp, cpu) if sharp is not None else None
        if s is not None and s.shape != x.shape:
            raise ValueError(
                f"sharp is {s.shape[-1]}x{s.shape[-2]} but the image {x.shape[-1]}x{x.shape[-2]}: they must match"
            )
        if s is None and self.deblurrer is None:
            raise ValueError("this Animator has no deblurrer: pass the sharp photo")
        # in a list the generator empties: torch's generator decorator keeps its arguments for the
        # generator's life, and the photo is not needed once the motion is known
        return self._frames([x], s, int(frames), on_tile, convert)

    @torch.inference_mode()
    def _frames(
        self,
        photo: list[torch.Tensor],
        s: torch.Tensor | None,
        frames: int,
        on_tile: TileCallback | None,
        convert: Callable[[np.ndarray], np.ndarray] | None,
    ) -> Iterator[np.ndarray]:
        x = photo.pop()
        if s is None:
            assert self.deblurrer is not None  # checked in frames()
            s = self.deblurrer.tensor(x, on_tile)
        low = self.motion(x, s, frames)  # (N, 2, hs, ws) on the device
        del x  # a caller that let go of the photo gets its memory back for the frames
        s = s.to(self.device)
        size = (int(s.shape[-2]), int(s.shape[-1]))
        for n in range(frames):
            flow = resize_flow(low[n : n + 1], size)
            frame = warped_frame(s, flow, convert)
            del flow  # before the next frame's: one full-size flow at a time
            yield frame
            del frame

    def __call__(
        self, image: np.ndarray, frames: int = 9, sharp: np.ndarray | None = None
    ) -> list[np.ndarray]:
        """All frames as a list (see :meth:`frames`)."""
        return list(self.frames(image, frames, sharp))


# ------------------------------------------------------------------ loading ------------------------------
# arch -> (network, its config dataclass)
_ARCHS: dict[str, tuple[Callable[..., nn.Module], type]] = {
    "dm": (DeblurNet, DMConfig),
    "bie": (BlurredImageEncoder, VideoConfig),
    "rve": (RecurrentVideoEncoder, VideoConfig),  # training-only; for evaluation
    "rvd": (RecurrentVideoDecoder, VideoConfig),
}


def _arch(arch: str) -> tuple[Callable[..., nn.Module], type]:
    """The network and config class of ``arch``; ValueError for a name not in :data:`_ARCHS`."""
    if arch not in _ARCHS:
        raise ValueError(f"unknown network {arch!r} (known: {', '.join(_ARCHS)})")
    return _ARCHS[arch]


def build_from_checkpoint(arch: str, state: dict[str, torch.Tensor], config: dict) -> nn.Module:
    """Rebuild an ``arch`` network from its stored config and load the weights (strict), in eval mode.

    Raises ValueError (one line) for an unknown ``arch``, a config with settings this version does not
    know (a newer blurvid's checkpoint: building without them would make another network) or of the
    wrong kind, and for weights that do not fit the network the config describes.
    """
    network, _ = _arch(arch)
    settings = parse_config(arch, config)
    try:
        model = network(settings)
    except (TypeError, ValueError) as e:
        raise ValueError(f"its architecture settings are invalid ({e})") from None
    prefix = f"{arch}."
    if any(k.startswith(prefix) for k in state):
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or extra or wrong:  # one short line, not torch's list of every key
        raise ValueError(
            "its weights do not fit the architecture it stores ("
            + "; ".join(
                f"{len(keys)} {what}: {first_few(keys)}"
                for what, keys in (("missing", missing), ("unexpected", extra), ("of another shape", wrong))
                if keys
            )
            + ")"
        )
    model.load_state_dict(state)
    return model.eval()


def parse_config(arch: str, config: dict) -> Any:
    """An ``arch`` network's config dataclass from its stored dict (a training export's
    ``{arch: config}`` too). Raises ValueError (one line) for an unknown ``arch``, settings this version
    does not know (a newer blurvid's checkpoint: building without them would make another network) or
    invalid ones."""
    if arch in config and isinstance(config[arch], dict):  # training exports store {arch: config}
        config = config[arch]
    _, config_class = _arch(arch)
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(
            f"its architecture has settings this blurvid {__version__} does not know ({', '.join(unknown)}); "
            "was it made by a newer version?"
        )
    try:
        return config_class.from_dict(config)
    except (TypeError, ValueError) as e:
        raise ValueError(f"its architecture settings are invalid ({e})") from None


_load_lock = threading.Lock()  # guards the two dicts below, held only for a lookup
_loaded: dict[tuple[str, str], nn.Module] = {}  # (arch, checkpoint name) -> the shared module
# one lock per checkpoint, held while it loads (a download may take minutes): the others stay free
_loading: dict[tuple[str, str], threading.Lock] = {}


def load_model(
    arch: str, name: str | None = None, repo_id: str | None = None, download: bool = True
) -> nn.Module:
    """The registered checkpoint ``name`` (default: the arch's default) as an eval-mode CPU module.

    One module per checkpoint and process, shared by every caller (thread-safe): use it as it is, or
    copy it before changing it (the pipeline classes run a copy when they need another device or mode).
    The DM's weights are channels-last, the layout the pipeline runs it in. ``repo_id`` / ``download``
    matter only for the first load (where a missing file comes from). Raises
    :class:`blurvid.weights.WeightsError` when no trained checkpoint is installed, or when the file does
    not hold the network its registry entry and stored config describe.
    """
    from . import weights

    spec = weights.default_spec(arch) if name is None else weights.find_spec(name)
    key = (arch, spec.name)
    with _load_lock:
        if key in _loaded:
            return _loaded[key]
        one = _loading.setdefault(key, threading.Lock())
    with one:  # a second caller of this checkpoint waits for the first one's load, not the others'
        with _load_lock:
            if key in _loaded:
                return _loaded[key]
        model = _load(arch, spec.name, repo_id, download)
        with _load_lock:
            return _loaded.setdefault(key, model)


def _load(arch: str, name: str, repo_id: str | None, download: bool) -> nn.Module:
    from . import weights

    # resolve() verifies the file's sha256 once; load_pretrained does not hash it again
    state, meta, resolved = weights.load_pretrained(name, repo_id=repo_id, download=download)
    if resolved.spec.arch != arch:
        raise weights.WeightsError(f"{name} is a '{resolved.spec.arch}' checkpoint, not a '{arch}' one")
    stored, registered = meta.get("config"), resolved.spec.config
    try:
        if stored and registered:  # the file must hold the network its registry entry describes
            a, b = parse_config(arch, stored), parse_config(arch, registered)
            if a != b:
                differ = [f.name for f in dataclasses.fields(a) if getattr(a, f.name) != getattr(b, f.name)]
                raise ValueError(
                    f"the file stores another architecture than its registry entry describes "
                    f"(they differ in {', '.join(differ)})"
                )
        model = build_from_checkpoint(arch, state, stored or registered)
    except ValueError as e:
        raise weights.WeightsError(f"checkpoint {name} ({resolved.path}): {e}") from None
    return model.to(memory_format=torch.channels_last) if arch == "dm" else model


def clear_model_cache() -> None:
    """Forget the modules :func:`load_model` has loaded (e.g. after the registry or weights changed)."""
    with _load_lock:
        _loaded.clear()
