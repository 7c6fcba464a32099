"""Padding and overlapping-tile inference: exact where the operator's reach is within the overlap."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from blurvid.tiling import crop_to, pad_to_multiple, run_tiled, tile_starts, tiles


# (4, 4, 8): a pad as long as the side, which reflection cannot give (F.pad raises); (12, 3, 8): only the
# width is too narrow for it
@pytest.mark.parametrize(
    ("h", "w", "m"), [(5, 7, 8), (33, 31, 32), (64, 64, 32), (1, 3, 8), (4, 4, 8), (12, 3, 8)]
)
def test_pad_then_crop_round_trip(h, w, m):
    x = torch.rand(1, 3, h, w)
    p, size = pad_to_multiple(x, m)
    assert p.shape[-2] % m == 0 and p.shape[-1] % m == 0
    assert torch.equal(crop_to(p, size), x)


@pytest.mark.parametrize(
    ("length", "tile", "overlap"), [(10, 16, 4), (100, 32, 8), (257, 64, 16), (64, 64, 8)]
)
def test_tile_starts_cover_with_overlap(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] + min(tile, length) == length
    for a, b in itertools.pairwise(starts):
        assert a + tile - b >= overlap  # overlap at least as asked


def test_an_overlap_of_half_a_tile_or_more_is_refused():
    assert tile_starts(100, 16, 7)[-1] == 84
    for overlap in (8, 9):
        with pytest.raises(ValueError, match="less than half the tile size"):
            tile_starts(100, 16, overlap)


def test_overlapping_tiles_blend_along_the_documented_ramp():
    """Each tile returns its own x0 everywhere: across the 8 px overlap of the tiles at 0 and 12 the
    result is 12 * w, w the ramp (0 over the outer quarter, then linear through half-pixel centres), and
    the weights of the two tiles sum to one."""
    x = torch.arange(32.0).expand(1, 1, 5, 32).contiguous()
    out = run_tiled(lambda t: torch.full_like(t, float(t[0, 0, 0, 0])), x, tile=20, overlap=8)
    assert tile_starts(32, 20, 8) == [0, 12]
    ramp = [0.0, 0.0, 1.5, 4.5, 7.5, 10.5, 12.0, 12.0]
    assert torch.equal(out, torch.tensor([0.0] * 12 + ramp + [12.0] * 12).expand(1, 1, 5, 32))


def test_tiled_equals_untiled_for_a_local_operator():
    torch.manual_seed(0)
    k = torch.randn(3, 3, 5, 5)

    def op(t):  # reach of 2 px: any overlap >= 2 * 2 makes tiling exact up to the blend
        return F.conv2d(F.pad(t, (2, 2, 2, 2), mode="replicate"), k)

    x = torch.rand(1, 3, 75, 101)
    ref = op(x)
    calls = []
    out = run_tiled(op, x, tile=32, overlap=12, on_tile=lambda d, n: calls.append((d, n)))
    inner = (slice(None), slice(None), slice(2, -2), slice(2, -2))
    assert torch.allclose(out[inner], ref[inner], atol=1e-5)
    n = len(tiles(75, 101, 32, 12))
    assert calls[-1] == (n, n) and len(calls) == n  # every tile computed exactly once


def test_single_tile_short_circuit():
    x = torch.rand(1, 3, 20, 30)
    seen = []
    out = run_tiled(lambda t: t * 2, x, tile=64, overlap=8, on_tile=lambda d, n: seen.append(n))
    assert torch.equal(out, x * 2) and seen == [1]


def test_max_pixels_runs_a_wide_input_in_one_pass():
    # a 20x90 input is wider than the 64 px tile but has fewer pixels than 64*64: one call, no blending
    x = torch.rand(1, 3, 20, 90)
    shapes, seen = [], []

    def op(t):
        shapes.append(tuple(t.shape[-2:]))
        return t * 2

    out = run_tiled(op, x, tile=64, overlap=8, on_tile=lambda d, n: seen.append((d, n)), max_pixels=64 * 64)
    assert torch.equal(out, x * 2) and shapes == [(20, 90)] and seen == [(1, 1)]
    shapes.clear()
    run_tiled(op, x, tile=64, overlap=8)  # without it: tiled along the long side
    assert len(shapes) == 2 and all(s[1] == 64 for s in shapes)
    big = torch.rand(1, 3, 70, 70)  # 4900 > 4096 pixels: tiled even with max_pixels
    shapes.clear()
    run_tiled(op, big, tile=64, overlap=8, max_pixels=64 * 64)
    assert len(shapes) == 4
    shapes.clear()  # "at most that many pixels": exactly max_pixels is one pass too
    run_tiled(op, torch.rand(1, 3, 8, 32), tile=16, overlap=4, max_pixels=16 * 16)
    assert shapes == [(8, 32)]


def test_a_single_pass_result_is_on_out_device_too():
    # meta stands in for "not x's device" (a GPU's output kept on the CPU); the tiled path is left out:
    # meta's first in-place kernels cost seconds to set up
    meta = torch.device("meta")
    out = run_tiled(lambda t: t * 2, torch.rand(1, 3, 5, 7), tile=16, overlap=4, out_device=meta)
    assert out.device == meta and out.shape == (1, 3, 5, 7)


def test_deblurrer_runs_photos_up_to_1080p_sized_in_one_pass():
    # the DM's memory follows its pixel count: a frame of <= 2 * tile**2 pixels is not split (no seams,
    # no recomputed overlap), a larger one is
    from blurvid.models import DeblurNet, DMConfig
    from blurvid.pipeline import Deblurrer

    net = DeblurNet(DMConfig(widths=(4, 4, 4, 4), growth=(2, 2, 2, 2), rdbs=(1, 1, 1, 1), rdb_layers=1))
    calls = []
    d = Deblurrer(net, torch.device("cpu"), tile=64, overlap=8)
    d.batch = lambda t: (calls.append(tuple(t.shape[-2:])), t)[1]  # count the passes
    d.tensor(torch.rand(1, 3, 80, 100))  # 8000 <= 2 * 64**2 pixels although both sides exceed 64
    assert calls == [(80, 100)]
    calls.clear()
    d.tensor(torch.rand(1, 3, 48, 180))  # 8640 pixels: tiled
    assert len(calls) == len(tiles(48, 180, 64, 8)) == 4


def _run_tiled_reference(fn, x, tile, overlap):
    """run_tiled as it was before the in-place blend (session 22): ``acc / wsum`` as a new tensor."""
    from blurvid.tiling import _ramp

    _, _, h, w = x.shape
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    acc, wsum = None, torch.zeros(1, 1, h, w)
    for y0, x0, th, tw in tiles(h, w, tile, overlap):
        out = fn(x[..., y0 : y0 + th, x0 : x0 + tw]).float()
        if acc is None:
            acc = torch.zeros(1, out.shape[1], h, w)
        yi, xi = ys.index(y0), xs.index(x0)
        top = ys[yi - 1] + th - y0 if yi > 0 else 0
        bottom = y0 + th - ys[yi + 1] if yi + 1 < len(ys) else 0
        left = xs[xi - 1] + tw - x0 if xi > 0 else 0
        right = x0 + tw - xs[xi + 1] if xi + 1 < len(xs) else 0
        wt = (_ramp(th, top, bottom, x.device)[:, None] * _ramp(tw, left, right, x.device)[None, :])[
            None, None
        ]
        acc[..., y0 : y0 + th, x0 : x0 + tw] += out * wt
        wsum[..., y0 : y0 + th, x0 : x0 + tw] += wt
    return acc / wsum


@pytest.mark.parametrize(("h", "w", "tile", "overlap"), [(37, 53, 16, 5), (61, 29, 24, 8), (17, 70, 16, 4)])
def test_run_tiled_blend_unchanged_bit_for_bit(h, w, tile, overlap):
    # the blend is normalised in place to save a full-size copy: the same bits as the reference's division
    torch.manual_seed(h)
    x = torch.rand(1, 3, h, w)

    def op(t):  # not local and not linear: every tile's values differ where tiles overlap
        return torch.sin(7 * t) * t.mean() + t.flip(-1)

    out = run_tiled(op, x, tile=tile, overlap=overlap)
    assert out.dtype == torch.float32 and torch.equal(out, _run_tiled_reference(op, x, tile, overlap))
