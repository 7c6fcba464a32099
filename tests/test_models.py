"""Shapes and invariants of the paper's networks on tiny, odd-sized tensors."""

import re

import pytest
import torch

from blurvid.models import (
    BlurredImageEncoder,
    DeblurNet,
    DMConfig,
    RecurrentVideoDecoder,
    RecurrentVideoEncoder,
    VideoConfig,
    Warp,
    resize_flow,
    warp,
)
from blurvid.models.blocks import ConvLSTMCell, ResidualDenseBlock
from blurvid.models.warp import warp_rows

TINY_DM = DMConfig(widths=(8, 8, 12, 16), growth=(4, 4, 4, 4), rdbs=(1, 1, 1, 1), rdb_layers=2)
TINY_V = VideoConfig(widths=(4, 4, 8, 8), hidden=8, bie_widths=(4, 4, 4, 8, 8, 8))


def test_warp_zero_flow_is_exact_identity():
    img = torch.rand(2, 3, 7, 11)
    assert torch.equal(warp(img, torch.zeros(2, 2, 7, 11)), img)


def test_warp_constant_flow_is_the_known_shift():
    img = torch.rand(1, 3, 9, 13)
    flow = torch.zeros(1, 2, 9, 13)
    flow[:, 0], flow[:, 1] = 2.0, -1.0  # sample 2 px right, 1 px up
    out = warp(img, flow)
    # interior pixels: out[y, x] = img[y - 1, x + 2]
    assert torch.allclose(out[..., 1:, :-2], img[..., :-1, 2:], atol=1e-6)
    # half-pixel flow = average of neighbours
    flow = torch.zeros(1, 2, 9, 13)
    flow[:, 0] = 0.5
    assert torch.allclose(warp(img, flow)[..., :-1], 0.5 * (img[..., :-1] + img[..., 1:]), atol=1e-6)
    flow = torch.zeros(1, 2, 9, 13)  # and down to the bottom row's neighbour
    flow[:, 1] = 0.5
    want = 0.5 * (img[..., :-1, :] + img[..., 1:, :])
    assert torch.allclose(warp(img, flow)[..., :-1, :], want, atol=1e-6)


def test_warp_module_and_gradients():
    img = torch.rand(1, 2, 5, 6, requires_grad=True)
    flow = (torch.randn(1, 2, 5, 6) * 0.7).requires_grad_()
    Warp()(img, flow).sum().backward()
    assert img.grad is not None and flow.grad is not None and flow.grad.abs().sum() > 0


def test_warp_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        warp(torch.rand(1, 3, 5, 5), torch.zeros(1, 2, 5, 6))


def test_warp_rows_are_the_rows_of_warp_bit_for_bit():
    # animate warps a big frame band by band: each band must be exactly those rows of one warp
    torch.manual_seed(0)
    img = torch.rand(2, 3, 23, 17)
    flow = torch.randn(2, 2, 23, 17) * 6  # large enough to sample far rows and clamp at the borders
    whole = warp(img, flow)
    for start, stop in [(0, 23), (0, 1), (5, 6), (7, 19), (22, 23)]:
        assert torch.equal(warp_rows(img, flow, start, stop), whole[:, :, start:stop])
    bands = torch.cat([warp_rows(img, flow, r, min(23, r + 4)) for r in range(0, 23, 4)], 2)
    assert torch.equal(bands, whole)
    for bad in [(0, 0), (-1, 3), (20, 24)]:
        with pytest.raises(ValueError, match="rows"):
            warp_rows(img, flow, *bad)


def test_resize_flow_gradient_with_its_in_place_scaling():
    flow = torch.randn(1, 2, 4, 6, requires_grad=True)
    resize_flow(flow, (8, 18))[:, 0].sum().backward()  # x scaled by 3: each input's share, times 3
    assert torch.allclose(flow.grad[:, 0].sum(), torch.tensor(3.0 * 8 * 18))
    assert torch.equal(flow.grad[:, 1], torch.zeros(1, 4, 6))


