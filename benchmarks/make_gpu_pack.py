"""Make the compact training-data copy that travels to a rented GPU machine.

The GPU machine cannot read ``../shared/data`` and receives at most 64 MiB with the working tree, so
the training folders are copied as JPEG (4:4:4; quality 93, ``sunhays80`` resized to 640 px on the long
side at quality 90), the clips at quality 85 (masks stay PNG) and kodak24 (validation, monitoring only:
the shipped numbers are measured on the originals) at quality 95.

Usage: ``python benchmarks/make_gpu_pack.py --data ../shared/data --out .gpu``
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from PIL import Image

TRAIN = {"bsd100": (93, None), "urban100": (93, None), "sunhays80": (90, 640), "mcmaster": (93, None)}


def _jpeg(src: Path, dst: Path, quality: int, long_side: int | None) -> None:
    img = Image.open(src).convert("RGB")
    if long_side is not None and max(img.size) > long_side:
        scale = long_side / max(img.size)
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
    img.save(dst.with_suffix(".jpg"), quality=quality, subsampling=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="the shared data folder")
    ap.add_argument("--out", type=Path, required=True, help="output folder (ignored by git)")
    args = ap.parse_args()
    for name, (quality, side) in TRAIN.items():
        (args.out / "sharp" / name).mkdir(parents=True, exist_ok=True)
        for src in sorted((args.data / "sharp" / name).iterdir()):
            _jpeg(src, args.out / "sharp" / name / src.name, quality, side)
    (args.out / "sharp" / "kodak24").mkdir(parents=True, exist_ok=True)
    for src in sorted((args.data / "sharp" / "kodak24").iterdir()):
        _jpeg(src, args.out / "sharp" / "kodak24" / src.name, 95, None)
    for clip in sorted((args.data / "video").iterdir()):
        dst = args.out / "video" / clip.name
        dst.mkdir(parents=True, exist_ok=True)
        for src in sorted(clip.iterdir()):
            if clip.name.endswith("_mask"):
                shutil.copy2(src, dst / src.name)
            else:
                _jpeg(src, dst / src.name, 85, None)
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"{args.out}: {total / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
