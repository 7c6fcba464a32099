"""How much the default network changes a photo's colour and tone: the mean change per channel.

    python benchmarks/colour_shift.py [--data $DATA] [--json benchmarks/results/colour_shift.json]

Deblurs the shipped examples (and, with ``--data``, ``realblur/photos``) as ``blurvid deblur`` does (the
installed DM, CPU, its default precision) and reports, per photo, the mean of output - input per channel
in levels of 255 over the whole photo, over its flat areas (gradient magnitude of the input under 2 levels
per pixel, where deblurring has nothing to change) and over its shadows (input luminance under 32 levels).
A deblurring network should leave the mean of a flat area as it was: a negative number is darkening.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from blurvid.pipeline import Deblurrer

ROOT = Path(__file__).resolve().parents[1]


def shift(before: np.ndarray, after: np.ndarray) -> dict:
    """Mean per-channel change (levels of 255) over the whole photo, its flat areas and its shadows."""
    diff = (after.astype(np.float64) - before.astype(np.float64)) * 255
    lum = before.mean(2) * 255
    gy, gx = np.gradient(lum)
    areas = {"all": np.ones(lum.shape, bool), "flat": np.hypot(gx, gy) < 2, "shadows": lum < 32}
    out = {}
    for name, mask in areas.items():
        out[name] = [round(float(diff[..., c][mask].mean()), 3) for c in range(3)] if mask.any() else None
        out[f"{name}_share"] = round(float(mask.mean()), 4)
    return out


def photo_parser(doc: str | None) -> argparse.ArgumentParser:
    """``--data`` (adds realblur/photos) and ``--json``, the options of the scripts over the photos."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="the shared data folder: adds realblur/photos")
    ap.add_argument("--json", type=Path)
    return ap


def photos_and_deblurrer(data: Path | None) -> tuple[list[Path], Deblurrer]:
    """The shipped examples (and ``data``'s realblur/photos) and the installed DM as ``blurvid deblur``
    runs it on the CPU (its default precision)."""
    import torch

    from blurvid import pipeline

    dev = torch.device("cpu")
    deblur = pipeline.Deblurrer(pipeline.load_model("dm"), dev, pipeline.resolve_precision("auto", dev))
    photos = sorted((ROOT / "examples").glob("*.jpg"))
    if data:
        photos += sorted((data / "realblur" / "photos").glob("*.jpg"))
    return photos, deblur


def main() -> None:
    args = photo_parser(__doc__).parse_args()
    from blurvid.io import read_photo
    from blurvid.weights import default_spec

    photos, deblur = photos_and_deblurrer(args.data)

    result: dict = {"weights": default_spec("dm").name, "precision": str(deblur.dtype), "photos": {}}
    for p in photos:
        before = read_photo(p).pixels
        row = shift(before, deblur(before))
        result["photos"][p.name] = row
        print(f"{p.name:34s} all {row['all']}  flat {row['flat']} ({row['flat_share']:.0%})", flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
