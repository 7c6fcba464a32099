"""Synthesis engine: exact averaging, reproducibility, sizes, true flows consistent with the warp."""

import pytest
import torch

from blurvid.data.synth import (
    SynthConfig,
    average_frames,
    center_index,
    linear_to_srgb,
    random_path,
    srgb_to_linear,
    synthesize,
    to_grey,
    tremor_path,
)
from blurvid.models.warp import warp


def _image(h=150, w=170, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(3, h // 10, w // 10, generator=g)
    img = torch.nn.functional.interpolate(base[None], size=(h, w), mode="bicubic", align_corners=False)[0]
    return (img + 0.1 * torch.rand(3, h, w, generator=g)).clamp(0, 1)


CLEAN = dict(
    subframes=1,
    size=48,
    zoom=(1.0, 1.0),
    shot_noise=(0.0, 0.0),
    read_noise=(0.0, 0.0),
    quantize=False,
    highlight_p=0.0,
    gamma_average_p=0.0,
    hflip=False,
)


def test_srgb_round_trip():
    x = torch.linspace(0, 1, 101)
    assert torch.allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-6)


def test_averaging_the_frames_reproduces_the_blur_before_noise():
    cfg = SynthConfig(frames=7, objects=(1, 1), **CLEAN)
    s = synthesize(_image(), torch.Generator().manual_seed(3), cfg, others=[_image(seed=1)])
    assert torch.allclose(average_frames(s.frames), s.blurred, atol=1e-5)


def test_same_seed_same_bytes_and_sizes():
    cfg = SynthConfig(frames=5, subframes=3, size=40, objects=(0, 2))
    a = synthesize(_image(), torch.Generator().manual_seed(7), cfg, others=[_image(seed=2)])
    b = synthesize(_image(), torch.Generator().manual_seed(7), cfg, others=[_image(seed=2)])
    assert (
        torch.equal(a.blurred, b.blurred)
        and torch.equal(a.frames, b.frames)
        and torch.equal(a.flows, b.flows)
    )
    assert (
        a.blurred.shape == (3, 40, 40)
        and a.frames.shape == (5, 3, 40, 40)
        and a.flows.shape == (5, 2, 40, 40)
    )
    assert a.center == center_index(5) == 2
    c = synthesize(_image(), torch.Generator().manual_seed(8), cfg, others=[_image(seed=2)])
    assert not torch.equal(a.blurred, c.blurred)


def test_central_target_is_an_exact_crop_and_has_zero_flow():
    cfg = SynthConfig(frames=9, **{**CLEAN, "subframes": 3})
    s = synthesize(_image(), torch.Generator().manual_seed(0), cfg)
    assert s.flows[s.center].abs().max() < 1e-6


def test_true_flows_explain_the_frames():
    cfg = SynthConfig(
        frames=9, objects=(1, 1), blur_px=(8.0, 12.0), static_camera_p=0.0, **{**CLEAN, "size": 64}
    )
    s = synthesize(_image(), torch.Generator().manual_seed(5), cfg, others=[_image(seed=4)])
    c = s.center
    warped = warp(s.frames[c : c + 1].expand(9, -1, -1, -1), s.flows)
    err = (warped - s.frames).abs().mean()
    static = (s.frames[c : c + 1] - s.frames).abs().mean()
    assert s.flows.abs().max() > 2  # it moved
    assert err < 0.35 * static  # the flows account for most of the motion (occlusions aside)


def test_a_mirrored_sample_mirrors_its_flows():
    """hflip mirrors the pixels; the flows' x component must change sign as well, or they point the
    wrong way in every mirrored sample (half of them)."""
    import dataclasses

    from blurvid.data.synth import PlanBatch, plan, render_batch

    cfg = SynthConfig(frames=9, blur_px=(8.0, 12.0), static_camera_p=0.0, **{**CLEAN, "size": 64})
    p = plan(_image(), torch.Generator().manual_seed(5), cfg)
    plain, mirrored = (
        render_batch(PlanBatch.collate([dataclasses.replace(p, hflip=flip)])) for flip in (False, True)
    )
    torch.testing.assert_close(mirrored["frames"], plain["frames"].flip(-1))
    sign = torch.tensor([-1.0, 1.0]).view(1, 1, 2, 1, 1)
    torch.testing.assert_close(mirrored["flows"], plain["flows"].flip(-1) * sign)
    assert plain["flows"][..., 0, :, :].abs().max() > 2  # it moved sideways: the sign matters
    frames, flows, c = mirrored["frames"][0], mirrored["flows"][0], mirrored["center"]
    warped = warp(frames[c : c + 1].expand(9, -1, -1, -1), flows)
    assert (warped - frames).abs().mean() < 0.35 * (frames[c : c + 1] - frames).abs().mean()


def test_blur_strength_follows_the_setting():
    short = SynthConfig(frames=9, blur_px=(1.0, 1.5), static_camera_p=0.0, **CLEAN)
    long = SynthConfig(frames=9, blur_px=(20.0, 21.0), static_camera_p=0.0, **CLEAN)
    a = synthesize(_image(), torch.Generator().manual_seed(1), short)
    b = synthesize(_image(), torch.Generator().manual_seed(1), long)
    assert b.flows.norm(dim=1).max() > 4 * a.flows.norm(dim=1).max()


def _centroid(x: torch.Tensor) -> torch.Tensor:
    w = x.double().sum(0)
    ys, xs = torch.meshgrid(
        torch.arange(w.shape[0], dtype=torch.float64),
        torch.arange(w.shape[1], dtype=torch.float64),
        indexing="ij",
    )
    return torch.stack([(w * xs).sum(), (w * ys).sum()]) / w.sum()


def test_mean_center_puts_the_target_at_the_blur_centroid():
    """center='mean': the sharp target sits where the blur is centred (in linear light); the central
    instant ('time') sits off it on curved / uneven paths, which is what makes it ambiguous."""
    dot = torch.zeros(3, 200, 200)
    dot[:, 95:105, 95:105] = 1.0
    clean = {**CLEAN, "subframes": 4, "size": 96, "rotation_deg": 0.0, "zoom_motion": 0.0}
    off = {}
    for center in ("time", "mean"):
        cfg = SynthConfig(
            frames=9, blur_px=(20.0, 30.0), shake=0.6, static_camera_p=0.0, center=center, **clean
        )
        off[center] = max(
            float(
                (_centroid(srgb_to_linear(s.blurred)) - _centroid(srgb_to_linear(s.frames[s.center]))).norm()
            )
            for s in (synthesize(dot, torch.Generator().manual_seed(i), cfg) for i in range(4))
        )
    assert off["mean"] < 0.02 and off["time"] > 0.5


def test_mean_center_flows_still_explain_the_frames():
    cfg = SynthConfig(
        frames=9,
        objects=(1, 1),
        blur_px=(8.0, 12.0),
        static_camera_p=0.0,
        center="mean",
        **{**CLEAN, "size": 64},
    )
    s = synthesize(_image(), torch.Generator().manual_seed(5), cfg, others=[_image(seed=4)])
    c = s.center
    warped = warp(s.frames[c : c + 1].expand(9, -1, -1, -1), s.flows)
    err = (warped - s.frames).abs().mean()
    static = (s.frames[c : c + 1] - s.frames).abs().mean()
    assert err < 0.35 * static


def test_noise_p_gives_clean_samples_and_keeps_the_default_stream():
    noisy = dict(CLEAN, shot_noise=(2e-3, 2e-3), read_noise=(4e-3, 4e-3), quantize=True)
    img, others = _image(), [_image(seed=1)]

    def blurred(seed, **kw):
        cfg = SynthConfig(frames=5, objects=(0, 1), **{**noisy, **kw})
        return synthesize(img, torch.Generator().manual_seed(seed), cfg, others=others).blurred

    def clean(seed):
        cfg = SynthConfig(
            frames=5, objects=(0, 1), **{**noisy, "shot_noise": (0.0, 0.0), "read_noise": (0.0, 0.0)}
        )
        return synthesize(img, torch.Generator().manual_seed(seed), cfg, others=others).blurred

    # noise_p = 1 (the default) draws nothing extra: the same 8-bit image as before the option existed
    # (sum of its 8-bit values measured at commit e8efd8a; an extra draw shifts it by ~300)
    assert abs(int((blurred(5, noise_p=1.0) * 255).round().sum()) - 1029944) <= 20
    # noise_p = 0: every sample is exactly the noise-free rendering of the same scene
    assert all(torch.equal(blurred(s, noise_p=0.0), clean(s)) for s in range(4))
    # noise_p = 0.5: some samples clean, some noisy
    is_clean = [torch.equal(blurred(s, noise_p=0.5), clean(s)) for s in range(12)]
    assert 0 < sum(is_clean) < 12


def test_grey_p_gives_monochrome_samples_of_the_same_scene():
    img, others = _image(), [_image(seed=1)]

    def sample(seed, grey_p):
        cfg = SynthConfig(frames=3, objects=(0, 1), grey_p=grey_p, **CLEAN)
        return synthesize(img, torch.Generator().manual_seed(seed), cfg, others=others)

    colour, grey = sample(3, 0.0), sample(3, 1.0)
    # three equal channels: the Rec. 601 luma of the colour sample, for the blurred image and every target
    for x in (grey.blurred, grey.frames):
        assert torch.equal(x[..., 0, :, :], x[..., 1, :, :]) and torch.equal(x[..., 0, :, :], x[..., 2, :, :])
    assert torch.allclose(grey.blurred, to_grey(colour.blurred), atol=1e-6)
    assert torch.allclose(grey.frames, to_grey(colour.frames), atol=1e-6)
    assert not torch.equal(colour.blurred[0], colour.blurred[1])
    lum = 0.299 * colour.blurred[0] + 0.587 * colour.blurred[1] + 0.114 * colour.blurred[2]
    assert torch.allclose(grey.blurred[1], lum, atol=1e-6)
    # grey_p = 0.5: some of each
    mono = [torch.equal(b[0], b[2]) for b in (sample(s, 0.5).blurred for s in range(10))]
    assert 0 < sum(mono) < 10


def _extent_and_dwell(path: torch.Tensor) -> tuple[float, float, float]:
    """Arc length, largest bounding-box side, slowest step / mean step of a dense ``(T, 2)`` path."""
    d = (path[1:] - path[:-1]).norm(dim=1)
    return float(d.sum()), float((path.max(0).values - path.min(0).values).max()), float(d.min() / d.mean())


def test_tremor_paths_fold_back_and_dwell_unlike_smooth_paths():
    t = (torch.arange(600, dtype=torch.float64) + 0.5) / 600
    tremor = [_extent_and_dwell(tremor_path(torch.Generator().manual_seed(s), t, 40.0)) for s in range(12)]
    smooth = [
        _extent_and_dwell(random_path(torch.Generator().manual_seed(s), t, 40.0, 0.35)) for s in range(12)
    ]
    assert all(abs(length - 40.0) < 0.5 for length, _, _ in tremor)  # the requested arc length
    # measured on 20 seeds: extent / length 0.34 vs 0.80, slowest / mean speed 0.08 vs 0.20 (medians)
    assert sorted(e for _, e, _ in tremor)[6] < 0.5 * 40 < sorted(e for _, e, _ in smooth)[6]
    assert sorted(v for _, _, v in tremor)[6] < 0.15 < sorted(v for _, _, v in smooth)[6]
    again = tremor_path(torch.Generator().manual_seed(3), t, 40.0)
    assert torch.equal(again, tremor_path(torch.Generator().manual_seed(3), t, 40.0))


def test_tremor_p_moves_the_camera_along_tremor_paths():
    kw = dict(frames=9, static_camera_p=0.0, rotation_deg=0.0, zoom_motion=0.0, **CLEAN)
    assert SynthConfig(**kw).margin == SynthConfig(tremor_px=(50.0, 90.0), **kw).margin  # off: unchanged
    cfg = SynthConfig(tremor_p=1.0, tremor_px=(30.0, 31.0), blur_px=(1.0, 1.5), **kw)
    assert cfg.margin > SynthConfig(**kw).margin  # room for the longer path
    s = synthesize(_image(), torch.Generator().manual_seed(2), cfg)
    # pure translation: every frame's flow is one vector; the 9 positions lie on a path far longer
    # than the smooth setting (<= 1.5 px) would give
    pos = s.flows.mean(dim=(2, 3))  # (9, 2)
    assert torch.allclose(s.flows, pos[:, :, None, None].expand_as(s.flows), atol=1e-4)
    assert float((pos[1:] - pos[:-1]).norm(dim=1).sum()) > 10.0


def test_sample_affine_grid_equals_torch_affine_grid():
    # the cached-base-grid matmul must be affine_grid's arithmetic, odd sizes and all
    from blurvid.data.synth import sample_affine

    src = torch.rand(4, 23, 31, generator=torch.Generator().manual_seed(0))
    mats = torch.eye(3, dtype=torch.float64).repeat(3, 1, 1)
    mats[:, 0, 2], mats[:, 1, 2] = torch.tensor([0.5, 3.25, -2.0]), torch.tensor([1.0, -0.75, 4.5])
    mats[1, :2, :2] = torch.tensor([[0.98, -0.17], [0.17, 0.98]], dtype=torch.float64)
    out = sample_affine(src, mats, 17)
    from blurvid.data.synth import _normalizer

    theta = (_normalizer(23, 31) @ mats @ torch.linalg.inv(_normalizer(17, 17)))[:, :2].float()
    grid = torch.nn.functional.affine_grid(theta, [3, 4, 17, 17], align_corners=True)
    ref = torch.nn.functional.grid_sample(
        src.expand(3, 4, 23, 31), grid, mode="bilinear", padding_mode="border", align_corners=True
    )
    assert out.shape == (3, 4, 17, 17)
    assert torch.equal(out, ref)


@pytest.mark.parametrize("center", ["time", "mean"])
def test_center_only_targets_match_the_full_sample(center):
    # what the DM trains on: the same blurred image and central frame, without the other targets
    cfg = SynthConfig(frames=5, subframes=3, size=40, objects=(1, 2), grey_p=0.5, center=center)
    for seed in range(4):
        full = synthesize(_image(), torch.Generator().manual_seed(seed), cfg, others=[_image(seed=2)])
        one = synthesize(
            _image(), torch.Generator().manual_seed(seed), cfg, others=[_image(seed=2)], targets="center"
        )
        assert one.frames.shape == (1, 3, 40, 40) and one.flows.shape == (1, 2, 40, 40) and one.center == 0
        assert torch.equal(one.blurred, full.blurred)
        assert torch.equal(one.frames[0], full.frames[full.center])
        assert torch.equal(one.flows[0], torch.zeros(2, 40, 40))
    with pytest.raises(ValueError, match="targets"):
        synthesize(_image(), torch.Generator(), cfg, targets="middle")


def test_uint8_photo_gives_the_same_sample_as_its_float_copy():
    img8 = (_image() * 255).round().to(torch.uint8)
    cfg = SynthConfig(frames=3, subframes=2, size=32, objects=(1, 1))
    a = synthesize(img8, torch.Generator().manual_seed(5), cfg, others=[img8])
    b = synthesize(img8.float() / 255, torch.Generator().manual_seed(5), cfg, others=[img8.float() / 255])
    assert torch.equal(a.blurred, b.blurred) and torch.equal(a.frames, b.frames)


def test_srgb_curves_keep_their_formulas():
    # in-place evaluation must not change the published curves (negatives linear, > 1 kept)
    x = torch.linspace(-0.5, 1.5, 2001)
    ref_out = torch.where(x <= 0.0031308, x * 12.92, 1.055 * x.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)
    ref_in = torch.where(x <= 0.04045, x / 12.92, ((x.clamp(min=0) + 0.055) / 1.055) ** 2.4)
    assert torch.equal(linear_to_srgb(x), ref_out)
    assert torch.equal(srgb_to_linear(x), ref_in)
    assert torch.equal(x, torch.linspace(-0.5, 1.5, 2001))  # the input is left alone


# ---------------------------------------------------------------- plans rendered in batches ---------------
MIXED = dict(
    size=48, frames=5, subframes=2, objects=(0, 2), highlight_p=0.5, gamma_average_p=0.5, noise_p=0.5
)


def _others():
    return [_image(90, 110, seed=7), _image(120, 100, seed=8)]


def _plans(cfg, count, targets="all", noise_field=True):
    from blurvid.data.synth import plan

    return [
        plan(_image(), torch.Generator().manual_seed(40 + i), cfg, _others(), targets, noise_field)
        for i in range(count)
    ]


@pytest.mark.parametrize("center", ["time", "mean"])
def test_one_plan_renders_the_synthesize_sample_and_a_batch_renders_each(center):
    from blurvid.data.synth import render

    cfg = SynthConfig(**MIXED, center=center, grey_p=0.3)
    plans = _plans(cfg, 8)
    assert {len(p.objects) for p in plans} == {0, 1, 2}  # slots of unequal membership and texture size
    batch = render(plans)
    assert batch["blurred"].shape == (8, 3, 48, 48) and batch["frames"].shape == (8, 5, 3, 48, 48)
    assert batch["flows"].shape == (8, 5, 2, 48, 48)
    for i, p in enumerate(plans):
        s = synthesize(_image(), torch.Generator().manual_seed(40 + i), cfg, _others())
        one = render([p])
        assert torch.equal(one["blurred"][0], s.blurred) and torch.equal(one["frames"][0], s.frames)
        assert torch.equal(one["flows"][0], s.flows)
        # in a batch, textures are padded to their slot's largest: the same up to float rounding
        assert (batch["frames"][i] - s.frames).abs().max() < 1e-4
        assert (batch["flows"][i] - s.flows).abs().max() < 1e-3
        assert (batch["blurred"][i] - s.blurred).abs().max() <= 1 / 255 + 1e-6  # a rounding may flip


def test_device_plans_draw_the_noise_from_a_seed_and_keep_the_statistics():
    from blurvid.data.synth import render

    cfg = SynthConfig(size=48, frames=3, subframes=2, objects=(0, 0), noise_p=1.0, hflip=False)
    cpu, dev = _plans(cfg, 6, "center"), _plans(cfg, 6, "center", noise_field=False)
    assert all(isinstance(p.noise, torch.Tensor) for p in cpu) and all(isinstance(p.noise, int) for p in dev)
    assert torch.equal(render(dev)["blurred"], render(dev)["blurred"])  # the seed decides the noise
    for a, b in zip(cpu, dev, strict=True):
        assert torch.equal(a.cam, b.cam) and a.noise_a == b.noise_a  # same draws up to the noise
    ra, rb = render(cpu), render(dev)
    assert torch.equal(ra["frames"], rb["frames"])  # the targets carry no noise
    na, nb = (ra["blurred"] - ra["frames"][:, 0]).std(), (rb["blurred"] - rb["frames"][:, 0]).std()
    assert 0.8 < float(na / nb) < 1.25


def test_compact_plans_render_within_8_bit_rounding():
    from blurvid.data.synth import render

    cfg = SynthConfig(
        size=48, frames=3, subframes=2, shot_noise=(0.0, 0.0), read_noise=(0.0, 0.0), highlight_p=0.0
    )
    plans = _plans(cfg, 4, "center")
    small = [p.compact() for p in plans]
    assert all(p.region.dtype == torch.uint8 for p in small)
    assert small[0].region.numel() == plans[0].region.numel()
    diff = (render(small)["frames"] - render(plans)["frames"]).abs().max()
    assert 0 < diff < 1 / 255  # half a level of the source, resampled and clipped


def test_jpeg_round_trip_is_close_to_pil_and_keeps_odd_sizes():
    from blurvid.data.datasets import jpeg_compress
    from blurvid.data.jpeg import jpeg_round_trip, quant_table
    from blurvid.metrics import psnr

    assert torch.equal(quant_table(50)[0, :3], torch.tensor([16.0, 11.0, 10.0]))  # the standard's table
    assert torch.equal(quant_table(100), torch.ones(8, 8)) and quant_table(1).max() == 255
    with pytest.raises(ValueError, match="quality"):
        quant_table(0)
    img = _image(61, 75, seed=3)
    out = jpeg_round_trip(torch.stack([img, img.flip(-1)]), [60, 90])
    assert out.shape == (2, 3, 61, 75)
    assert torch.equal(out * 255, (out * 255).round())  # 8-bit values
    for q, src, x in ((60, img, out[0]), (90, img.flip(-1), out[1])):
        ref = jpeg_compress(src, q)
        assert psnr(x[None], ref[None]) > 40  # close to what PIL's libjpeg decodes (45-47 dB here)
        assert abs(float(psnr(x[None], src[None]) - psnr(ref[None], src[None]))) < 0.2  # as lossy
    assert psnr(out[1:].flip(-1), img[None]) > psnr(out[:1], img[None])  # quality orders the loss


_MEAN = {"center": "mean", "noise_p": 0.5, "gamma_average_p": 0.8}  # the mean-target mode


@pytest.mark.parametrize(
    "center, seed, expected",
    [
        # objects, mean blurred, mean targets, mean |flow|, one blurred pixel: values of the stream that
        # every validation set and eval number so far was drawn from (sessions 1-16)
        ("time", 3, (1, 0.578949, 0.560247, 1.49541, 0.898039)),
        ("time", 11, (2, 0.582049, 0.555282, 2.17206, 0.627451)),
        ("mean", 3, (1, 0.559304, 0.560174, 1.68559, 0.854902)),
        ("mean", 11, (2, 0.557270, 0.555512, 2.23588, 0.894118)),
    ],
)
def test_the_synthesis_stream_is_pinned(center, seed, expected):
    # any change to the order or kind of random draws moves these far more than float rounding does
    cfg = SynthConfig(size=48, frames=3, subframes=2, **(_MEAN if center == "mean" else {}))
    s = synthesize(_image(), torch.Generator().manual_seed(seed), cfg, _others())
    got = (s.meta["objects"], s.blurred.mean(), s.frames.mean(), s.flows.abs().mean(), s.blurred[1, 20, 30])
    assert got[0] == expected[0]
    assert [float(x) for x in got[1:]] == pytest.approx(list(expected[1:]), abs=2e-4)


def test_the_decode_cache_keeps_the_most_recent_images_within_its_budget():
    from blurvid.data.datasets import DecodeCache

    cache = DecodeCache(budget=3 * 100)
    loads = []

    def image(k):
        return lambda: loads.append(k) or torch.zeros(100, dtype=torch.uint8)

    for k in (0, 1, 2, 0, 3):  # 0 is used again before 3 arrives: 1 is the least recent
        cache.get(k, image(k))
    assert loads == [0, 1, 2, 3] and len(cache) == 3 and cache.size == 300
    cache.get(1, image(1))  # dropped: decoded again
    cache.get(0, image(0))  # kept
    assert loads == [0, 1, 2, 3, 1]


def test_training_photos_are_read_as_blurvid_reads_photos(tmp_path):
    """load_rgb used Pillow's convert('RGB'): a 16-bit grey photo came out 99.6 % white, and EXIF
    orientation was ignored (training and evaluation decoded one file two ways)."""
    import numpy as np
    from PIL import Image

    from blurvid.data.datasets import load_rgb

    ramp = np.tile(np.linspace(0, 65535, 40).astype(np.uint16), (24, 1))  # (24, 40), 0 .. 65535
    Image.fromarray(ramp).save(tmp_path / "grey16.png")
    got = load_rgb(tmp_path / "grey16.png")
    assert got.shape == (3, 24, 40) and got.dtype == torch.uint8
    assert torch.equal(got[0], got[2]) and got[0, 0].tolist() == np.rint(ramp[0] / 257).astype(int).tolist()

    wide = np.zeros((20, 30, 3), np.uint8)
    wide[:, :10] = 255  # white on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise: tall, white at the top
    Image.fromarray(wide).save(tmp_path / "turned.jpg", exif=exif, quality=95)
    got = load_rgb(tmp_path / "turned.jpg")
    assert got.shape == (3, 30, 20)
    assert got[:, :8].float().mean() > 240 and got[:, 12:].float().mean() < 15


def test_training_data_leaves_out_hidden_files(tmp_path):
    """macOS writes ._IMG.jpg (AppleDouble) files on FAT/exFAT/SMB drives: they stopped training."""
    import numpy as np
    from PIL import Image

    from blurvid.data.datasets import list_images

    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "IMG_1.jpg")
    (tmp_path / "._IMG_1.jpg").write_bytes(b"\\0\\5\\x16\\7 AppleDouble")
    (tmp_path / ".thumbs").mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / ".thumbs" / "t.jpg")
    assert [p.name for p in list_images([tmp_path])] == ["IMG_1.jpg"]


