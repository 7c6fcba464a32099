"""Does a DM remove the simplest blur there is? Straight, constant-speed camera motion (a line kernel).

    python benchmarks/dm_linear_probe.py --photos $DATA/sharp/kodak24 \
        --weights weights/dm-v8.safetensors [runs/x/last.pt ...] [--lengths 5 9 17 25] [--json out.json]

Each photo's central ``--size`` crop is blurred by a line kernel of each length at a random angle
(bilinear splat, centred, so the sharp target is exactly where the blur is centred: no time-vs-centre
ambiguity), with reflect padding, rounded to 8 bits and no noise. Prints the input's PSNR, each
checkpoint's, and the same deconvolution ``deblur --shake`` uses run with the *true* kernel (what a
known kernel allows), all over the crop less a 16 px border. A network that deblurs at all should gain
here; one that only denoises stays at the input.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shake_eval import splat_kernel


def line_kernel(length: float, angle: float) -> torch.Tensor:
    """A ``(s, s)`` float64 kernel of a straight constant-speed path of ``length`` px at ``angle`` rad."""
    s = (math.ceil(length) | 1) + 2
    t = torch.linspace(-0.5, 0.5, max(int(length * 8), 2), dtype=torch.float64)
    path = torch.stack([t * length * math.cos(angle), t * length * math.sin(angle)], 1)
    return splat_kernel(path, s)


def blur(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``x: (3, H, W)`` convolved with ``k: (s, s)`` (reflect padding), rounded to 8 bits."""
    p = k.shape[-1] // 2
    y = F.conv2d(F.pad(x[:, None], (p, p, p, p), mode="reflect"), k.flip(0, 1)[None, None].float())[:, 0]
    return torch.round(y.clamp(0, 1) * 255) / 255


def center_crop(path: Path, size: int) -> torch.Tensor:
    """The central ``size`` px square of a photo as float ``(3, size, size)`` in [0, 1]."""
    from blurvid.data.datasets import load_rgb

    x = load_rgb(path).float() / 255
    h, w = x.shape[-2:]
    y0, x0 = (h - size) // 2, (w - size) // 2
    return x[:, y0 : y0 + size, x0 : x0 + size]


def psnr(a: torch.Tensor, b: torch.Tensor, border: int = 16) -> float:
    """:func:`blurvid.metrics.psnr` over the crop less ``border`` px on every side."""
    from blurvid.metrics import psnr as full

    c = slice(border, -border)
    return float(full(a[..., c, c], b[..., c, c]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", nargs="+", required=True)
    ap.add_argument("--weights", nargs="+", type=Path, required=True, help="DM .safetensors or last.pt")
    ap.add_argument("--lengths", nargs="+", type=float, default=[5, 9, 17, 25])
    ap.add_argument("--count", type=int, default=12)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--no-true-kernel", action="store_true", help="skip the true-kernel deconvolution")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()

    from blurvid import shake
    from blurvid.data.datasets import list_images
    from blurvid.train.export import evaluation_runtime

    crops = [center_crop(f, a.size) for f in list_images(a.photos)[: a.count]]
    models = {
        p.stem if p.suffix != ".pt" else p.parent.name: evaluation_runtime("deblur", p, "cpu", "auto").deblur
        for p in a.weights
    }
    g = torch.Generator().manual_seed(a.seed)
    rows = []
    for length in a.lengths:
        scores: dict[str, list[float]] = {"input": []} | {n: [] for n in models}
        if not a.no_true_kernel:
            scores["true_kernel"] = []
        for x in crops:
            k = line_kernel(length, float(torch.rand((), generator=g)) * math.pi)
            y = blur(x, k)
            scores["input"].append(psnr(y, x))
            for n, d in models.items():
                scores[n].append(psnr(d(y[None])[0].clamp(0, 1), x))
            if not a.no_true_kernel:
                # as deblur --shake: the prior weight from the luminance's noise
                out = shake.deconvolve_rgb(y, k.float(), shake.prior_weight(y.mean(0)))
                scores["true_kernel"].append(psnr(out.clamp(0, 1), x))
        row = {"length_px": length} | {n: sum(v) / len(v) for n, v in scores.items()}
        base = torch.tensor(scores["input"])
        for n, v in scores.items():
            if n != "input":  # standard error of the per-photo gain over the input
                row[f"{n}_gain_se"] = float((torch.tensor(v) - base).std() / len(v) ** 0.5)
        rows.append(row)
        print(f"{length:g} px: " + "  ".join(f"{n} {row[n]:.2f}" for n in scores), flush=True)
    if a.json:
        a.json.write_text(
            json.dumps({"args": {k: str(v) for k, v in vars(a).items()}, "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
