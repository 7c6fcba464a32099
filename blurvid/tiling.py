"""Overlapping tiles with seamless blending, and pad-to-multiple helpers. Pure tensor functions.

A big photo is cut into tiles of at most ``tile`` px per side that overlap by ``overlap`` px; each tile
is processed independently and the results are blended with weights that ramp linearly across the
middle of each overlap (a partition of unity; the outer quarter, where a tile saw padding instead of
image, gets weight 0), so no seams appear and every tile is computed once. An operator whose reach is
at most ``overlap / 4`` px gives exactly the untiled result.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def pad_to_multiple(
    x: torch.Tensor, multiple: int, mode: str = "reflect"
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad ``(B, C, H, W)`` on the bottom/right to multiples of ``multiple``; returns (padded, (H, W)).

    Reflection where the image is large enough, replication otherwise (reflect needs pad < size).
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    if mode == "reflect" and (ph >= h or pw >= w):
        mode = "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Undo :func:`pad_to_multiple`: ``x[..., :H, :W]``."""
    return x[..., : size[0], : size[1]]


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)`` with at least ``overlap`` overlap.

    The last tile ends exactly at ``length``; a single tile when ``length <= tile``.
    """
    if length <= tile:
        return [0]
    if 2 * overlap >= tile:
        raise ValueError("the overlap must be less than half the tile size")
    step = tile - overlap
    n = -(-(length - tile) // step) + 1  # ceil
    # spread the tiles evenly so every overlap is >= `overlap`
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def _edge_weights(overlap: int, device: torch.device) -> torch.Tensor:
    """Weights rising 0 -> 1 across an overlap of ``overlap`` px.

    The outer quarter is 0 (a tile's own border pixels saw padding, not image), then a linear ramp.
    The mirrored ramp of the neighbouring tile is exactly ``1 - w``, so blends sum to one.
    """
    m = overlap // 4
    span = max(overlap - 2 * m, 1)
    return ((torch.arange(overlap, device=device) - m + 0.5) / span).clamp(0, 1)


def _ramp(length: int, lo_overlap: int, hi_overlap: int, device: torch.device) -> torch.Tensor:
    """1-D weights for a tile: ramps over the parts shared with its neighbours, 1 elsewhere."""
    w = torch.ones(length, device=device)
    if lo_overlap > 0:
        w[:lo_overlap] = _edge_weights(lo_overlap, device)
    if hi_overlap > 0:
        w[length - hi_overlap :] = torch.minimum(
            w[length - hi_overlap :], _edge_weights(hi_overlap, device).flip(0)
        )
    return w


def tiles(h: int, w: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """``(y0, x0, th, tw)`` for every tile of an ``h x w`` image (row-major)."""
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    return [(y, x, min(tile, h), min(tile, w)) for y in ys for x in xs]


def run_tiled(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tile: int,
    overlap: int,
    on_tile: Callable[[int, int], None] | None = None,
    out_device: torch.device | None = None,
    max_pixels: int = 0,
) -> torch.Tensor:
    """Apply an image-to-image ``fn`` (same size in and out) to ``x: (1, C, H, W)`` tile by tile.

    Tiles overlap by ``overlap`` px and are blended with linear ramps; each tile is computed once.
    ``on_tile(done, total)`` reports progress. The result is accumulated on ``out_device`` (default:
    ``x``'s device) so a GPU holds only one tile at a time. ``max_pixels > 0``: an input of at most that
    many pixels runs in one pass even when a side exceeds ``tile`` (for an ``fn`` whose memory follows
    the pixel count). Returns ``(1, C_out, H, W)`` float32 (in one pass: ``fn``'s result as it is).

    Memory beyond ``x`` and one tile's work: the float32 result and a one-channel weight sum of the image's
    size; the blend is normalised in place, so no third full-size copy is made.
    """
    _, _, h, w = x.shape
    boxes = [(0, 0, h, w)] if h * w <= max_pixels else tiles(h, w, tile, overlap)
    if len(boxes) == 1:
        y = fn(x)
        if on_tile:
            on_tile(1, 1)
        return y.to(out_device) if out_device is not None else y
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    dev = out_device or x.device
    acc = None
    wsum = torch.zeros(1, 1, h, w, device=dev)
    for i, (y0, x0, th, tw) in enumerate(boxes):
        out = fn(x[..., y0 : y0 + th, x0 : x0 + tw]).to(dev).float()
        if acc is None:
            acc = torch.zeros(1, out.shape[1], h, w, device=dev)
        yi, xi = ys.index(y0), xs.index(x0)
        top = ys[yi - 1] + th - y0 if yi > 0 else 0
        bottom = y0 + th - ys[yi + 1] if yi + 1 < len(ys) else 0
        left = xs[xi - 1] + tw - x0 if xi > 0 else 0
        right = x0 + tw - xs[xi + 1] if xi + 1 < len(xs) else 0
        wy = _ramp(th, top, bottom, dev)
        wx = _ramp(tw, left, right, dev)
        wt = (wy[:, None] * wx[None, :])[None, None]
        acc[..., y0 : y0 + th, x0 : x0 + tw] += out * wt
        wsum[..., y0 : y0 + th, x0 : x0 + tw] += wt
        if on_tile:
            on_tile(i + 1, len(boxes))
    return acc.div_(wsum)  # in place: the same values as acc / wsum, without another full-size copy