def test_training_data_reads_patterns_and_the_fast_path_matches_read_photo(tmp_path, monkeypatch):
    """Windows shells pass `photos\\*.jpg` as typed (blurvid no longer lets click expand it); an 8-bit
    upright photo skips read_photo (3x faster) with the same pixels."""
    import numpy as np
    from PIL import Image

    from blurvid.data import datasets
    from blurvid.data.datasets import list_images, load_rgb

    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png", "c.txt"):
        if name.endswith(".png"):
            Image.fromarray((rng.random((12, 16, 3)) * 255).astype(np.uint8)).save(tmp_path / name)
        else:
            (tmp_path / name).write_text("notes")
    assert [p.name for p in list_images([str(tmp_path / "*")])] == ["a.png", "b.png"]
    with pytest.raises(FileNotFoundError, match="no image matches this pattern"):
        list_images([str(tmp_path / "*.jpg")])
    import blurvid.io

    monkeypatch.setattr(blurvid.io, "read_photo", lambda p: pytest.fail("the fast path was not taken"))
    fast = load_rgb(tmp_path / "a.png")
    monkeypatch.undo()
    assert torch.equal(fast, torch.from_numpy(np.array(Image.open(tmp_path / "a.png"))).permute(2, 0, 1))
    assert datasets.load_rgb is load_rgb


