"""How close tiled deblurring is to untiled deblurring, with real weights on a real photo.

    python benchmarks/bench_tiling.py examples/astronaut_camera_shake.jpg [--run runs/dm] [--json out.json]

Prints max / mean / 99.9th-percentile absolute difference (on [0, 1] images) and PSNR of the tiled
result against the untiled one, for a few tile / overlap settings, with the number of tiles each makes.
A photo of at most 2 x tile^2 pixels runs in one pass (``Deblurrer``), so a setting that would not tile
the photo is refused: the default settings tile a photo of about 448 x 448 (the astronaut example).
Uses the installed DM checkpoint unless --run names a training run (its best.safetensors).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photo", type=Path)
    ap.add_argument("--run", type=Path, default=None)
    ap.add_argument(
        "--settings", nargs="+", default=["160:40", "224:56", "256:64", "288:72"], help="tile:overlap"
    )
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()

    from blurvid import pipeline
    from blurvid.io import read_photo
    from blurvid.tiling import tiles

    if a.run:
        from blurvid.train.export import split_run

        state, cfg = split_run(a.run)["dm"]
        dm = pipeline.build_from_checkpoint("dm", state, cfg)
    else:
        dm = pipeline.load_model("dm")
    img = read_photo(a.photo).pixels
    dev = torch.device("cpu")
    dtype = pipeline.resolve_precision(a.precision, dev)
    ref = pipeline.Deblurrer(dm, dev, dtype, tile=1 << 16)(img)
    rows = []
    h, w = img.shape[:2]
    for s in a.settings:
        tile, overlap = map(int, s.split(":"))
        if h * w <= 2 * tile * tile:  # one pass, like the untiled reference
            ap.error(
                f"tile {tile} does not tile a {w}x{h} photo (at most 2 x {tile}^2 pixels run in one pass)"
            )
        deblurrer = pipeline.Deblurrer(dm, dev, dtype, tile=tile, overlap=overlap)
        out = deblurrer(img)
        d = np.abs(out - ref)
        mse = float((d**2).mean())
        row = {
            "tile": tile,
            "overlap": overlap,
            "tile_used": deblurrer.tile,
            "tiles": len(tiles(h, w, deblurrer.tile, deblurrer.overlap)),
            "max_abs": float(d.max()),
            "mean_abs": float(d.mean()),
            "p999_abs": float(np.quantile(d, 0.999)),
            "psnr_vs_untiled": 10 * np.log10(1 / max(mse, 1e-12)),
        }
        rows.append(row)
        print(
            f"tile {tile:5d} overlap {overlap:4d} ({row['tiles']} tiles): max {row['max_abs']:.4f} "
            f"mean {row['mean_abs']:.5f} p99.9 {row['p999_abs']:.4f} PSNR vs untiled {row['psnr_vs_untiled']:.1f} dB"
        )
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(
            json.dumps({"photo": str(a.photo), "size": list(img.shape[:2]), "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
