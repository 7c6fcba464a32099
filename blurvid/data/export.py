"""Write synthesised samples to disk (the `blurvid synth` layout) — plain PNG + NumPy + JSON."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch


def _png(t: torch.Tensor, path: Path) -> None:
    from PIL import Image

    arr = (t.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    Image.fromarray(arr).save(path)


def write_sample(folder: Path, item: dict, meta: dict) -> None:
    """``folder/blurred.png``, ``folder/frames/frame_NN.png``, ``folder/flows.npy`` (float16, N x 2 x H x W,
    NaN when unknown) and ``folder/meta.json`` (centre index, ``source`` 'photo' or 'clip', and
    ``meta``). Written into a hidden sibling folder, then renamed over ``folder``: a sample is whole
    or absent, never a mix of two runs' files."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        (tmp / "frames").mkdir(parents=True)
        _png(item["blurred"], tmp / "blurred.png")
        for n, f in enumerate(item["frames"]):
            _png(f, tmp / "frames" / f"frame_{n:02d}.png")
        np.save(tmp / "flows.npy", item["flows"].numpy().astype(np.float16))
        source = "photo" if bool(item.get("has_flow", True)) else "clip"
        (tmp / "meta.json").write_text(
            json.dumps({"center": int(item["center"]), "source": source, **meta}, indent=2)
        )
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