def test_the_fast_decode_path_gives_read_photos_pixels_and_patterns_find_folders(tmp_path, monkeypatch):
    """Pillow opens a 16-bit colour PNG as 'RGB', dropping the low byte: the fast path took it and came
    out half a level dark; a pattern matching folders or only non-images gave nothing (or an error)."""
    import numpy as np
    from PIL import Image

    from blurvid.data.datasets import list_images, load_rgb
    from blurvid.io import read_photo, to_uint8, write_photo

    rng = np.random.default_rng(1)
    pixels = rng.random((12, 20, 3)).astype(np.float32)
    for name, depth in (("deep.png", 16), ("deep.tif", 16), ("flat.png", 8), ("flat.jpg", 8)):
        write_photo(tmp_path / name, pixels, bit_depth=depth if name.endswith((".png", ".tif")) else None)
        want = torch.from_numpy(to_uint8(read_photo(tmp_path / name).pixels)).permute(2, 0, 1)
        assert torch.equal(load_rgb(tmp_path / name), want), name
    (tmp_path / "clips" / "a").mkdir(parents=True)
    (tmp_path / "clips" / "a_mask").mkdir()
    for d in ("a", "a_mask"):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "clips" / d / "000.png")
    assert [p.parent.name for p in list_images([str(tmp_path / "clips" / "*")])] == ["a"]  # as a shell would
    monkeypatch.chdir(tmp_path / "clips" / "a")  # a pattern's own ../ is no hidden folder
    assert [p.name for p in list_images(["../a/*.png"])] == ["000.png"]
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "n.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="no image matches this pattern"):
        list_images([str(tmp_path / "notes" / "*")])