def test_resize_flow_rescales_vectors():
    flow = torch.ones(1, 2, 4, 6)
    out = resize_flow(flow, (8, 18))
    assert out.shape == (1, 2, 8, 18)
    assert torch.allclose(out[:, 0], torch.full((1, 8, 18), 3.0))  # x: 18 / 6
    assert torch.allclose(out[:, 1], torch.full((1, 8, 18), 2.0))  # y: 8 / 4


@pytest.mark.parametrize(("h", "w"), [(32, 32), (64, 96), (96, 32)])
def test_deblurnet_shapes(h, w):
    m = DeblurNet(TINY_DM)
    assert m(torch.rand(2, 3, h, w)).shape == (2, 3, h, w)


def test_deblurnet_rejects_non_multiple():
    with pytest.raises(ValueError, match="multiples of 32"):
        DeblurNet(TINY_DM)(torch.rand(1, 3, 33, 64))


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"rdb_layers": True}, "model rdb_layers True: use a whole number, at least 1"),
        (
            {"widths": (8, True, 12, 16)},
            "model widths (8, True, 12, 16): use 4 whole numbers, each at least 1",
        ),
    ],
)
def test_dm_config_refuses_true_as_a_count(kw, message):
    """True is an int to Python (1), but no layer or channel count."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        DMConfig(**{**TINY_DM.to_dict(), **kw})


def test_default_dm_fits_the_size_budget():
    n = sum(p.numel() for p in DeblurNet().parameters())
    assert n * 4 <= 18e6  # the paper's DM is ~18 MB in fp32; ours must not be bigger


def test_the_dm_runs_its_input_and_output_convolutions_in_float32_under_bf16_autocast():
    """Their bf16 weight gradients carried a systematic error as large as the signal (grad_noise.py)."""
    m = DeblurNet(TINY_DM)
    seen: dict[str, torch.dtype] = {}  # the dtypes the convs return
    for name, conv in (("head", m.head), ("tail", m.tail[-1]), ("inner", m.tail[0])):
        conv.register_forward_hook(lambda _m, _i, out, name=name: seen.__setitem__(name, out.dtype))
    # the head's result goes back to bf16 (kept in float32, the first RDBs ran 1.4x slower)
    m.enc[0].register_forward_pre_hook(lambda _m, args: seen.__setitem__("after head", args[0].dtype))
    x = torch.rand(1, 3, 32, 64, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(x)
    want = {
        "head": torch.float32,
        "tail": torch.float32,
        "inner": torch.bfloat16,
        "after head": torch.bfloat16,
    }
    assert seen == want
    assert y.dtype == torch.float32
    y.sum().backward()
    assert m.head.weight.grad.dtype == torch.float32 and torch.isfinite(m.head.weight.grad).all()
    # a module cast as a whole (no autocast) keeps its own dtype at both ends
    h = DeblurNet(TINY_DM).to(torch.bfloat16)
    assert h(torch.rand(1, 3, 32, 32, dtype=torch.bfloat16)).dtype == torch.bfloat16


def test_dm_starts_near_identity():
    x = torch.rand(1, 3, 32, 64)
    assert (DeblurNet(TINY_DM)(x) - x).abs().mean() < 0.05


@pytest.mark.parametrize("n", [1, 3, 7])
@pytest.mark.parametrize(("h", "w"), [(8, 8), (24, 40), (40, 16)])
def test_video_networks_shapes(n, h, w):
    frames = torch.rand(2, n, 3, h, w)
    emb = RecurrentVideoEncoder(TINY_V)(frames)
    assert emb.shape == (2, 2 * TINY_V.hidden, h // 8, w // 8)
    bie = BlurredImageEncoder(TINY_V).eval()
    assert bie(frames.mean(1), frames[:, n // 2]).shape == emb.shape
    res = RecurrentVideoDecoder(TINY_V)(emb, frames[:, n // 2], n)
    for j, s in enumerate((8, 4, 2, 1)):
        assert res.flows[j].shape == (2, n, 2, h // s, w // s)
        assert res.frames[j].shape == (2, n, 3, h // s, w // s)


def test_rvd_any_frame_count_and_flow_only_mode():
    rvd = RecurrentVideoDecoder(TINY_V)
    emb = torch.randn(1, 16, 2, 3)
    res = rvd(emb, torch.rand(1, 3, 16, 24), 15, warp_frames=False)
    assert res.frames == [] and res.flows[-1].shape == (1, 15, 2, 16, 24)


def test_blocks_keep_shape():
    x = torch.rand(1, 6, 5, 7)
    assert ResidualDenseBlock(6, 3, 3)(x).shape == x.shape
    h, c = ConvLSTMCell(6, 4)(x)
    assert h.shape == c.shape == (1, 4, 5, 7)


def test_resample_in_time_is_exact_for_linear_motion():
    from blurvid.models.warp import resample_in_time

    n0 = 9
    t0 = (torch.arange(n0, dtype=torch.float32) + 0.5) / n0 - 0.5  # slice centres, exposure centred on 0
    v = torch.randn(1, 2, 5, 7)
    flows = t0.view(n0, 1, 1, 1) * v  # constant velocity
    assert resample_in_time(flows, n0) is flows
    for n in (1, 2, 7, 15, 20):
        t = (torch.arange(n, dtype=torch.float32) + 0.5) / n - 0.5
        torch.testing.assert_close(resample_in_time(flows, n), t.view(n, 1, 1, 1) * v, atol=1e-5, rtol=0)
    # curved motion: the native samples are kept where the grids coincide (odd n: the centre)
    curved = torch.randn(n0, 2, 3, 3)
    torch.testing.assert_close(resample_in_time(curved, 17)[8], curved[4])
    torch.testing.assert_close(resample_in_time(curved, 27)[1::3], curved)


def test_rve_frame_plus_difference_input():
    cfg = VideoConfig.from_dict({**TINY_V.to_dict(), "rve_input": "frame+diff"})
    torch.manual_seed(0)
    rve = RecurrentVideoEncoder(cfg)
    assert next(rve.encoder.parameters()).shape[1] == 6  # first conv takes frame + difference
    frames = torch.rand(2, 5, 3, 16, 24)
    assert rve(frames).shape == (2, 2 * cfg.hidden, 2, 3)
    # moving one non-central frame changes the embedding
    moved = frames.clone()
    moved[:, 0] = frames[:, 0].roll(2, dims=-1)
    assert not torch.allclose(rve(frames), rve(moved))
    with pytest.raises(ValueError, match="rve_input"):
        RecurrentVideoEncoder(VideoConfig.from_dict({**TINY_V.to_dict(), "rve_input": "flow"}))


def test_rve_options_norm_and_scale_keep_shapes():
    frames = torch.rand(2, 3, 3, 16, 16)
    torch.manual_seed(0)
    base = RecurrentVideoEncoder(TINY_V)
    torch.manual_seed(0)
    scaled = RecurrentVideoEncoder(VideoConfig.from_dict({**TINY_V.to_dict(), "rve_scale": 5.0}))
    torch.testing.assert_close(scaled(frames), 5.0 * base(frames))
    normed = RecurrentVideoEncoder(VideoConfig.from_dict({**TINY_V.to_dict(), "rve_norm": True}))
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in normed.modules()) == 4
    assert normed(frames).shape == base(frames).shape
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in base.modules())  # the paper's RVE by default


def _moving_rvd(seed: int = 0) -> RecurrentVideoDecoder:
    """A tiny RVD whose flow heads give a few pixels of flow, different at every step."""
    torch.manual_seed(seed)
    rvd = RecurrentVideoDecoder(TINY_V)
    with torch.no_grad():
        for head in [rvd.decoder.flow8, *rvd.decoder.flows]:
            head.weight.normal_(0, 0.3)
    return rvd


def test_rvd_feeds_each_step_the_flow_it_predicted_the_step_before():
    """Step t's flow encoder reads flow_input_scale x the finest flow of step t - 1 (zeros at t = 0)."""
    rvd = _moving_rvd()
    seen: list[torch.Tensor] = []
    rvd.flow_encoder.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    emb, center = torch.randn(1, 16, 3, 5), torch.rand(1, 3, 24, 40)
    res = rvd(emb, center, 6)
    finest = res.flows[-1]  # (B, N, 2, H, W)
    assert len(seen) == 6 and torch.equal(seen[0], torch.zeros(1, 2, 24, 40))
    for t in range(1, 6):
        torch.testing.assert_close(seen[t], TINY_V.flow_input_scale * finest[:, t - 1], rtol=0, atol=1e-7)
    assert finest[:, 1:].abs().mean() > 0.1 and not torch.allclose(finest[:, 1], finest[:, 2])
    # and what it reads steers it: another flow at step 2 changes steps 3.. but not 0..2
    flow_head = rvd.decoder.flows[-1]
    calls = [0]

    def nudge(module, args, out):  # type: ignore[no-untyped-def]
        calls[0] += 1
        return out + 1.0 if calls[0] == 3 else out

    flow_head.register_forward_hook(nudge)
    nudged = rvd(emb, center, 6).flows[-1]
    torch.testing.assert_close(nudged[:, 2], finest[:, 2] + 1.0)
    assert torch.equal(nudged[:, :2], finest[:, :2])
    assert not torch.allclose(nudged[:, 3], finest[:, 3], atol=1e-4)


