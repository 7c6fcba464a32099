"""Regenerate the README's pictures from the installed checkpoints and the shipped examples.

    python benchmarks/make_readme_media.py            # writes docs/*.gif and docs/*.jpg

* ``docs/<example>_motion.gif``: blurred photo | extracted video (side by side, boomerang).
* ``docs/before_after.jpg``: 192 px crops of each example, blurred (top) and deblurred (bottom).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ["cat_moving_head.jpg", "astronaut_camera_shake.jpg", "coffee_shake_and_moving_cup.jpg"]


def main() -> None:
    import argparse

    argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()
    from blurvid import pipeline
    from blurvid.io import read_photo, write_photo

    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    for name in EXAMPLES[:1]:
        out = docs / (Path(name).stem + "_motion.gif")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "blurvid",
                "animate",
                str(ROOT / "examples" / name),
                "-o",
                str(out),
                "--side-by-side",
                "--boomerang",
                "--size",
                "200",
                "--fps",
                "10",
                "--overwrite",
                "-q",
            ],
            check=True,
        )
    import torch

    deb = pipeline.Deblurrer(pipeline.load_model("dm"), torch.device("cpu"), torch.float32)
    tops, bottoms = [], []
    for name in EXAMPLES:
        img = read_photo(ROOT / "examples" / name).pixels
        sharp = deb(img)
        h, w = img.shape[:2]
        y, x = h // 2 - 96, w // 2 - 96
        tops.append(img[y : y + 192, x : x + 192])
        bottoms.append(sharp[y : y + 192, x : x + 192])
    grid = np.concatenate([np.concatenate(tops, 1), np.concatenate(bottoms, 1)], 0)
    write_photo(docs / "before_after.jpg", grid, quality=90)


if __name__ == "__main__":
    main()
