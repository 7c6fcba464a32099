"""Make the motion-blurred example photos in this folder.

    python examples/make_examples.py          # writes examples/*.jpg (needs: pip install scikit-image)

The sharp sources are public-domain / CC0 photos shipped with scikit-image (``skimage.data``; see
``examples/README.md`` for each one's author and licence). The blur is synthesised by blurvid's own
training engine, :func:`blurvid.data.synth.synthesize`, with fixed seeds, so the output is reproducible.

scikit-image is only needed by this script; it is not a dependency of blurvid.

How a "moving object" example is made: the engine moves ``others`` textures (soft-edged blobs) over the
background on their own paths. To make the moving thing a real part of the scene (the cat's face, the
coffee cup) rather than a pasted foreign patch, we first do a dry run with the same seed to learn where
the engine will place the layer, then choose the background crop so the subject sits there, and give
the engine the scene's own pixels under that spot as the texture. The random draws do not depend on
pixel values, so the real run places the layer exactly where the dry run did.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from blurvid.data import synth
from blurvid.data.synth import SynthConfig, synthesize

HERE = Path(__file__).resolve().parent

# Shared settings: no random rescale or flip (keep the photo's native look), one fixed blur length per
# example, gentle sensor noise, linear-light averaging.
BASE = SynthConfig(
    size=384,
    zoom=(1.0, 1.0),
    hflip=False,
    rotation_deg=1.0,
    zoom_motion=0.01,
    gamma_average_p=0.0,
    highlight_p=0.0,
    shot_noise=(1e-3, 1e-3),
    read_noise=(2e-3, 2e-3),
)


@dataclass
class Example:
    name: str  # output file stem
    source: str  # skimage.data function
    seed: int
    cfg: SynthConfig
    center: tuple[float, float]  # (x, y) in source pixels: crop centre, or the moving subject's centre
    scale: float = 1.0  # rescale of the source before cropping (1 = native)
    moving_subject: bool = False  # the object layer is cut from the scene under it


EXAMPLES = [
    Example(
        "astronaut_camera_shake",
        "astronaut",
        seed=1,
        cfg=replace(BASE, size=448, blur_px=(24.0, 24.0), shake=0.3, static_camera_p=0.0, objects=(0, 0)),
        center=(256, 256),
    ),
    Example(
        "rocket_night_handheld",
        "rocket",
        seed=1,
        cfg=replace(
            BASE,
            blur_px=(24.0, 24.0),
            shake=0.6,
            static_camera_p=0.0,
            objects=(0, 0),
            highlight_p=1.0,
            shot_noise=(2e-3, 2e-3),
            read_noise=(4e-3, 4e-3),
        ),
        center=(330, 235),
        scale=1.1,
    ),
    Example(
        "cat_moving_head",
        "chelsea",
        seed=5,
        cfg=replace(
            BASE,
            blur_px=(0.0, 0.0),
            static_camera_p=1.0,
            objects=(1, 1),
            object_px=(22.0, 22.0),
            object_size=(0.85, 0.85),
        ),
        center=(235, 150),
        scale=1.4,
        moving_subject=True,
    ),
    Example(
        "coffee_shake_and_moving_cup",
        "coffee",
        seed=0,
        cfg=replace(
            BASE,
            blur_px=(12.0, 12.0),
            shake=0.5,
            static_camera_p=0.0,
            objects=(1, 1),
            object_px=(22.0, 22.0),
            object_size=(0.75, 0.75),
        ),
        center=(290, 150),
        scale=1.1,
        moving_subject=True,
    ),
]


def load_source(name: str, scale: float) -> torch.Tensor:
    import skimage.data

    a = getattr(skimage.data, name)()
    img = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float() / 255
    if scale != 1.0:
        h, w = img.shape[1:]
        size = (round(h * scale), round(w * scale))
        img = F.interpolate(img[None], size=size, mode="bicubic", align_corners=False, antialias=scale < 1)
        img = img[0].clamp(0, 1)
    return img


def crop_at(img: torch.Tensor, x0: int, y0: int, side: int) -> torch.Tensor:
    """``side x side`` window with top-left (x0, y0), edge-replicated where it leaves the image."""
    _, h, w = img.shape
    pad = (max(0, -x0), max(0, x0 + side - w), max(0, -y0), max(0, y0 + side - h))
    if any(pad):
        img = F.pad(img[None], pad, mode="replicate")[0]
        x0, y0 = x0 + pad[0], y0 + pad[2]
    return img[:, y0 : y0 + side, x0 : x0 + side]


def layer_placement(seed: int, cfg: SynthConfig, region: int) -> tuple[int, int, int]:
    """Dry run: (x, y, side) of the object layer's top-left in output pixels for this seed and config."""
    seen = {}
    real_paste = synth._paste

    def spy(layer, place, size):
        seen["place"], seen["side"] = (int(place[0]), int(place[1])), layer.shape[-1]
        return real_paste(layer, place, size)

    obj = int(cfg.size * cfg.object_size[0]) | 1
    synth._paste = spy
    try:
        g = torch.Generator().manual_seed(seed)
        synthesize(torch.zeros(3, region, region), g, cfg, others=[torch.zeros(3, obj, obj)])
    finally:
        synth._paste = real_paste
    return (*seen["place"], seen["side"])


def _origin(want: float, limit: int) -> int:
    """A window origin as close to ``want`` as the photo allows (``0..limit``)."""
    return round(min(max(want, 0.0), float(limit)))


def render(ex: Example) -> torch.Tensor:
    cfg = ex.cfg
    if cfg.zoom != (1.0, 1.0) or (ex.moving_subject and cfg.object_size[0] != cfg.object_size[1]):
        raise ValueError("examples use no zoom and a fixed object size, so the crops are exact")
    margin = cfg.margin
    region = cfg.size + 2 * margin  # the engine renders exactly this window (no rescale, no offset)
    img = load_source(ex.source, ex.scale)
    _, h, w = img.shape
    if min(h, w) < region:
        raise ValueError(f"{ex.name}: source {w}x{h} is smaller than the {region}px window; raise scale")
    cx, cy = ex.center[0] * ex.scale, ex.center[1] * ex.scale
    others = None
    if ex.moving_subject:
        px, py, obj = layer_placement(ex.seed, cfg, region)
        # put the subject centre under the layer's centre (clamped so the window stays inside the photo)
        want_x, want_y = margin + px + obj / 2, margin + py + obj / 2
        x0, y0 = _origin(cx - want_x, w - region), _origin(cy - want_y, h - region)
        view = crop_at(img, x0, y0, region)
        others = [crop_at(view, margin + px, margin + py, obj)]  # the scene's own pixels under the layer
    else:
        x0, y0 = _origin(cx - region / 2, w - region), _origin(cy - region / 2, h - region)
        view = crop_at(img, x0, y0, region)
    sample = synthesize(view, torch.Generator().manual_seed(ex.seed), cfg, others=others)
    if ex.moving_subject and sample.meta.get("objects") != 1:
        raise RuntimeError("expected one moving layer")
    return sample.blurred


def save_jpeg(x: torch.Tensor, path: Path, quality: int = 92) -> None:
    a = (x.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    Image.fromarray(a).save(path, quality=quality, optimize=True, subsampling=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE, help="output folder (default: this folder)")
    ap.add_argument("--only", nargs="*", help="names of examples to render (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    for ex in EXAMPLES:
        if args.only and ex.name not in args.only:
            continue
        path = args.out / f"{ex.name}.jpg"
        save_jpeg(render(ex), path)
        print(f"{path}  {path.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
