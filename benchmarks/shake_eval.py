"""Uniform camera-shake removal (`blurvid deblur --shake`) on real and synthetic shake.

Sets:
* ``levin``: Levin et al.'s 32 real camera-shake photos, aligned PSNR (best shift <= 8 px), the same
  protocol as ``blurvid eval deblur --levin``;
* ``tune``: the set the shake settings were chosen on, never Levin: 16 grey 255 px crops of BSD100
  (a training folder) blurred by random hand-tremor kernels (``blurvid.data.synth.tremor_path``, path
  length 15-45 px, in a 31 px support) with a "valid" convolution (no wrap-around), Gaussian noise of
  sigma 0.01 and 8-bit rounding; scored like Levin.

For each image the kernel is estimated blind (``blurvid.shake.estimate_kernel``) and the image
deconvolved (``blurvid.shake.deconvolve``); ``--dm`` also scores the shipped DM on the same images and
the DM run after the deconvolution. ``--true-kernel`` adds non-blind deconvolution with the true kernel
(Levin: the better of the two stored orientations, as kernels 4 and 8 are flipped in this copy).

    python benchmarks/shake_eval.py --data ../shared/data --json benchmarks/results/shake_eval.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from dm_paired import levin_kernel, levin_kernel_file
from PIL import Image

from blurvid import shake
from blurvid.data.synth import tremor_path
from blurvid.evaluate import levin_pairs
from blurvid.metrics import aligned_psnr


def splat_kernel(path: torch.Tensor, size: int) -> torch.Tensor:
    """Rasterise a path ``(T, 2)`` (px, x/y) into a ``(size, size)`` kernel by bilinear splatting,
    centred on the path's bounding box; sums to 1."""
    p = path - (path.min(0).values + path.max(0).values) / 2 + size // 2
    k = torch.zeros(size, size, dtype=torch.float64)
    for x, y in p.tolist():
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        ax, ay = x - x0, y - y0
        for dy, wy in ((0, 1 - ay), (1, ay)):
            for dx, wx in ((0, 1 - ax), (1, ax)):
                if 0 <= y0 + dy < size and 0 <= x0 + dx < size:
                    k[y0 + dy, x0 + dx] += wx * wy
    return k / k.sum()


def tremor_kernel(g: torch.Generator, lengths: tuple[float, float], size: int, samples: int) -> torch.Tensor:
    """A random hand-tremor kernel ``(size, size)``: a path (``tremor_path``, ``samples`` instants) of
    a length drawn from ``lengths`` px, redrawn until it fits the support, splatted."""
    while True:
        length = float(torch.empty(1, dtype=torch.float64).uniform_(*lengths, generator=g))
        path = tremor_path(g, torch.linspace(0, 1, samples, dtype=torch.float64), length)
        if float((path.max(0).values - path.min(0).values).max()) < size - 2:
            return splat_kernel(path, size)


