"""Camera-shake mode on photos with clipped highlights (lamps, sun glints, bright windows).

    python benchmarks/shake_saturation.py --data $DATA [--count 12] [--rounds 1 2 4 8] [--json out.json]

A hand-held night or backlit shot has highlights the sensor clipped: the blurred lamp is a flat
plateau of 255s whose true brightness is unknown. Deconvolving it as if it were the true image makes
rings around every highlight, in colour where only one channel clipped. The set: RGB crops of
sunhays80 (a training folder, never Levin or kodak24), made linear (sRGB curve), exposed so that their
brightest ``--over`` share clips, with 2-8 small warm "lamps" (discs of 1.5-5 px, 2-12x full scale)
added, blurred in linear light by a random hand-tremor kernel (``shake_eval.tremor_kernel``, path
``--lengths`` px, "valid" convolution), clipped at full scale, encoded back to sRGB, with Gaussian
noise and 8-bit rounding. The reference is the sharp scene clipped the same way.

Scores, aligned PSNR (best shift <= 8 px, as for Levin) over the whole crop and over the pixels
within a kernel's width of a clipped one ("near highlights"):
* the input;
* non-blind deconvolution with the true kernel (:func:`blurvid.shake.deconvolve_rgb`) without the
  clipped-highlight handling (``clipped=None``), and with it for each ``--rounds``;
* blind, as ``deblur --shake`` runs (:class:`blurvid.pipeline.ShakeRemover`, no judge: no handling),
  and with the handling (``tensor(..., clipped=CLIPPED)``) on the kernel it estimated.
"""

from __future__ import annotations

import argparse
import json
import statistics as st
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from shake_eval import tremor_kernel, valid_blur

from blurvid.data.synth import linear_to_srgb, srgb_to_linear
from blurvid.metrics import best_shift, psnr
from blurvid.pipeline import ShakeRemover
from blurvid.shake import CLIPPED, deconvolve_rgb, noise_sigma, prior_weight


def lamps(g: torch.Generator, scene: torch.Tensor, count: tuple[int, int]) -> torch.Tensor:
    """``scene`` ``(3, H, W)`` (linear) with a random number of small bright warm discs painted in."""
    _, h, w = scene.shape
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    out = scene.clone()
    for _ in range(int(torch.randint(count[0], count[1] + 1, (1,), generator=g))):
        r, cy, cx, level, green, blue = torch.rand(6, generator=g, dtype=torch.float64).tolist()
        disc = (yy - cy * h).square() + (xx - cx * w).square() <= (1.5 + 3.5 * r) ** 2
        colour = torch.tensor([1.0, 0.6 + 0.4 * green, 0.3 + 0.6 * blue], dtype=torch.float64)
        out[:, disc] = (2 + 10 * level) * colour[:, None]
    return out


def saturation_set(
    root: Path,
    count: int,
    size: int = 384,
    support: int = 41,
    lengths: tuple[float, float] = (15.0, 40.0),
    over: float = 0.01,
    noise: float = 0.005,
    seed: int = 0,
    lamp_count: tuple[int, int] = (2, 8),
) -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``(name, blurred (1, 3, H, W), sharp (1, 3, H, W), kernel (support, support))``, see the module doc."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for f in sorted(root.glob("*.png"))[:count]:
        img = torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), dtype=np.float64) / 255).permute(
            2, 0, 1
        )
        big = size + support - 1
        y0 = int(torch.randint(0, img.shape[1] - big + 1, (1,), generator=g))
        x0 = int(torch.randint(0, img.shape[2] - big + 1, (1,), generator=g))
        scene = srgb_to_linear(img[:, y0 : y0 + big, x0 : x0 + big])
        scene = scene / torch.quantile(scene.amax(0).flatten(), 1 - over).clamp_min(1e-3)
        scene = lamps(g, scene, lamp_count)
        k = tremor_kernel(g, lengths, support, 800)
        blurred = valid_blur(scene, k)
        blurred = linear_to_srgb(blurred.clamp(0, 1))
        blurred = blurred + torch.randn(blurred.shape, generator=g, dtype=torch.float64) * noise
        blurred = (blurred.clamp(0, 1) * 255).round() / 255
        c = support // 2
        sharp = linear_to_srgb(scene[:, c : c + size, c : c + size].clamp(0, 1))
        out.append((f.stem, blurred[None].float(), sharp[None].float(), k.float()))
    return out


