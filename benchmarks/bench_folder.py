"""A folder of photos in one run vs one `blurvid deblur` invocation per photo.

    python benchmarks/bench_folder.py [--count 50] [--size 640x480] [--json out.json]

Start-up (imports) and weight loading are paid once in a folder run; this measures how much that saves.
Photos are generated (smooth colour fields + edges), so nothing needs downloading.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_photos(folder: Path, count: int, h: int, w: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(count):
        base = rng.random((h // 40 + 2, w // 40 + 2, 3))
        img = np.asarray(Image.fromarray((base * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC))
        Image.fromarray(img).save(folder / f"photo_{i:03d}.jpg", quality=90)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    w, h = map(int, a.size.split("x"))
    cli = [sys.executable, "-m", "blurvid", "deblur", "-q"]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        make_photos(src, a.count, h, w)
        t = time.perf_counter()
        subprocess.run([*cli, str(src), "-o", str(Path(tmp) / "folder")], check=True)
        folder_s = time.perf_counter() - t
        shutil.rmtree(Path(tmp) / "folder")
        t = time.perf_counter()
        for p in sorted(src.iterdir()):
            subprocess.run([*cli, str(p), "-o", str(Path(tmp) / "single" / p.name)], check=True)
        single_s = time.perf_counter() - t
    res = {
        "count": a.count,
        "size": [w, h],
        "folder_run_s": folder_s,
        "separate_runs_s": single_s,
        "speedup": single_s / folder_s,
    }
    print(
        f"{a.count} photos {w}x{h}: one folder run {folder_s:.1f} s, {a.count} separate runs {single_s:.1f} s "
        f"({res['speedup']:.1f}x)"
    )
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
