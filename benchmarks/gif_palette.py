"""GIF palette and dither choices for `animate`'s GIFs, measured on the shipped examples' clips.

    python benchmarks/gif_palette.py [--size 320] [--json out.json]

Each example is animated as ``blurvid animate --size SIZE`` does (9 frames), and its 8-bit frames
are written as a GIF with one shared palette and the ordered dither of ``blurvid.io`` under several
settings: the palette by median cut (before session 21) or fast octree (since), with dither amplitude
12 (before) or 6 (since), and since session 27 offset by half of Pillow's 4-level palette lookup cell
(it maps 4k..4k+3 as 4k, which darkened every GIF by ~1.5 levels). Reported per clip and setting: the
mean signed error (bias), the mean, 99.9th percentile and largest absolute error of the decoded frames
(0-255 levels), the mean error after a 3x3 box blur (what the eye sees of the dither) and the file size.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence

import blurvid.io as bio
from blurvid import pipeline
from blurvid.io import read_photo, to_uint8

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {
    "median cut, amplitude 12 (before)": (Image.Quantize.MEDIANCUT, 12.0, 0.0),
    "median cut, amplitude 6": (Image.Quantize.MEDIANCUT, 6.0, 0.0),
    "fast octree, amplitude 6 (sessions 21-26)": (Image.Quantize.FASTOCTREE, 6.0, 0.0),
    "fast octree, amplitude 6, cell-centred (since session 27)": (
        Image.Quantize.FASTOCTREE,
        6.0,
        bio._PALETTE_CELL_CENTRE,
    ),
}


def _box3(a: np.ndarray) -> np.ndarray:
    p = np.pad(a.astype(np.float64), ((1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = a.shape[:2]
    return sum(p[i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9


def encode(frames: list[np.ndarray], method: Image.Quantize, amplitude: float, offset: float) -> bytes:
    """A GIF as ``blurvid.io`` writes it, with the palette ``method``, dither ``amplitude`` and ``offset``."""
    h, w = frames[0].shape[:2]
    step = max(1, int(np.sqrt(h * w * len(frames) / 1_000_000)))
    sample = np.concatenate([f[::step, ::step] for f in frames], axis=0)
    palette = Image.fromarray(sample).quantize(colors=256, method=method, dither=Image.Dither.NONE)
    pattern = offset + np.tile(bio._BAYER * amplitude, (h // 4 + 1, w // 4 + 1))[:h, :w, None]
    images = [
        Image.fromarray(np.clip(np.rint(f.astype(np.float32) + pattern), 0, 255).astype(np.uint8)).quantize(
            palette=palette, dither=Image.Dither.NONE
        )
        for f in frames
    ]
    buf = io.BytesIO()
    images[0].save(
        buf,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=80,
        disposal=1,
        loop=0,
        palette=palette.getpalette(),
    )
    return buf.getvalue()


def score(frames: list[np.ndarray], data: bytes) -> dict:
    decoded = [
        np.asarray(f.convert("RGB")).astype(int) for f in ImageSequence.Iterator(Image.open(io.BytesIO(data)))
    ]
    if len(decoded) != len(frames):  # identical consecutive frames were merged (tiny or still clips)
        raise SystemExit(
            f"the GIF holds {len(decoded)} of {len(frames)} frames (merged); use a larger --size"
        )
    signed = np.stack([d - f.astype(int) for d, f in zip(decoded, frames, strict=True)])
    err = np.abs(signed)
    seen = np.mean([np.abs(_box3(d) - _box3(f)).mean() for d, f in zip(decoded, frames, strict=True)])
    return {
        "bias": float(signed.mean()),
        "mean": float(err.mean()),
        "p99.9": float(np.percentile(err, 99.9)),
        "max": int(err.max()),
        "blurred_mean": float(seen),
        "kB": len(data) / 1000,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=320, help="longest side of the clips (animate --size)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    dev = pipeline.select_device("cpu")
    dtype = pipeline.resolve_precision("auto", dev)
    deblurrer = pipeline.Deblurrer(pipeline.load_model("dm"), dev, dtype)
    animator = pipeline.Animator(deblurrer, pipeline.load_model("bie"), pipeline.load_model("rvd"))
    result: dict = {"size": args.size, "clips": {}}
    for photo in sorted((ROOT / "examples").glob("*.jpg")):
        pixels = pipeline.fit_image(read_photo(photo).pixels, args.size)
        frames = [to_uint8(f) for f in animator(pixels, 9)]
        rows = {name: score(frames, encode(frames, *s)) for name, s in SETTINGS.items()}
        result["clips"][photo.stem] = rows
        for name, r in rows.items():
            print(
                f"{photo.stem:32s} {name:58s} bias {r['bias']:+.2f}  mean {r['mean']:.2f}"
                f"  p99.9 {r['p99.9']:5.1f}  max {r['max']:3d}"
                f"  blurred {r['blurred_mean']:.2f}  {r['kB']:.0f} kB"
            )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
