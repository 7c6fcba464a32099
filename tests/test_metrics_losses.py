"""Metrics and losses on hand-made cases."""

import math

import numpy as np
import pytest
import torch
from conftest import TINY_DM

from blurvid.metrics import (
    aligned_psnr,
    best_shift,
    gaussian_blur,
    ordering_invariant_error,
    ppsnr,
    psnr,
    ssim,
    video_psnr,
)
from blurvid.train.losses import align_to_target, fft_l1, ordering_invariant, tv


def test_psnr_hand_case():
    x = torch.zeros(1, 3, 4, 4)
    y = torch.full((1, 3, 4, 4), 0.1)  # mse 0.01 -> 20 dB
    assert math.isclose(float(psnr(x, y)), 20.0, abs_tol=1e-4)
    assert float(psnr(x, x)) == 100.0  # capped
    assert math.isclose(float(psnr(x * 255, y * 255, peak=255.0)), 20.0, abs_tol=1e-4)  # 8-bit values


def test_ssim_identity_and_noise():
    x = torch.rand(2, 3, 24, 24)
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-5)
    assert float(ssim(x, (x + 0.3 * torch.randn_like(x)).clamp(0, 1)).mean()) < 0.9


def _ssim_reference(x: np.ndarray, y: np.ndarray) -> float:
    """Wang et al. 2004 on one (H, W) channel in [0, 1], written out in float64 numpy: an 11 x 11
    Gaussian window of sigma 1.5 over every valid position, K1 0.01, K2 0.03, the map's mean."""
    ax = np.arange(11) - 5
    g = np.exp(-(ax**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()

    def filt(t: np.ndarray) -> np.ndarray:
        return np.einsum("ijkl,kl->ij", np.lib.stride_tricks.sliding_window_view(t, (11, 11)), w)

    c1, c2 = 0.01**2, 0.03**2
    mx, my = filt(x), filt(y)
    vx, vy, cov = filt(x * x) - mx**2, filt(y * y) - my**2, filt(x * y) - mx * my
    return float((((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))).mean())


def test_ssim_matches_the_published_definition():
    """Identity and "noise lowers it" cannot tell a wrong window or constant: pin the value."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 30, 41, generator=g, dtype=torch.float64)
    y = (x + 0.1 * torch.randn(1, 3, 30, 41, generator=g, dtype=torch.float64)).clamp(0, 1)
    y[:, :, :, 20:] *= 0.7  # darker and lower in contrast on one side: the constants matter there
    want = np.mean([_ssim_reference(x[0, c].numpy(), y[0, c].numpy()) for c in range(3)])
    assert abs(float(ssim(x.float(), y.float())[0]) - want) < 1e-4, (float(ssim(x.float(), y.float())), want)


def test_ppsnr_is_order_invariant_but_psnr_is_not():
    t = torch.rand(1, 5, 3, 8, 8)
    rev = t.flip(1)
    assert float(ppsnr(rev, t)) == 100.0
    assert float(video_psnr(rev, t)) < 40


def test_eq6_invariant_to_reversal_and_zero_for_truth():
    t = torch.rand(2, 9, 3, 6, 6)
    p = torch.rand(2, 9, 3, 6, 6)
    assert torch.allclose(ordering_invariant(p, t), ordering_invariant(p.flip(1), t), atol=1e-6)
    assert float(ordering_invariant_error(t.flip(1), t).max()) < 1e-6
    assert float(ordering_invariant(p, t)) > 0.01
    # the centre's self-pair counts: only the centre of three frames off by 0.1 -> | |2p| - |2t| | = 0.2
    t3 = torch.full((1, 3, 3, 5, 7), 0.4)
    p3 = t3.clone()
    p3[:, 1] += 0.1
    assert math.isclose(float(ordering_invariant_error(p3, t3)), 0.2, abs_tol=1e-6)


def test_gaussian_blur_of_a_point_is_the_normalised_gaussian_out_to_three_sigma():
    point = torch.zeros(1, 1, 11, 13)
    point[..., 5, 6] = 1
    out = gaussian_blur(point, 1.0)
    g = np.exp(-(np.arange(-3, 4) ** 2) / 2.0)
    g /= g.sum()
    want = np.zeros((11, 13))
    want[2:9, 3:10] = np.outer(g, g)  # radius round(3 sigma) = 3 px: nothing further out
    assert out.shape == (1, 1, 11, 13) and np.allclose(out[0, 0].numpy(), want, atol=1e-7)


def test_tv_of_constant_flow_is_zero():
    assert float(tv(torch.full((2, 2, 7, 5), 3.3))) == 0.0
    ramp = torch.arange(5.0).view(1, 1, 1, 5).expand(1, 2, 4, 5)
    assert math.isclose(float(tv(ramp)), 1.0, abs_tol=1e-6)


def test_aligned_psnr_finds_the_shift():
    y = torch.rand(1, 1, 40, 40)
    x = torch.roll(y, shifts=(3, -2), dims=(-2, -1))
    assert float(aligned_psnr(x, y, 4)) == 100.0
    assert float(psnr(x, y)) < 20
    assert best_shift(x, y, 4) == (3, -2)
    assert torch.equal(torch.roll(x, (-3, 2), (-2, -1)), y)  # the documented way to line x up with y
    for other in (torch.rand(1, 1, 41, 40), torch.rand(1, 1, 40, 39)):  # larger or smaller: not scored
        with pytest.raises(ValueError, match="aligned PSNR of a 40x40 image against"):
            best_shift(other, y, 4)


def test_video_psnr_pools_the_error_over_frames():
    t = torch.zeros(1, 3, 1, 2, 2)
    p = t.clone()
    p[:, 0] = 0.1  # one frame off by 0.1: pooled MSE = 0.01 / 3
    assert math.isclose(float(video_psnr(p, t)), 10 * math.log10(300), abs_tol=1e-3)


def test_fft_l1_is_zero_for_equal_images_and_sized_like_pixel_l1():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 17, 22, generator=g)  # odd sizes: rfft2 keeps W // 2 + 1 columns
    assert float(fft_l1(a, a)) == 0.0
    e = 0.1 * torch.randn(2, 3, 17, 22, generator=g)
    got = float(fft_l1(a + e, a))
    spec = torch.fft.fft2(e, norm="ortho")  # the full spectrum: same per-coefficient sizes
    want = float(torch.cat([spec.real, spec.imag]).abs().mean())
    assert abs(got - want) / want < 0.1
    assert 0.03 < got < 0.12  # white error of size 0.1 -> coefficients of size ~0.1 / sqrt(2) per part
    # a constant shift lives in the DC coefficient only: sqrt(H * W) * 0.1 in one of 17 * 12 * 2 numbers
    shift = float(fft_l1(a + 0.1, a))
    assert abs(shift - (17 * 22) ** 0.5 * 0.1 / (17 * 12 * 2)) < 1e-5


def test_align_to_target_finds_each_samples_shift_and_keeps_the_gradient():
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 3, 19, 23, generator=g)  # odd sizes
    pred = torch.stack([torch.roll(target[0], (1, -2), (-2, -1)), torch.roll(target[1], (-1, 0), (-2, -1))])
    pred.requires_grad_(True)
    p, t = align_to_target(pred, target, 2)
    assert p.shape == t.shape == (2, 3, 15, 19)
    assert torch.equal(t, target[..., 2:-2, 2:-2])
    assert torch.equal(p.detach(), t)  # each sample found its own shift: a zero loss
    (p - 0.5).abs().sum().backward()
    assert pred.grad is not None and int((pred.grad != 0).sum()) == 2 * 3 * 15 * 19
    unshifted = torch.rand(1, 3, 19, 23, generator=g)
    first = target[:1]
    p0, t0 = align_to_target(unshifted, first, 0)  # off: the inputs, unchanged
    assert p0 is unshifted and t0 is first
    p1, _ = align_to_target(target[:1].clone(), target[:1], 3)
    assert torch.equal(p1, target[:1, :, 3:-3, 3:-3])  # already aligned: no shift


# ------------------------------------------------------------------ round 5: mutation audit


def test_tv_and_the_edge_term_count_vertical_changes_too():
    """A flow or error that changes only down the rows has TV / gradient-L1 of its row step (the dy
    term dropped would give 0); changes along the columns count the same."""
    from blurvid.train.losses import gradient_l1

    rows = torch.arange(7, dtype=torch.float32).view(1, 1, 7, 1).expand(1, 2, 7, 9) * 0.5
    assert float(tv(rows)) == pytest.approx(0.5)
    assert float(tv(rows.transpose(-1, -2))) == pytest.approx(0.5)
    target = torch.rand(2, 3, 7, 9, generator=torch.Generator().manual_seed(0))
    ramp = torch.arange(7, dtype=torch.float32).view(1, 1, 7, 1) * 0.1
    assert float(gradient_l1(target + ramp, target)) == pytest.approx(0.1, abs=1e-6)
    assert float(gradient_l1(target + torch.arange(9.0).view(1, 1, 1, 9) * 0.1, target)) == pytest.approx(
        0.1, abs=1e-6
    )


def test_the_coarse_warm_up_boosts_the_coarse_scales_and_fades_out():
    """coarse_warmup: lambda_1/8 up to 4x and lambda_1/4 up to 2.5x at the start, linear back to the
    configured weights; the finer scales are never boosted."""
    from blurvid.train.config import TrainConfig
    from blurvid.train.video_tasks import AutoencoderTask

    task = object.__new__(AutoencoderTask)
    task.cfg = TrainConfig(stage="autoencoder", coarse_warmup=100, lambdas=(1.0, 1.0, 1.0, 1.0))
    assert task._lambdas(0) == pytest.approx([4.0, 2.5, 1.0, 1.0])
    assert task._lambdas(50) == pytest.approx([2.5, 1.75, 1.0, 1.0])
    assert task._lambdas(100) == task._lambdas(1000) == [1.0, 1.0, 1.0, 1.0]


def test_true_flows_at_a_coarser_scale_are_in_that_scales_pixels():
    """8 px at full scale is 2 px at 1/4 scale (the supervision compared 1/4-scale flows with 8)."""
    from blurvid.train.video_tasks import flows_at_scale

    flows = torch.full((1, 3, 2, 16, 24), 8.0)
    flows[:, :, 1] = -4.0
    small = flows_at_scale(flows, 4)
    assert small.shape == (1, 3, 2, 4, 6)
    assert torch.equal(small[:, :, 0], torch.full((1, 3, 4, 6), 2.0))
    assert torch.equal(small[:, :, 1], torch.full((1, 3, 4, 6), -1.0))


def test_the_bie_stage_is_scored_by_ppsnr_and_the_autoencoder_by_psnr():
    """Stage bie cannot know the motion's direction (its score is pPSNR); stage 1 reconstructs the
    frames in order (PSNR). A prediction in reverse order tells them apart."""
    import contextlib

    from blurvid.models.decoder import DecodeResult
    from blurvid.train.video_tasks import AutoencoderTask, BIETask

    frames = torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    item = {"frames": frames, "target": frames[2]}

    def reversed_net(batch):  # type: ignore[no-untyped-def]
        return DecodeResult(flows=[], frames=[batch["frames"].flip(1)])

    for cls, key in ((AutoencoderTask, "val_psnr"), (BIETask, "val_ppsnr")):
        task = object.__new__(cls)
        task._centre = None
        res = task.validate(reversed_net, [item], torch.device("cpu"), contextlib.nullcontext)
        assert res["val_ppsnr"] > res["val_psnr"] + 10
        assert res["val_score"] == res[key]


def test_the_deblur_loss_weighs_its_edge_term_and_validation_scores_the_blurred_input():
    """loss = l1 + edge_loss * gradient_l1; val_psnr_blurred is the input's PSNR (the baseline), not
    the output's."""
    import contextlib

    from blurvid.train.config import TrainConfig
    from blurvid.train.losses import gradient_l1, l1
    from blurvid.train.tasks import DeblurTask

    task = DeblurTask(TrainConfig.for_stage("deblur", model=TINY_DM, edge_loss=0.5))
    g = torch.Generator().manual_seed(0)
    out, target, blurred = (torch.rand(2, 3, 16, 16, generator=g) for _ in range(3))
    loss, logs = task.loss(out, {"target": target}, 0)
    edge = float(gradient_l1(out, target))
    assert float(loss) == pytest.approx(float(l1(out, target)) + 0.5 * edge, rel=1e-6)
    assert logs["edge"] == pytest.approx(edge)
    items = [{"blurred": blurred[0], "target": target[0]}]
    res = task.validate(lambda x: target[:1], items, torch.device("cpu"), contextlib.nullcontext)
    assert res["val_psnr"] == pytest.approx(100.0)
    assert res["val_psnr_blurred"] == pytest.approx(float(psnr(blurred[:1], target[:1])))