def test_exposure_length_makes_the_trail_as_long_as_stated():
    """The renderer appends the central instant to the exposure's times; measured with it, a path's
    exposure came out ~0.69 of ``blur_px`` (a 32 px straight path spanned 21 px)."""
    from blurvid.data.synth import SynthConfig, random_path

    g = torch.Generator().manual_seed(0)
    times = torch.linspace(0, 1, 27, dtype=torch.float64)
    t = torch.cat([times, torch.tensor([0.5], dtype=torch.float64)])

    def exposure(p: torch.Tensor) -> float:
        return float((p[1:27] - p[:26]).norm(dim=1).sum())

    legacy = [exposure(random_path(g, t, 30.0, 0.35)) / 30 for _ in range(50)]
    fixed = [exposure(random_path(g, t, 30.0, 0.35, span=27)) / 30 for _ in range(50)]
    assert 0.6 < sum(legacy) / 50 < 0.8 and max(legacy) < 0.99
    assert all(abs(r - 1) < 1e-9 for r in fixed)
    assert SynthConfig().exposure_length is False  # the fixed validation protocols keep their lengths


def test_exposure_length_as_a_share_mixes_the_two_conventions_per_path():
    """Trails at their stated length cost Levin's small kernels (sessions 29-30); a share in 0..1
    measures that share of paths over the exposure and the rest the old way, drawn per path, while
    True / False draw nothing (their samples are unchanged)."""
    from blurvid.data.synth import SynthConfig, _exposure_span, synthesize

    g = torch.Generator().manual_seed(3)
    spans = [_exposure_span(g, SynthConfig(exposure_length=0.25), 27) for _ in range(800)]
    assert set(spans) == {27, None} and 160 < spans.count(27) < 240
    for share, span in ((True, 27), (False, None), (1.0, 27), (0.0, None)):
        g = torch.Generator().manual_seed(3)
        state = g.get_state()
        assert _exposure_span(g, SynthConfig(exposure_length=share), 27) == span
        assert torch.equal(g.get_state(), state)
    # a mixed config renders, and its margin holds the longer convention's paths
    mixed = SynthConfig(size=64, exposure_length=0.5, blur_px=(20.0, 30.0))
    assert mixed.margin == SynthConfig(size=64, exposure_length=True, blur_px=(20.0, 30.0)).margin
    sample = synthesize(torch.rand(3, 200, 200), torch.Generator().manual_seed(0), mixed)
    assert sample.blurred.shape == (3, 64, 64) and torch.isfinite(sample.blurred).all()
    for bad in (1.5, -0.1, float("nan"), "yes"):
        with pytest.raises(ValueError, match="use true, false or a probability from 0 to 1"):
            SynthConfig(exposure_length=bad)  # type: ignore[arg-type]