def test_rvd_returns_its_steps_in_time_order_and_warps_the_centre_by_each():
    """``flows[j][:, t]`` is recurrence step t's flow at scale j and ``frames[j][:, t]`` the centre (down-
    sampled to that scale) warped by it: the frames come in the order the decoder ran."""
    from blurvid.models.encoders import split_state
    from blurvid.models.warp import downsample

    rvd = _moving_rvd(1)
    emb, center = torch.randn(1, 16, 2, 3), torch.rand(1, 3, 16, 24)
    res = rvd(emb, center, 5)
    state, prev = split_state(emb), torch.zeros(1, 2, 16, 24)
    for t in range(5):
        flows, state = rvd.step(prev, state)
        prev = flows[-1]
        for j, s in enumerate((8, 4, 2, 1)):
            assert torch.equal(res.flows[j][:, t], flows[j]), (t, j)
            want = warp(downsample(center, s), flows[j])
            torch.testing.assert_close(res.frames[j][:, t], want, rtol=0, atol=1e-6)
    steps = res.flows[-1][0]
    assert all(not torch.allclose(steps[t], steps[t + 1], atol=1e-3) for t in range(4))  # distinct steps


# ------------------------------------------------------------------ round 5: mutation audit


def test_a_residual_dense_block_scales_its_residual_by_res_scale():
    """``x + scale * fused``: the DM's res_scale (0.2) must reach every RDB (ignored, each block added
    its whole residual)."""
    torch.manual_seed(0)
    x = torch.rand(1, 6, 5, 7)
    full = ResidualDenseBlock(6, 3, 2, scale=1.0)
    part = ResidualDenseBlock(6, 3, 2, scale=0.2)
    part.load_state_dict(full.state_dict())
    with torch.no_grad():
        residual, scaled = full(x) - x, part(x) - x
    assert float(residual.abs().max()) > 1e-3
    torch.testing.assert_close(scaled, 0.2 * residual, atol=1e-6, rtol=1e-5)


