"""Camera-shake mode across a scale gap: is the kernel estimated on a small copy good enough at full size?

`blurvid deblur --shake` estimates the kernel on a copy bounded to ``work_side`` px (1024) and scales
it up; a 24 MP photo is ~6x that copy. This benchmark makes the same gap on photos it can score: RGB
sunhays80 photos (1024 px, a training folder) blurred by random hand-tremor kernels (path length
``--lengths`` px at full size, in a ``--support`` px kernel; "valid" convolution, Gaussian noise
``--noise``, 8-bit rounding), processed by :class:`blurvid.pipeline.ShakeRemover` with a smaller
``work_side`` (256: a 4x gap, 512: 2x). Scores (aligned PSNR, best shift <= 8 px, as for Levin):
the input, the kernel scaled up from the copy (``refine=False``), the kernel re-estimated at each
doubling of the scale up to full size (``refine=True``, the default), and the true kernel.

    python benchmarks/shake_scale.py --data ../shared/data --json benchmarks/results/shake_scale.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from shake_eval import tremor_kernel, valid_blur

from blurvid.metrics import aligned_psnr
from blurvid.pipeline import ShakeRemover


def scale_set(
    root: Path, count: int, support: int, lengths: tuple[float, float], noise: float, seed: int = 0
) -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``(name, blurred (1, 3, H, W), sharp (1, 3, H, W), kernel (support, support))``."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for f in sorted(root.glob("*.png"))[:count]:
        img = torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), dtype=np.float64) / 255)
        img = img.permute(2, 0, 1)[None]
        k = tremor_kernel(g, lengths, support, 800)
        blurred = valid_blur(img, k)
        blurred = blurred + torch.randn(blurred.shape, generator=g, dtype=torch.float64) * noise
        blurred = (blurred.clamp(0, 1) * 255).round() / 255
        c = support // 2
        sharp = img[..., c : c + blurred.shape[-2], c : c + blurred.shape[-1]]
        out.append((f.stem, blurred.float(), sharp.float(), k.float()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="../shared/data")
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--support", type=int, default=63, help="kernel support at full size (px)")
    ap.add_argument("--lengths", type=float, nargs=2, default=[30.0, 90.0], help="path lengths (px)")
    ap.add_argument("--noise", type=float, default=0.005)
    ap.add_argument("--work-sides", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--crop", type=int, default=512, help="ShakeRemover's texture window (px)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = scale_set(
        args.data / "sharp" / "sunhays80", args.count, args.support, tuple(args.lengths), args.noise
    )
    cpu = torch.device("cpu")
    rows: dict[str, list[float]] = {"input": [], "true kernel": []}
    secs: dict[str, list[float]] = {}
    for name, blurred, sharp, k in data:

        def score(x: torch.Tensor, sharp: torch.Tensor = sharp) -> float:
            return float(aligned_psnr(x.clamp(0, 1), sharp))

        rows["input"].append(score(blurred))
        rows["true kernel"].append(score(ShakeRemover(cpu).tensor(blurred, kernel=k)))
        line = [f"{name}: input {rows['input'][-1]:.2f}  true {rows['true kernel'][-1]:.2f}"]
        for side in args.work_sides:
            for refine in (False, True):
                key = f"work_side {side}, {'refined' if refine else 'scaled up'}"
                remover = ShakeRemover(
                    cpu, max_blur=args.support, work_side=side, crop=args.crop, refine=refine
                )
                t0 = time.perf_counter()
                est = remover.kernel(blurred)
                secs.setdefault(key, []).append(time.perf_counter() - t0)
                rows.setdefault(key, []).append(score(remover.tensor(blurred, kernel=est)))
                line.append(f"{side}{'r' if refine else 's'} {rows[key][-1]:.2f}")
        print("  ".join(line), flush=True)
    summary = {
        key: {"psnr": sum(v) / len(v), **({"kernel_s": sum(secs[key]) / len(v)} if key in secs else {})}
        for key, v in rows.items()
    }
    for key, v in summary.items():
        print(
            f"{key:28s} {v['psnr']:.2f} dB" + (f"  kernel {v['kernel_s']:.1f} s" if "kernel_s" in v else "")
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "args": vars(args) | {"data": str(args.data), "json": str(args.json)},
                    "summary": summary,
                    "per_image": rows,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