def valid_blur(img: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """``img`` ``(..., H, W)`` truly convolved with ``kernel`` ``(k, k)``, only where it saw no border:
    ``(..., H - k + 1, W - k + 1)``. By FFT: a direct conv2d would unfold a 63 px kernel into ~20 GB."""
    k = kernel.shape[-1]
    spec = torch.fft.rfft2(img) * torch.fft.rfft2(kernel, s=img.shape[-2:])
    return torch.fft.irfft2(spec, s=img.shape[-2:])[..., k - 1 :, k - 1 :]


def tune_set(
    root: Path, count: int = 16, size: int = 255, ksize: int = 31, seed: int = 0, noise: float = 0.01
) -> list[tuple]:
    """``(name, blurred (H, W), sharp (H, W), kernel)`` for the synthetic tuning set (see module doc)."""
    g = torch.Generator().manual_seed(seed)
    files = sorted(root.glob("*.png"))[:count]
    out = []
    for i, f in enumerate(files):
        img = torch.from_numpy(np.asarray(Image.open(f).convert("L"), dtype=np.float64) / 255)
        h, w = img.shape
        big = size + ksize - 1
        y0 = int(torch.randint(0, h - big + 1, (1,), generator=g))
        x0 = int(torch.randint(0, w - big + 1, (1,), generator=g))
        crop = img[y0 : y0 + big, x0 : x0 + big]
        k = tremor_kernel(g, (15, 45), ksize, 400)
        blurred = F.conv2d(crop[None, None], k.flip(0, 1)[None, None])[0, 0]  # valid convolution
        grain = torch.randn(blurred.shape, generator=g, dtype=torch.float64) * noise
        blurred = ((blurred + grain).clamp(0, 1) * 255).round() / 255
        c = ksize // 2
        out.append((f"{f.stem}_{i}", blurred.float(), crop[c : c + size, c : c + size].float(), k.float()))
    return out


def levin_set(root: Path) -> list[tuple]:
    """``(name, blurred (H, W), sharp (H, W), stored kernel)`` for Levin's 32 images."""
    return [
        (p.name, p.blurred.mean(0), p.sharp.mean(0), levin_kernel_file(root, levin_kernel(p.name)))
        for p in levin_pairs(root)
    ]


def score(x: torch.Tensor, y: torch.Tensor) -> float:
    return float(aligned_psnr(x[None, None].clamp(0, 1), y[None, None]))


def odd(k: torch.Tensor) -> torch.Tensor:
    return F.pad(k, (0, 1 - k.shape[1] % 2, 0, 1 - k.shape[0] % 2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="../shared/data")
    ap.add_argument("--sets", nargs="+", default=["tune", "levin"], choices=["tune", "levin"])
    ap.add_argument("--size", type=int, default=31, help="kernel support (px)")
    ap.add_argument("--kw", default="{}", help="extra estimate_kernel arguments, JSON")
    ap.add_argument("--strength", type=float, default=4e-3, help="deconvolution prior weight")
    ap.add_argument("--also-strength", type=float, nargs="*", default=[], help="more prior weights to score")
    ap.add_argument("--true-kernel", action="store_true")
    ap.add_argument("--noise", type=float, default=0.01, help="tune set: noise sigma")
    ap.add_argument("--tune-count", type=int, default=16, help="tune set: photos (BSD100, in name order)")
    ap.add_argument("--tune-seed", type=int, default=0, help="tune set: seed of the crops, kernels and noise")
    ap.add_argument("--fixed-strength", action="store_true", help="no noise-adaptive prior (prior_weight)")
    ap.add_argument("--dm", action="store_true", help="also the DM alone and the DM after deconvolution")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    kw = json.loads(args.kw)
    if "dtype" in kw:  # e.g. {"dtype": "float64"}
        kw["dtype"] = getattr(torch, kw["dtype"])
    deblurrer = None
    if args.dm:
        from blurvid import pipeline

        dev = torch.device("cpu")
        deblurrer = pipeline.Deblurrer(
            pipeline.load_model("dm"), dev, pipeline.resolve_precision("auto", dev)
        )
    result: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "sets": {}}
    for name in args.sets:
        items = (
            levin_set(args.data / "realblur" / "levin")
            if name == "levin"
            else tune_set(
                args.data / "sharp" / "bsd100", count=args.tune_count, seed=args.tune_seed, noise=args.noise
            )
        )
        rows = []
        t0 = time.perf_counter()
        for item_name, blurred, sharp, k_true in items:
            t = time.perf_counter()
            k = shake.estimate_kernel(blurred, args.size, **kw)
            est_s = time.perf_counter() - t
            strength = args.strength if args.fixed_strength else shake.prior_weight(blurred, args.strength)
            x = shake.deconvolve(blurred, k, strength)
            row = {
                "name": item_name,
                "input": score(blurred, sharp),
                "shake": score(x, sharp),
                "estimate_s": est_s,
            }
            for s in args.also_strength:
                row[f"shake@{s:g}"] = score(shake.deconvolve(blurred, k, s), sharp)
            if args.true_kernel and k_true is not None:
                cands = [odd(k_true)] + ([odd(k_true.flip(0, 1))] if name == "levin" else [])
                row["true_kernel"] = max(
                    score(shake.deconvolve(blurred, c, args.strength), sharp) for c in cands
                )
            if deblurrer is not None:
                rgb = blurred[None, None].expand(1, 3, -1, -1)
                row["dm"] = score(deblurrer.tensor(rgb)[0].mean(0), sharp)
                row["shake_dm"] = score(
                    deblurrer.tensor(x.clamp(0, 1)[None, None].expand(1, 3, -1, -1))[0].mean(0), sharp
                )
            rows.append(row)
            print(
                " ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                flush=True,
            )
        keys = [k for k in rows[0] if k != "name"]
        summary = {k: float(np.mean([r[k] for r in rows if k in r])) for k in keys}
        summary["seconds"] = time.perf_counter() - t0
        print(name, " ".join(f"{k}={v:.3f}" for k, v in summary.items()), flush=True)
        result["sets"][name] = {"summary": summary, "rows": rows}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
