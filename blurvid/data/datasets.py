"""Torch datasets over photo folders and high-frame-rate frame folders.

* :class:`PhotoSynthDataset` — sample ``i`` is synthesised from a random photo with a generator seeded
  by ``(seed, i)``: the same index always gives byte-identical tensors, whatever the worker or order.
* :class:`ClipDataset` — GoPro-style: ``N`` consecutive frames of a clip averaged (linear light) into the
  blurred image, the frames themselves are the targets (no true flows: returned as NaN).
* :class:`MixedDataset` — draws from either with a fixed probability, still index-deterministic.

Items are dicts: ``blurred (3, S, S)``, ``frames (N, 3, S, S)``, ``flows (N, 2, S, S)``, ``center`` (int),
``has_flow`` (bool tensor). With ``center_only=True`` (what deblurring trains on) ``frames`` and ``flows``
hold only the central frame (``N = 1``, ``center`` 0): less to render and to pass between processes, and
the same blurred image and central frame as the full item of that index.

With ``plans=True`` a :class:`PhotoSynthDataset` item is ``{"plan": SynthPlan}`` instead: only the sample's
randomness, drawn on the CPU; :func:`collate` stacks a batch of them and :func:`render_collated` renders
it on the training device (GPU runs are then no longer bound by the CPU's synthesis).
"""

from __future__ import annotations

import contextlib
import glob
import io
import itertools
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, default_collate

from .synth import PlanBatch, SynthConfig, average_frames, center_index, plan, render_batch, synthesize

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
TRAINING = "the training data"  # what a file that cannot be read is to be removed from (``role``)


def list_images(sources: Iterable[str | os.PathLike], *, role: str = TRAINING) -> list[Path]:
    """All image files under the given files/folders (recursive) and patterns (as Windows shells pass
    them), sorted for reproducibility.

    Every file's header is read, so that a file that is no image (or not one Pillow reads) stops the
    run before it starts with ``ValueError`` naming it, not hours into training; the message says to
    remove it from ``role`` (e.g. ``"the evaluation set"``).
    """
    out = _image_files(sources)
    for q in out:
        _check_header(q, role)
    return out


def _image_files(sources: Iterable[str | os.PathLike]) -> list[Path]:
    """:func:`list_images` without the header checks."""
    out: list[Path] = []
    for src in sources:
        p = Path(src)
        if not p.exists() and any(c in str(src) for c in "*?["):  # a pattern (Windows shells pass them)
            pattern = os.path.expanduser(str(src))
            below = Path(
                *itertools.takewhile(lambda part: not any(c in part for c in "*?["), Path(pattern).parts)
            )
            matches = sorted(Path(m) for m in glob.glob(pattern, recursive=True))
            found = _image_files([m for m in matches if m.is_dir()]) + [  # as the shell would: folders too
                m for m in matches if m.is_file() and _training_image(m, below)
            ]
            if not found:
                raise FileNotFoundError(f"{src}: no image matches this pattern")
            out += found
        elif p.is_dir():
            out += sorted(q for q in p.rglob("*") if _training_image(q, p))
        elif p.suffix.lower() in IMAGE_EXTS and p.exists():
            out.append(p)
        elif not p.exists():
            raise FileNotFoundError(f"{p}: no such file or folder")
        else:
            raise FileNotFoundError(f"{p}: not an image file or folder")
    return out


def _training_image(path: Path, below: Path) -> bool:
    """Whether ``path``, found below the folder ``below``, is a training image: an image suffix, not in
    a ``*_mask`` folder, and nothing hidden on the way to it from ``below`` (macOS's ``._IMG.jpg``
    AppleDouble files are no images; a pattern's own ``../`` is no hidden folder)."""
    return (
        path.suffix.lower() in IMAGE_EXTS
        and "_mask" not in path.parent.name
        and not any(part.startswith(".") for part in path.relative_to(below).parts)
    )


def _check_header(path: Path, role: str = TRAINING) -> None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            if min(im.size) < 1:
                raise ValueError("no pixels")
            if im.format == "PNG":
                im.verify()  # chunk checksums: finds a cut-off PNG without decoding it
    except (OSError, ValueError, Image.DecompressionBombError) as e:  # UnidentifiedImageError is an OSError
        raise ValueError(f"{path}: not a readable image ({e}); remove it from {role}") from None


