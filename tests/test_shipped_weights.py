"""Regression tests of the checkpoints shipped in weights/ (CPU, seconds).

They use the package's own registry (not the tiny test registry) and fail — not skip — when the shipped
checkpoints are missing or no longer improve on the baselines by the stated margins.
"""

import numpy as np
import pytest
import torch

from blurvid import pipeline, weights
from blurvid.data.synth import SynthConfig, synthesize
from blurvid.metrics import ppsnr, psnr, video_psnr

DEBLUR_MARGIN_DB = 1.0  # measured +1.6 dB with dm-v1 on this sample; must stay above this
VIDEO_MARGIN_DB = 0.3  # pPSNR above the static baseline; measured with bie-v1 / rvd-v1 (see model card)


def _sharp_image(h=160, w=160, seed=0):
    """A procedural photo stand-in: smooth colour fields, hard-edged shapes and fine stripes."""
    g = torch.Generator().manual_seed(seed)
    base = torch.nn.functional.interpolate(torch.rand(1, 3, 6, 6, generator=g), size=(h, w), mode="bicubic")[0]
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    img = base.clamp(0, 1) * 0.6 + 0.2
    for _ in range(12):
        cy, cx, r = (torch.randint(0, s, (), generator=g) for s in (h, w, 30))
        col = torch.rand(3, 1, generator=g)
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2) < (r + 5) ** 2
        img[:, disc] = col
    img[:, 20:60, 90:140] = ((xx[20:60, 90:140] // 3) % 2).float() * 0.8 + 0.1
    return img


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    reg = weights.load_registry(weights.package_weights_dir() / "registry.json")
    specs = {a: weights.default_spec(a, reg) for a in ("dm", "bie", "rvd")}
    models = {}
    for arch, spec in specs.items():
        path = weights.package_weights_dir() / spec.file
        state, meta = weights.load_checkpoint(path, expected_sha256=spec.sha256)
        models[arch] = pipeline.build_from_checkpoint(arch, state, meta["config"])
    return models


def test_shipped_checkpoints_are_small(shipped):
    reg = weights.load_registry(weights.package_weights_dir() / "registry.json")
    total = sum((weights.package_weights_dir() / s.file).stat().st_size for s in reg.values() if s.default)
    assert total <= 20e6


def test_shipped_dm_sharpens(shipped):
    cfg = SynthConfig(frames=9, subframes=5, size=128, zoom=(1.0, 1.0), blur_px=(10.0, 10.0), static_camera_p=0.0,
                      objects=(0, 0), hflip=False, shot_noise=(0.0, 0.0), read_noise=(0.0, 0.0))
    s = synthesize(_sharp_image(), torch.Generator().manual_seed(1), cfg)
    target = s.frames[s.center][None]
    out = pipeline.Deblurrer(shipped["dm"], torch.device("cpu"), torch.float32).tensor(s.blurred[None])
    gain = float(psnr(out, target) - psnr(s.blurred[None], target))
    assert gain > DEBLUR_MARGIN_DB, gain


def test_shipped_video_beats_static(shipped):
    cfg = SynthConfig(frames=9, subframes=3, size=96, zoom=(0.5, 0.5), blur_px=(12.0, 12.0), static_camera_p=0.0,
                      objects=(0, 0), hflip=False, shot_noise=(0.0, 0.0), read_noise=(0.0, 0.0))
    gains = []
    for seed in range(3):
        s = synthesize(_sharp_image(192, 192, seed), torch.Generator().manual_seed(seed), cfg)
        center = s.frames[s.center][None]
        an = pipeline.Animator(pipeline.Deblurrer(shipped["dm"], torch.device("cpu")), shipped["bie"], shipped["rvd"])
        frames = np.stack(an(s.blurred.permute(1, 2, 0).numpy(), 9, sharp=center[0].permute(1, 2, 0).numpy()))
        pred = torch.from_numpy(frames).permute(0, 3, 1, 2)[None]
        still = center[:, None].expand(1, 9, -1, -1, -1)
        gains.append(float(ppsnr(pred, s.frames[None]) - video_psnr(still, s.frames[None])))
    assert np.mean(gains) > VIDEO_MARGIN_DB, gains