def test_the_convlstm_step_is_the_lstm_update_and_starts_with_forget_bias_one():
    """With the convolution reduced to its biases (i, f, o, g in that order): ``c' = s(f) c + s(i)
    tanh(g)``, ``h' = s(o) tanh(c')``; a new cell's forget gate starts at bias 1 (memory survives)."""
    cell = ConvLSTMCell(2, 3)
    hid = 3
    assert torch.equal(cell.gates.bias[hid : 2 * hid], torch.ones(hid))
    assert not torch.equal(cell.gates.bias[:hid], torch.ones(hid))
    with torch.no_grad():
        cell.gates.weight.zero_()
        cell.gates.bias.copy_(torch.tensor([0.5, -1.0, 2.0, 0.3]).repeat_interleave(hid))
    x = torch.rand(1, 2, 4, 5)
    c0 = torch.full((1, hid, 4, 5), 0.7)
    h, c = cell(x, (torch.rand(1, hid, 4, 5), c0))
    s = torch.sigmoid
    want_c = s(torch.tensor(-1.0)) * 0.7 + s(torch.tensor(0.5)) * torch.tanh(torch.tensor(0.3))
    torch.testing.assert_close(c, torch.full_like(c, float(want_c)))
    torch.testing.assert_close(h, torch.full_like(h, float(s(torch.tensor(2.0)) * torch.tanh(want_c))))


