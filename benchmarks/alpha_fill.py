"""What the colour stored under transparent pixels does to the visible pixels beside them.

    python benchmarks/alpha_fill.py [--data $DATA] [--json benchmarks/results/alpha_fill.json]

For each shipped example (and, with ``--data``, ``realblur/photos``): a 384 x 384 centre crop whose
right third is made fully transparent, deblurred by the installed DM (CPU, default precision) three
ways: (a) with black stored under the transparency (what most editors write), (b) with that colour
replaced by :func:`blurvid.io.fill_transparent`, and (c) with the photo's own colour there, the
reference: the scene went on, so nothing should change the pixels that show. Reports the PSNR of (a)
and (b) against (c) over the visible band within 16 px of the transparent edge, and over all visible
pixels. A stored colour that matters shows as a low band PSNR.

    python benchmarks/alpha_fill.py --cost

instead times ``fill_transparent`` alone on a 6000 x 4000 (24 MP) photo whose right third is
transparent, with the peak memory it adds (fresh process: the high-water mark of this one).
"""

from __future__ import annotations

import json

import numpy as np
from colour_shift import photo_parser, photos_and_deblurrer

SIZE, BAND = 384, 16


def psnr(x: np.ndarray, y: np.ndarray) -> float:
    mse = float(np.mean((np.clip(x, 0, 1) - np.clip(y, 0, 1)) ** 2))
    return round(float(10 * np.log10(1 / max(mse, 1e-12))), 2)


def cost() -> None:
    """Seconds and extra peak memory of :func:`blurvid.io.fill_transparent` on a 24 MP photo."""
    import resource
    import time

    from blurvid.io import fill_transparent

    image = np.random.default_rng(0).random((4000, 6000, 3), dtype=np.float32)
    alpha = np.ones((4000, 6000), np.float32)
    alpha[:, 4000:] = 0
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    fill_transparent(image, alpha)
    seconds = time.perf_counter() - start
    extra_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024  # ru_maxrss: KiB
    print(f"fill_transparent, 24 MP, a third transparent: {seconds:.2f} s, {extra_mb:.0f} MiB extra peak")


def main() -> None:
    ap = photo_parser(__doc__)
    ap.add_argument("--cost", action="store_true", help="time fill_transparent on 24 MP instead")
    args = ap.parse_args()
    if args.cost:
        cost()
        return
    from blurvid.io import fill_transparent, read_photo
    from blurvid.weights import default_spec

    photos, deblur = photos_and_deblurrer(args.data)
    result: dict = {"weights": default_spec("dm").name, "size": SIZE, "band": BAND, "photos": {}}
    edge = 2 * SIZE // 3
    for p in photos:
        full = read_photo(p).pixels
        top, left = (full.shape[0] - SIZE) // 2, (full.shape[1] - SIZE) // 2
        crop = np.ascontiguousarray(full[top : top + SIZE, left : left + SIZE])
        alpha = np.ones(crop.shape[:2], np.float32)
        alpha[:, edge:] = 0
        black = crop * alpha[:, :, None]
        ref = deblur(crop)[:, :edge]
        row = {}
        for name, seen in (("black", black), ("filled", fill_transparent(black, alpha))):
            out = deblur(seen)[:, :edge]
            row[name] = {"band": psnr(out[:, -BAND:], ref[:, -BAND:]), "visible": psnr(out, ref)}
        result["photos"][p.name] = row
        print(f"{p.name:34s} {row}", flush=True)
    for name in ("black", "filled"):
        result[f"mean_band_{name}"] = round(
            float(np.mean([r[name]["band"] for r in result["photos"].values()])), 2
        )
    print({k: v for k, v in result.items() if k.startswith("mean")})
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