def load_rgb(path: Path, role: str = TRAINING) -> torch.Tensor:
    """Decode an image as a ``(3, H, W)`` uint8 tensor, read as blurvid reads photos
    (:func:`blurvid.io.read_photo`): EXIF orientation applied, greyscale replicated, alpha dropped,
    16 bits rounded to 8 (Pillow's own conversion turned a 16-bit grey photo almost all white).
    ValueError naming the file (to be removed from ``role``) when it cannot be decoded."""
    from PIL import Image

    from ..io import PhotoError, read_photo, to_uint8

    with contextlib.suppress(OSError, Image.DecompressionBombError):  # the common case, 3x faster
        with Image.open(path) as im:  # 8-bit RGB or grey JPEG / PNG / WebP / BMP, upright, one frame
            if (
                im.format in ("JPEG", "PNG", "WEBP", "BMP")
                and im.mode in ("RGB", "L")
                and not any(";16" in str(t.args) for t in im.tile)  # Pillow reads 16-bit RGB as "RGB"
                and im.getexif().get(0x0112, 1) == 1
                and getattr(im, "n_frames", 1) == 1
            ):
                return torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1).contiguous()
    try:
        pixels = read_photo(path).pixels
    except PhotoError as e:  # truncated or corrupt data its header did not show, a decompression bomb
        raise ValueError(f"{path}: cannot decode ({e.reason}); remove it from {role}") from None
    return torch.from_numpy(to_uint8(pixels)).permute(2, 0, 1).contiguous()