def scores(x: torch.Tensor, sharp: torch.Tensor, near: torch.Tensor, m: int = 8) -> tuple[float, float]:
    """Aligned PSNR of ``x`` against ``sharp`` ``(1, 3, H, W)``, over all pixels and over ``near``
    ``(H, W)`` (bool), at the shift that is best over all pixels."""
    x = x.clamp(0, 1)
    h, w = sharp.shape[-2:]
    dy, dx = best_shift(x, sharp, m)
    a = x[..., m + dy : h - m + dy, m + dx : w - m + dx]
    b = sharp[..., m : h - m, m : w - m]
    sel = near[m : h - m, m : w - m]
    err = (a - b).square().mean(1)[0]
    near_db = float(-10 * torch.log10(err[sel].mean())) if bool(sel.any()) else float("nan")
    return float(psnr(a, b)), near_db


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--count", type=int, default=12)
    ap.add_argument("--lengths", type=float, nargs=2, default=(15.0, 40.0))
    ap.add_argument("--over", type=float, default=0.01, help="share of the scene exposed past full scale")
    ap.add_argument("--noise", type=float, default=0.005)
    ap.add_argument("--lamps", type=int, nargs=2, default=(2, 8), help="fewest and most lamps per photo")
    ap.add_argument("--rounds", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--no-blind", action="store_true", help="skip the blind runs (kernel estimation)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(2)
    items = saturation_set(
        args.data / "sharp" / "sunhays80",
        args.count,
        lengths=tuple(args.lengths),
        over=args.over,
        noise=args.noise,
        lamp_count=tuple(args.lamps),
    )
    rows = []
    t0 = time.time()
    for name, blurred, sharp, k in items:
        support = k.shape[0]
        clipped = (blurred >= CLIPPED).any(1)[0]
        near = F.max_pool2d(clipped[None, None].float(), support, 1, support // 2)[0, 0] > 0
        lam = prior_weight(noise_sigma(blurred.mean(1)[0]))
        row: dict = {
            "name": name,
            "clipped_share": float(clipped.float().mean()),
            "near_share": float(near.float().mean()),
        }
        row["input"] = scores(blurred, sharp, near)
        row["true"] = scores(deconvolve_rgb(blurred, k, lam, clipped=None), sharp, near)
        for r in args.rounds:
            row[f"true_r{r}"] = scores(
                deconvolve_rgb(blurred, k, lam, clipped=CLIPPED, rounds=r), sharp, near
            )
        if not args.no_blind:  # as `deblur --shake` runs, then with the handling
            remover = ShakeRemover(torch.device("cpu"), max_blur=support)
            row["blind"] = scores(remover.tensor(blurred), sharp, near)
            given = remover.tensor(blurred, kernel=remover.kernel(blurred), clipped=CLIPPED)
            row["blind_clipped"] = scores(given, sharp, near)
        rows.append(row)
        print(
            f"{name:12s} clipped {row['clipped_share']:.3f} "
            + " ".join(f"{key} {v[0]:.2f}/{v[1]:.2f}" for key, v in row.items() if isinstance(v, tuple)),
            flush=True,
        )
    keys = [key for key, v in rows[0].items() if isinstance(v, tuple)]
    summary = {
        key: {"psnr": st.mean(r[key][0] for r in rows), "near_highlights": st.mean(r[key][1] for r in rows)}
        for key in keys
    }
    for key, v in summary.items():
        print(f"{key:14s} all {v['psnr']:.2f} dB   near highlights {v['near_highlights']:.2f} dB")
    print(f"{time.time() - t0:.0f} s")
    if args.json:
        result = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
        args.json.write_text(json.dumps({**result, "summary": summary, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