def test_the_margin_holds_a_path_of_the_stated_exposure_length():
    """Over the exposure alone a path strays up to ~0.8 of its length from the reference pose; the
    0.6 margin let sub-frames sample outside the source (3 of 600 at blur_px 200-300)."""
    from blurvid.data.synth import SynthConfig

    old, new = (
        SynthConfig(blur_px=(200.0, 300.0), size=64),
        SynthConfig(blur_px=(200.0, 300.0), size=64, exposure_length=True),
    )
    assert (
        new.margin - old.margin == 120 and old.margin == SynthConfig(blur_px=(200.0, 300.0), size=64).margin
    )


def test_training_data_takes_every_still_photo_format_it_lists(tmp_path):
    """WebP, PNG, JPEG and TIFF photos are training data (a format dropped from the list was skipped
    without a word)."""
    from PIL import Image

    from blurvid.data.datasets import list_images

    for name in ("a.webp", "b.jpg", "c.png", "d.tif"):
        Image.new("RGB", (40, 30), (90, 120, 30)).save(tmp_path / name)
    assert sorted(p.name for p in list_images([tmp_path])) == ["a.webp", "b.jpg", "c.png", "d.tif"]


def test_jpeg_round_trip_replicates_edges_and_counts_its_qualities():
    from blurvid.data.jpeg import jpeg_round_trip

    flat = torch.full((1, 3, 13, 11), 0.8)  # odd sides: the macro-blocks are filled past the edges
    out = jpeg_round_trip(flat, 75)
    assert out.shape == (1, 3, 13, 11)
    assert (out - 0.8).abs().max() < 1.5 / 255  # replicated edges: flat blocks stay flat, no ringing
    with pytest.raises(ValueError, match="1 qualities for 2 images"):
        jpeg_round_trip(flat.expand(2, -1, -1, -1), [75])


