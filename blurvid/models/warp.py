"""Per-pixel backward warping (the paper's transformation layer T): function + Module.

Convention: ``flow: (B, 2, H, W)`` in pixels, channel 0 = x (columns), channel 1 = y (rows).
``warp(image, flow)[..., y, x] = image[..., y + flow_y, x + flow_x]`` sampled bilinearly; samples
outside the image take the nearest border value. A zero flow returns the input exactly (integer
sample positions have zero interpolation weight on the neighbours), a constant integer flow
``(dx, dy)`` shifts the image by ``(-dx, -dy)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Warp ``image: (B, C, H, W)`` by ``flow: (B, 2, H, W)`` (pixels). Returns ``(B, C, H, W)``.

    Bilinear gather with border clamping, differentiable w.r.t. both image and flow. Computed in the
    flow's dtype promoted to at least float32 for the coordinates.
    """
    _check(image, flow)
    return _warp(image, flow, 0)


def warp_rows(image: torch.Tensor, flow: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Rows ``start:stop`` of :func:`warp` ``(image, flow)``, equal to them bit for bit, computing only
    those rows: ``(B, C, stop - start, W)``. Its temporaries follow the band, not the image (the full
    :func:`warp` of a 24 MP photo holds ~10 image-sized buffers at once), so a big frame can be made band
    by band. ``flow`` is the whole ``(B, 2, H, W)``; ``0 <= start < stop <= H``.
    """
    _check(image, flow)
    if not 0 <= start < stop <= image.shape[-2]:
        raise ValueError(f"warp_rows: rows {start}:{stop} are not inside 0:{image.shape[-2]}")
    return _warp(image, flow[:, :, start:stop], start)


def _check(image: torch.Tensor, flow: torch.Tensor) -> None:
    if image.shape[0] != flow.shape[0] or image.shape[-2:] != flow.shape[-2:] or flow.shape[1] != 2:
        raise ValueError(f"warp: image {tuple(image.shape)} and flow {tuple(flow.shape)} do not match")


def _warp(image: torch.Tensor, flow: torch.Tensor, row0: int) -> torch.Tensor:
    """:func:`warp` for the output rows ``row0 : row0 + flow.shape[-2]`` (``flow``: those rows only)."""
    b, c, h, w = image.shape
    rows = flow.shape[-2]
    coord_dtype = torch.promote_types(flow.dtype, torch.float32)
    flow = flow.to(coord_dtype)
    ys = torch.arange(h, device=flow.device, dtype=flow.dtype)[row0 : row0 + rows].view(1, rows, 1)
    xs = torch.arange(w, device=flow.device, dtype=flow.dtype).view(1, 1, w)
    x = (xs + flow[:, 0]).clamp(0, w - 1)  # (B, rows, W)
    y = (ys + flow[:, 1]).clamp(0, h - 1)
    x0 = x.detach().floor()
    y0 = y.detach().floor()
    wx = (x - x0).unsqueeze(1).to(image.dtype)  # (B, 1, rows, W)
    wy = (y - y0).unsqueeze(1).to(image.dtype)
    x0l = x0.long()
    y0l = y0.long()
    x1l = (x0l + 1).clamp(max=w - 1)
    y1l = (y0l + 1).clamp(max=h - 1)
    flat = image.reshape(b, c, h * w)

    def tap(yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        idx = (yy * w + xx).view(b, 1, rows * w).expand(b, c, rows * w)
        return flat.gather(2, idx).view(b, c, rows, w)

    top = tap(y0l, x0l) * (1 - wx) + tap(y0l, x1l) * wx
    bottom = tap(y1l, x0l) * (1 - wx) + tap(y1l, x1l) * wx
    return top * (1 - wy) + bottom * wy


class Warp(nn.Module):
    """Module form of :func:`warp`: ``forward(image (B,C,H,W), flow (B,2,H,W)) -> (B,C,H,W)``."""

    def forward(self, image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        return warp(image, flow)


def resize_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize ``flow: (B, 2, h, w)`` to ``size = (H, W)`` and rescale its vectors to the new pixel grid.

    Bilinear interpolation (align_corners=False); x components scale by ``W / w``, y by ``H / h``.
    """
    h, w = flow.shape[-2:]
    if (h, w) == tuple(size):
        return flow
    out = F.interpolate(flow, size=size, mode="bilinear", align_corners=False)
    scale = torch.tensor([size[1] / w, size[0] / h], dtype=out.dtype, device=out.device).view(1, 2, 1, 1)
    return out.mul_(scale)  # in place (interpolate's backward does not need its output): no second copy


def downsample(image: torch.Tensor, factor: int) -> torch.Tensor:
    """Average-pool ``(B, C, H, W)`` by an integer ``factor`` (H, W divisible by it); identity for 1."""
    return image if factor == 1 else F.avg_pool2d(image, factor)


def resample_in_time(flows: torch.Tensor, n: int) -> torch.Tensor:
    """Resample ``flows: (N0, C, H, W)``, sampled at the centres of N0 equal slices of the exposure, to
    ``n`` equal slices: ``(n, C, H, W)``. Linear in time between neighbours; beyond the first / last
    centre the end segments are extended linearly. ``n == N0`` returns the input unchanged.
    """
    n0 = flows.shape[0]
    if n == n0:
        return flows
    if n0 == 1:
        return flows.expand(n, *flows.shape[1:]).clone()
    t = (torch.arange(n, dtype=torch.float64) + 0.5) / n * n0 - 0.5  # position on the N0 grid
    i0 = t.floor().clamp(0, n0 - 2).long()
    a = (t - i0).to(flows.dtype).view(n, 1, 1, 1)  # < 0 or > 1 at the ends: linear extension
    return flows[i0] * (1 - a) + flows[i0 + 1] * a