def test_the_flow_decoder_doubles_a_flow_it_upsamples():
    """Flows are in pixels of their scale: a coarse flow upsampled 2x must be doubled, so a constant
    1/8-scale flow with zero refinements is 8x that in full-scale pixels."""
    from blurvid.models.decoder import FlowDecoder

    widths, hidden = (4, 4, 8, 8), 8
    fd = FlowDecoder(widths, hidden)
    with torch.no_grad():
        for head in [fd.flow8, *fd.flows]:
            head.weight.zero_()
            head.bias.zero_()
        fd.flow8.bias.copy_(torch.tensor([1.0, -0.5]))
    h = torch.rand(1, hidden, 2, 3)
    skips = [
        torch.rand(1, widths[0], 16, 24),
        torch.rand(1, widths[1], 8, 12),
        torch.rand(1, widths[2], 4, 6),
    ]
    flows = fd(h, skips)
    assert [tuple(f.shape[-2:]) for f in flows] == [(2, 3), (4, 6), (8, 12), (16, 24)]
    for f, s in zip(flows, (1, 2, 4, 8), strict=True):
        torch.testing.assert_close(f[0, 0], torch.full((f.shape[-2], f.shape[-1]), 1.0 * s))
        torch.testing.assert_close(f[0, 1], torch.full((f.shape[-2], f.shape[-1]), -0.5 * s))


def test_the_rve_differences_an_even_sequence_against_its_paper_central_frame():
    """The central frame is x_ceil(N/2) (1-based): index (N - 1) // 2, so frame 1 of 4, whose difference
    channels are then zero (index N // 2 agrees only for odd N)."""
    cfg = VideoConfig.from_dict({**TINY_V.to_dict(), "rve_input": "frame+diff"})
    rve = RecurrentVideoEncoder(cfg)
    seen: list[torch.Tensor] = []
    rve.encoder.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    frames = torch.rand(1, 4, 3, 16, 16)
    rve(frames)
    diff = seen[0].view(1, 4, 6, 16, 16)[:, :, 3:]
    assert [bool(diff[0, n].abs().max() == 0) for n in range(4)] == [False, True, False, False]
    torch.testing.assert_close(diff[0, 0], frames[0, 0] - frames[0, 1])


def test_the_bie_reads_the_blurred_photo_in_its_first_three_channels():
    """Checkpoints were trained on cat([blurred, sharp]); the other order would run, shapes unchanged."""
    bie = BlurredImageEncoder(TINY_V)
    seen: list[torch.Tensor] = []
    bie.net[0].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    blurred, sharp = torch.full((1, 3, 16, 16), 0.2), torch.full((1, 3, 16, 16), 0.8)
    bie(blurred, sharp)
    assert torch.equal(seen[0][:, :3], blurred) and torch.equal(seen[0][:, 3:], sharp)


def test_a_bottleneck_made_identity_maps_its_input_to_itself():
    """A block grown into a trained DM starts as the identity: ``x + body(x)`` with the expanding conv
    zeroed (without the skip it would output zeros and break the grown network)."""
    from blurvid.models.deblur import Bottleneck

    block = Bottleneck(8)
    x = torch.rand(1, 8, 5, 7)
    assert not torch.allclose(block(x), x)
    block.make_identity()
    assert torch.equal(block(x), x)


def test_config_changes_compares_settings_as_the_config_reads_them():
    from blurvid.models.deblur import DMConfig
    from blurvid.models.encoders import VideoConfig

    base = {"rdbs": [3, 4, 5, 6]}
    assert DMConfig.changes(base, {"rdbs": (3, 4, 5, 6), "nonsense": 1}) == {}  # a list for a tuple; no field
    assert DMConfig.changes(base, {}) == {}
    assert DMConfig.changes(base, {"res_scale": 0.5}) == {"res_scale": (0.2, 0.5)}
    assert VideoConfig.changes({}, {"hidden": 8, "bie_widths": [4] * 6}) == {
        "hidden": (128, 8),
        "bie_widths": ((32, 64, 64, 128, 128, 256), (4, 4, 4, 4, 4, 4)),
    }
    with pytest.raises(ValueError, match="res_scale"):
        DMConfig.changes(base, {"res_scale": 2.0})