def test_a_sample_is_written_with_rounded_pixels_float16_flows_and_its_source(tmp_path):
    import json

    import numpy as np
    from PIL import Image

    from blurvid.data.export import write_sample

    frames = torch.stack([torch.full((3, 5, 7), v) for v in (0.1, 0.5, 0.9)])
    flows = torch.full((3, 2, 5, 7), 0.25)
    flows[0, 0, 0, 0] = float("nan")
    item = {"blurred": torch.full((3, 5, 7), 0.5), "frames": frames, "flows": flows, "center": 1}
    write_sample(tmp_path / "s", item, {"index": 4})
    assert np.asarray(Image.open(tmp_path / "s" / "blurred.png")).tolist() == [[[128] * 3] * 7] * 5  # 127.5
    written = sorted((tmp_path / "s" / "frames").iterdir())
    assert [int(np.asarray(Image.open(p))[0, 0, 0]) for p in written] == [26, 128, 230]  # rounded
    saved = np.load(tmp_path / "s" / "flows.npy")
    assert saved.dtype == np.float16 and saved.shape == (3, 2, 5, 7) and np.isnan(saved[0, 0, 0, 0])
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    assert meta == {"center": 1, "source": "photo", "index": 4}  # no has_flow: a photo's sample
    write_sample(tmp_path / "s", {**item, "frames": frames[:1], "has_flow": torch.tensor(False)}, {})
    assert len(list((tmp_path / "s" / "frames").iterdir())) == 1  # the earlier sample's frames are gone
    assert json.loads((tmp_path / "s" / "meta.json").read_text())["source"] == "clip"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # no hidden temporary folder left


