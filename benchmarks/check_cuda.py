"""CPU vs CUDA agreement of deblur and animate on one photo (fp32 on both, then the GPU's half precision).

    python benchmarks/check_cuda.py examples/<photo>.jpg [--json out.json]

Prints max / mean |difference| on [0, 1] images between the CPU fp32 result and each CUDA result, and
the same for camera-shake mode (``deblur --shake``: its kernel and its photo), run with a 256 px
working copy so that the kernel refinement at full size runs too.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from blurvid import pipeline
from blurvid.io import read_photo


def run(photo: Path, device: str, precision: str) -> tuple[np.ndarray, np.ndarray]:
    dev = pipeline.select_device(device)
    deb = pipeline.Deblurrer(pipeline.load_model("dm"), dev, pipeline.resolve_precision(precision, dev))
    img = read_photo(photo).pixels
    sharp = deb(img)
    an = pipeline.Animator(deb, pipeline.load_model("bie"), pipeline.load_model("rvd"))
    return sharp, np.stack(an(img, 9, sharp=sharp))


def shake(photo: Path, device: str) -> tuple[np.ndarray, np.ndarray]:
    """``deblur --shake`` on ``device``: (the full-size kernel, the photo)."""
    remover = pipeline.ShakeRemover(pipeline.select_device(device), work_side=256)
    x = pipeline.to_tensor(read_photo(photo).pixels, torch.device("cpu"))
    k = remover.kernel(x)
    return k.cpu().numpy(), pipeline.to_numpy(remover.tensor(x, kernel=k))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photo", type=Path)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here")
    ref_sharp, ref_frames = run(a.photo, "cpu", "fp32")
    rows = {}
    for precision in ("fp32", "half", "bf16"):
        sharp, frames = run(a.photo, "cuda", precision)
        rows[precision] = {
            "deblur_max": float(np.abs(sharp - ref_sharp).max()),
            "deblur_mean": float(np.abs(sharp - ref_sharp).mean()),
            "animate_max": float(np.abs(frames - ref_frames).max()),
            "animate_mean": float(np.abs(frames - ref_frames).mean()),
        }
        print(
            f"cuda {precision:5s} vs cpu fp32: "
            + "  ".join(f"{k} {v:.5f}" for k, v in rows[precision].items())
        )
    (k_cpu, y_cpu), (k_gpu, y_gpu) = shake(a.photo, "cpu"), shake(a.photo, "cuda")
    same = k_cpu.shape == k_gpu.shape
    rows["shake"] = {
        "kernel_shapes": [list(k_cpu.shape), list(k_gpu.shape)],
        "kernel_max": float(np.abs(k_cpu - k_gpu).max()) if same else None,
        "photo_max": float(np.abs(y_cpu - y_gpu).max()),
        "photo_mean": float(np.abs(y_cpu - y_gpu).mean()),
    }
    print("shake cuda vs cpu: " + "  ".join(f"{k} {v}" for k, v in rows["shake"].items()))
    if a.json:
        a.json.write_text(
            json.dumps({"photo": str(a.photo), "gpu": torch.cuda.get_device_name(0), **rows}, indent=2)
        )


if __name__ == "__main__":
    main()