class DecodeCache:
    """Decoded images by key, least recently used dropped beyond ``budget`` bytes (per process: each
    data worker holds its own). Training draws the same photos again and again, so decoding each once
    pays; a folder of long clips would not fit in memory, so the cache is bounded."""

    def __init__(self, budget: int = 1 << 30) -> None:
        self.budget, self.size = budget, 0
        self._items: OrderedDict[object, torch.Tensor] = OrderedDict()

    def get(self, key: object, load: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The cached image for ``key``, decoding it with ``load()`` on a miss."""
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        image = load()
        self._items[key] = image
        self.size += image.numel() * image.element_size()
        while self.size > self.budget and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            self.size -= old.numel() * old.element_size()
        return image

    def __len__(self) -> int:
        return len(self._items)


def _seeded(seed: int, index: int, salt: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + index * 7919 + salt * 104_729) % (2**63 - 1))


def jpeg_compress(img: torch.Tensor, quality: int) -> torch.Tensor:
    """Round-trip ``(3, H, W)`` float [0, 1] through an in-memory JPEG at ``quality``."""
    from PIL import Image

    arr = (img.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as im:
        out = np.asarray(im.convert("RGB")).copy()
    return torch.from_numpy(out).permute(2, 0, 1).float() / 255


class PhotoSynthDataset(Dataset):
    """Synthesised blur samples from still photos (see :func:`blurvid.data.synth.synthesize`).

    Photos are decoded lazily and kept in memory (uint8). ``length`` is nominal: any index is valid.
    """

    def __init__(
        self,
        sources: Sequence[str | os.PathLike],
        cfg: SynthConfig,
        *,
        seed: int = 0,
        length: int = 10**9,
        jpeg_p: float = 0.0,
        jpeg_quality: tuple[int, int] = (70, 95),
        center_only: bool = False,
        plans: bool = False,
        role: str = TRAINING,
    ) -> None:
        self.paths = list_images(sources, role=role)
        self.role = role  # what an unreadable photo is to be removed from (its error says)
        if not self.paths:
            raise FileNotFoundError(f"no images found in {list(map(str, sources))}")
        self.cfg, self.seed, self.length = cfg, seed, length
        self.jpeg_p, self.jpeg_quality = jpeg_p, jpeg_quality
        self.center_only, self.plans = center_only, plans
        self._cache = DecodeCache()

    def __len__(self) -> int:
        return self.length

    def _photo(self, k: int) -> torch.Tensor:
        """Photo ``k`` as decoded, uint8 ``(3, H, W)`` (synthesis converts only the window it crops)."""
        return self._cache.get(k, lambda: load_rgb(self.paths[k], self.role))

    def _jpeg_quality(self, g: torch.Generator) -> int:
        """The sample's JPEG quality, drawn with probability ``jpeg_p`` (no draw at 0); 0 = none."""
        if self.jpeg_p > 0 and float(torch.rand((), generator=g)) < self.jpeg_p:
            return int(torch.randint(self.jpeg_quality[0], self.jpeg_quality[1] + 1, (), generator=g))
        return 0

    def __getitem__(self, index: int) -> dict:
        g = _seeded(self.seed, index)
        k = int(torch.randint(len(self.paths), (), generator=g))
        others = [
            self._photo(int(torch.randint(len(self.paths), (), generator=g)))
            for _ in range(self.cfg.objects[1])
        ]
        targets = "center" if self.center_only else "all"
        if self.plans:  # the device draws the noise, so the stream differs from the rendered one's
            pl = plan(self._photo(k), g, self.cfg, others, targets, noise_field=False).compact()
            pl.jpeg = self._jpeg_quality(g)
            return {"plan": pl}
        s = synthesize(self._photo(k), g, self.cfg, others=others, targets=targets)
        quality = self._jpeg_quality(g)
        return {
            "blurred": jpeg_compress(s.blurred, quality) if quality else s.blurred,
            "frames": s.frames,
            "flows": s.flows,
            "center": s.center,
            "has_flow": torch.tensor(True),
        }


def clip_frames(sources: Iterable[str | os.PathLike], *, role: str = TRAINING) -> list[list[Path]]:
    """The clips under ``sources``, each the frames of one folder sorted by name: a folder that holds
    frames is one clip; a folder of clip folders (DAVIS's ``JPEGImages/480p``, say) is one clip per
    subfolder, never one long clip across their scene cuts. A folder reached twice (given twice, under
    another spelling, or inside another source) is one clip, and no frame is in it twice: a clip of
    repeated frames would put windows across its end and start again."""
    clips: dict[Path, dict[Path, Path]] = {}  # folder -> {frame: the path it was first found as}, resolved
    for src in sources:
        for f in list_images([src], role=role):
            clips.setdefault(f.parent.resolve(), {}).setdefault(f.parent.resolve() / f.name, f)
    return [sorted(c.values(), key=lambda f: Path(f.name)) for c in clips.values()]  # as list_images


def clip_parts(files: Sequence[Path], holdout: float) -> tuple[list[Path], list[Path]]:
    """A clip's frames split in time: ``(training part, held-out part)``, the held-out part being the
    last ``holdout`` share of them (rounded to whole frames). Training reads only the first part and
    evaluation with the same ``holdout`` only the second, so its real-motion numbers are out of sample."""
    if not 0 <= holdout < 1:
        raise ValueError(f"clip holdout {holdout!r}: use a share from 0 to under 1")
    cut = len(files) - round(len(files) * holdout)
    return list(files[:cut]), list(files[cut:])


class ClipDataset(Dataset):
    """GoPro-style samples from folders of consecutive video frames (one folder per clip; a folder of
    such folders gives each as a clip).

    Sample: ``frames`` consecutive frames from a random clip and start, a random ``size`` crop (after a
    random zoom within ``zoom`` that keeps the crop inside the frame) and horizontal flip; the blurred
    image is their linear-light average. ``holdout``: the last share of each clip's frames is never
    read (:func:`clip_parts`), for evaluation.
    """

    def __init__(
        self,
        clips: Sequence[str | os.PathLike],
        *,
        frames: int = 9,
        size: int = 256,
        zoom: tuple[float, float] = (0.5, 1.0),
        seed: int = 0,
        length: int = 10**9,
        stride: int = 1,
        center_only: bool = False,
        holdout: float = 0.0,
    ) -> None:
        parts = [clip_parts(c, holdout)[0] for c in clip_frames(clips)]
        self.clips = [c for c in parts if len(c) >= frames * stride]
        if not self.clips:
            raise FileNotFoundError(f"no clip with >= {frames} frames in {list(map(str, clips))}")
        self.frames, self.size, self.zoom, self.seed, self.length, self.stride = (
            frames,
            size,
            zoom,
            seed,
            length,
            stride,
        )
        self.center_only = center_only
        self._cache = DecodeCache()

    def __len__(self) -> int:
        return self.length

    def _frame(self, p: Path) -> torch.Tensor:
        """Clip frame ``p`` as decoded, uint8 ``(3, H, W)``."""
        return self._cache.get(p, lambda: load_rgb(p))

    def __getitem__(self, index: int) -> dict:
        g = _seeded(self.seed, index, salt=1)
        clip = self.clips[int(torch.randint(len(self.clips), (), generator=g))]
        start = int(torch.randint(len(clip) - self.frames * self.stride + 1, (), generator=g))
        seq = (
            torch.stack(
                [self._frame(p) for p in clip[start : start + self.frames * self.stride : self.stride]]
            ).float()
            / 255
        )
        if float(torch.rand((), generator=g)) < 0.5:  # time reversal is equally plausible
            seq = seq.flip(0)
        _, _, h, w = seq.shape
        lo = max(self.zoom[0], self.size / min(h, w))
        s = lo + (max(self.zoom[1], lo) - lo) * float(torch.rand((), generator=g))
        win = min(int(np.ceil(self.size / s)), h, w)
        y0 = int(torch.randint(h - win + 1, (), generator=g))
        x0 = int(torch.randint(w - win + 1, (), generator=g))
        seq = seq[:, :, y0 : y0 + win, x0 : x0 + win]
        if win != self.size:
            seq = F.interpolate(
                seq,
                size=(self.size, self.size),
                mode="bicubic",
                antialias=win > self.size,
                align_corners=False,
            ).clamp(0, 1)
        if float(torch.rand((), generator=g)) < 0.5:
            seq = seq.flip(-1)
        blurred = torch.round(average_frames(seq) * 255) / 255
        c = center_index(self.frames)
        if self.center_only:
            seq, c = seq[c : c + 1], 0
        nan = torch.full((seq.shape[0], 2, self.size, self.size), float("nan"))
        return {"blurred": blurred, "frames": seq, "flows": nan, "center": c, "has_flow": torch.tensor(False)}


CLIP_SHARE = 0.5
"""The share of samples drawn from video clips when both clips and photos are given and no share is
named (`train` and `synth` alike: with none, the clips would never be drawn)."""


class MixedDataset(Dataset):
    """Item ``i`` comes from ``b`` with probability ``p_b`` (decided by a generator seeded by ``i``)."""

    def __init__(self, a: Dataset, b: Dataset | None, p_b: float, seed: int = 0, length: int = 10**9) -> None:
        self.a, self.b, self.p_b, self.seed, self.length = a, b, p_b, seed, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        if (
            self.b is not None
            and float(torch.rand((), generator=_seeded(self.seed, index, salt=2))) < self.p_b
        ):
            return self.b[index]
        return self.a[index]


def fixed_set(dataset: Dataset, count: int, start: int = 0) -> list[dict]:
    """The first ``count`` items from ``start``: a fixed, reproducible validation set."""
    return [dataset[start + i] for i in range(count)]


def collate(items: list[dict]) -> dict:
    """A loader's collate for streams with plans: ``{"plans": PlanBatch}`` for the plan items and
    ``{"rendered": ...}`` (default collation) for the others (e.g. clips), whichever are present."""
    plans = [it["plan"] for it in items if "plan" in it]
    rest = [it for it in items if "plan" not in it]
    out: dict = {}
    if plans:
        out["plans"] = PlanBatch.collate(plans)
    if rest:
        out["rendered"] = default_collate(rest)
    return out


def render_collated(batch: dict, device: torch.device) -> dict[str, torch.Tensor]:
    """A :func:`collate` batch as an ordinary one on ``device``: the plans rendered there, then the
    already rendered items (keys ``blurred``, ``frames``, ``flows``, ``center``, ``has_flow``)."""
    parts = []
    if "plans" in batch:
        r = render_batch(batch["plans"], device)
        n = r["blurred"].shape[0]
        r["center"] = torch.full((n,), r["center"], dtype=torch.long, device=device)
        r["has_flow"] = torch.ones(n, dtype=torch.bool, device=device)
        parts.append(r)
    if "rendered" in batch:
        parts.append({k: v.to(device) for k, v in batch["rendered"].items()})
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