def test_jpeg_is_drawn_with_its_probability_over_the_whole_quality_range(tmp_path):
    import numpy as np
    from PIL import Image

    from blurvid.data.datasets import PhotoSynthDataset, list_images

    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "B.JPG")
    assert [p.name for p in list_images([tmp_path / "B.JPG"])] == ["B.JPG"]  # an upper-case suffix
    ds = PhotoSynthDataset([tmp_path], SynthConfig(size=8), jpeg_p=0.25, jpeg_quality=(70, 72))
    qs = [ds._jpeg_quality(torch.Generator().manual_seed(i)) for i in range(400)]
    assert 0.18 < sum(q > 0 for q in qs) / 400 < 0.32
    assert {q for q in qs if q} == {70, 71, 72}  # both ends included


def test_mixed_items_come_from_the_second_set_with_its_probability():
    from blurvid.data.datasets import MixedDataset

    mixed = MixedDataset(["a"] * 300, ["b"] * 300, p_b=0.2, seed=5)
    share = sum(mixed[i] == "b" for i in range(300)) / 300
    assert 0.13 < share < 0.27
    assert all(MixedDataset(["a"] * 5, None, p_b=1.0)[i] == "a" for i in range(5))


def test_plans_of_different_configs_or_targets_are_not_batched():
    from blurvid.data.synth import PlanBatch, plan

    small = SynthConfig(**CLEAN, frames=3)
    other = SynthConfig(**{**CLEAN, "shake": 0.1}, frames=3)
    a, b = (plan(_image(), torch.Generator().manual_seed(1), c) for c in (small, other))
    centre = plan(_image(), torch.Generator().manual_seed(1), small, targets="center")
    for pair in ([a, b], [a, centre]):
        with pytest.raises(ValueError, match="share one SynthConfig and targets mode"):
            PlanBatch.collate(pair)
    assert len(PlanBatch.collate([a, a])) == 2


def test_an_object_is_pasted_whole_up_to_each_edge_and_cut_where_it_overhangs():
    from blurvid.data.synth import _paste

    layer = torch.arange(1.0, 19.0).view(2, 3, 3)
    corner = _paste(layer, torch.tensor([4, 4]), 7)  # its last row and column on the canvas's
    assert torch.equal(corner[:, 4:, 4:], layer) and float(corner.sum()) == float(layer.sum())
    over = _paste(layer, torch.tensor([-1, 5]), 7)  # one column off the left, one row off the bottom
    assert torch.equal(over[:, 5:, :2], layer[:, :2, 1:]) and float(over.sum()) == float(
        layer[:, :2, 1:].sum()
    )
    assert float(_paste(layer, torch.tensor([7, 0]), 7).abs().sum()) == 0  # entirely off the canvas
