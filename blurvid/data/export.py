"""Write synthesised samples to disk (the `blurvid synth` layout) — plain PNG + NumPy + JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch


def _png(t: torch.Tensor, path: Path) -> None:
    from PIL import Image

    arr = (t.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    Image.fromarray(arr).save(path)


def write_sample(folder: Path, item: dict, meta: dict) -> None:
    """``folder/blurred.png``, ``folder/frames/frame_NN.png``, ``folder/flows.npy`` (float16, N x 2 x H x W,
    NaN when unknown) and ``folder/meta.json`` (centre index and synthesis settings)."""
    (folder / "frames").mkdir(parents=True, exist_ok=True)
    _png(item["blurred"], folder / "blurred.png")
    for n, f in enumerate(item["frames"]):
        _png(f, folder / "frames" / f"frame_{n:02d}.png")
    np.save(folder / "flows.npy", item["flows"].numpy().astype(np.float16))
    (folder / "meta.json").write_text(json.dumps({"center": int(item["center"]), **meta}, indent=2))
