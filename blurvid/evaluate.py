"""Evaluation: deblurring PSNR/SSIM on pairs (folders, synthesised sets, the Levin layout) and video
metrics (per-frame PSNR, pPSNR, Eq. 6 error, static baselines) on sequences. It reads the evaluation
files, warns about the ones it leaves out, and writes the result JSON (:func:`write_json`); the CLI prints.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import fsutil
from .data.datasets import IMAGE_EXTS, PhotoSynthDataset, clip_frames, list_images
from .data.synth import SynthConfig, center_index
from .metrics import (
    aligned_psnr,
    check_alignable,
    gaussian_blur,
    ordering_invariant_error,
    ppsnr,
    psnr,
    ssim,
    video_psnr,
)

ROLE = "the evaluation set"  # what a file that cannot be read is to be removed from
LEVIN_ALIGN = 8  # px of alignment the Levin protocol allows (its kernels are not centred)


@dataclass
class Pair:
    """A blurred image and its sharp ground truth, ``(3, H, W)`` float in [0, 1]; ``path``: the file the
    blurred image was read from, when it was (errors name it)."""

    name: str
    blurred: torch.Tensor
    sharp: torch.Tensor
    path: Path | None = None


@dataclass
class Sequence_:
    """A blurred image with its ``N`` sharp frames ``(N, 3, H, W)``."""

    name: str
    blurred: torch.Tensor
    frames: torch.Tensor

    @property
    def center(self) -> int:
        return center_index(self.frames.shape[0])

    def center_pair(self) -> Pair:
        """The blurred image with its central sharp frame (the deblurring target)."""
        return Pair(self.name, self.blurred, self.frames[self.center])


def _img(path: Path) -> torch.Tensor:
    """A photo as ``(3, H, W)`` float in [0, 1], read as ``blurvid deblur`` reads it (EXIF orientation
    applied, 16 bits kept); a file that cannot be read raises ValueError naming it."""
    from .io import PhotoError, read_photo

    try:
        return torch.from_numpy(read_photo(path).pixels).permute(2, 0, 1)
    except PhotoError as e:
        raise ValueError(str(e)) from None


_LEVIN = re.compile(r"(im\d+)_kernel\d+_img", re.IGNORECASE)


def _some(names: Sequence[str]) -> str:
    """The first three of ``names``, comma-separated, ``...`` when there are more."""
    return ", ".join(names[:3]) + ("..." if len(names) > 3 else "")


def _claim(found: dict, key: object, path: Path, what: str) -> None:
    """``found[key] = path``; ValueError naming both files when ``key`` is taken (two ``what`` for one
    name: which one to score is not for the evaluation to guess)."""
    if key in found:
        raise ValueError(f"{found[key]} and {path}: two {what} for one name; keep one")
    found[key] = path


def _folder(root: Path) -> None:
    """FileNotFoundError naming ``root`` unless it is a folder."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: {'not a folder' if root.exists() else 'no such folder'}")


def levin_pairs(root: str | Path) -> list[Pair]:
    """Levin et al. layout: ``imX_kernelY_img.png`` blurred with ground truth ``gt/imX.png``, names and
    the ``.png`` suffix in any case (``IM1_Kernel2_img.PNG`` with ``gt/im1.png``), named by the blurred
    file's stem, in file-name order.

    Warns, naming them, about the blurred images it leaves out: those without their ground truth and
    those not in PNG. FileNotFoundError when ``root`` is no folder or holds no pair; ValueError when two
    blurred images or two ground truths differ only in case or when a pair differs in size.
    """
    root = Path(root)
    _folder(root)
    truths: dict[str, Path] = {}
    if (root / "gt").is_dir():
        for g in sorted((root / "gt").iterdir()):
            if g.is_file() and g.suffix.lower() == ".png" and not g.name.startswith("."):
                _claim(truths, g.stem.lower(), g, "ground truths")
    blurred: dict[str, Path] = {}
    not_png = []
    for f in sorted(root.iterdir()):
        if f.is_file() and not f.name.startswith(".") and _LEVIN.fullmatch(f.stem):
            if f.suffix.lower() == ".png":
                _claim(blurred, f.stem.lower(), f, "blurred images")
            else:
                not_png.append(f.name)
    pairs, no_truth = [], []
    for f in blurred.values():
        m = _LEVIN.fullmatch(f.stem)
        gt = truths.get(m.group(1).lower()) if m else None
        if gt is None:
            no_truth.append(f.name)
        else:
            pairs.append(_pair(f.stem, f, gt))
    if no_truth:
        warnings.warn(
            f"{root}: {len(no_truth)} blurred image(s) without their ground truth gt/imX.png left out "
            f"({_some(no_truth)})",
            stacklevel=2,
        )
    if not_png:
        warnings.warn(
            f"{root}: {len(not_png)} blurred image(s) not in PNG left out ({_some(not_png)}); "
            "the Levin layout is imX_kernelY_img.png + gt/imX.png",
            stacklevel=2,
        )
    if not pairs:
        raise FileNotFoundError(f"{root}: no Levin-layout pairs (imX_kernelY_img.png + gt/imX.png)")
    return pairs


def folder_pairs(root: str | Path) -> list[Pair]:
    """``root/blurred/NAME`` with ``root/sharp/NAME`` (paired by the path below each, without the
    suffix), or a `blurvid synth` set (blurred vs central frame).

    ValueError for two targets or two blurred images of one name (``a.png`` and ``a.bmp``) and for a
    pair that differs in size; FileNotFoundError when ``root`` is no folder or nothing pairs up. Warns,
    naming them, about what it leaves out: blurred images without a target, blurred files of a type it
    does not read that have one, and targets without a blurred image.
    """
    root = Path(root)
    _folder(root)
    if not (root / "blurred").is_dir():
        try:
            sequences = folder_sequences(root)
        except FileNotFoundError:  # neither layout: say both
            raise FileNotFoundError(
                f"{root}: no pairs (expected blurred/ and sharp/ folders of images with the same names, or a "
                "`blurvid synth` set: <sample>/blurred.png and <sample>/frames/)"
            ) from None
        return [s.center_pair() for s in sequences]
    b_dir, s_dir = root / "blurred", root / "sharp"
    if not s_dir.is_dir():
        raise FileNotFoundError(f"{root}: has blurred/ but no sharp/ folder of targets")
    targets: dict[Path, Path] = {}  # the path below sharp/ without its suffix -> the file
    for g in list_images([s_dir], role=ROLE):
        _claim(targets, g.relative_to(s_dir).with_suffix(""), g, "targets")
    sources: dict[Path, Path] = {}  # the same for blurred/
    for f in list_images([b_dir], role=ROLE):
        _claim(sources, f.relative_to(b_dir).with_suffix(""), f, "blurred images")
    if not sources:
        raise FileNotFoundError(f"{b_dir}: holds no images")
    pairs, unmatched = [], []
    for key, f in sources.items():
        gt = targets.get(key)
        if gt is None:
            unmatched.append(f.relative_to(b_dir).as_posix())
        else:
            pairs.append(_pair(key.as_posix(), f, gt))
    if not pairs:
        raise FileNotFoundError(
            f"{root}: no pairs (blurred/NAME.* with sharp/NAME.*): none of {_some(unmatched)} has a target"
        )
    left_out = {
        "blurred image(s) without a target": unmatched,
        f"blurred file(s) of a type not read ({' '.join(IMAGE_EXTS)}) with a target": [
            q.relative_to(b_dir).as_posix()
            for q in _other_files(b_dir)
            if q.relative_to(b_dir).with_suffix("") in targets
        ],
        "target(s) without a blurred image": [
            g.relative_to(s_dir).as_posix() for k, g in targets.items() if k not in sources
        ],
    }
    for what, names in left_out.items():
        if names:
            warnings.warn(f"{root}: {len(names)} {what} left out ({_some(names)})", stacklevel=2)
    return pairs


def _other_files(folder: Path) -> list[Path]:
    """The files below ``folder`` without an image suffix, none hidden on the way (sorted)."""
    return [
        q
        for q in sorted(folder.rglob("*"))
        if q.suffix.lower() not in IMAGE_EXTS
        and not any(part.startswith(".") for part in q.relative_to(folder).parts)
        and q.is_file()
    ]


def _size(image: torch.Tensor) -> str:
    """``'WxH'`` of a ``(C, H, W)`` image."""
    return f"{image.shape[-1]}x{image.shape[-2]}"


def _same_size(path_a: Path, a: torch.Tensor, path_b: Path, b: torch.Tensor, what: str) -> None:
    """ValueError naming both files when images ``a`` and ``b`` (read from them) differ in size."""
    if a.shape != b.shape:
        raise ValueError(f"{path_a} is {_size(a)} but {path_b} is {_size(b)}: {what} must match in size")


def _pair(name: str, blurred: Path, sharp: Path) -> Pair:
    """The pair read from two files; ValueError naming both when their sizes differ."""
    pair = Pair(name, _img(blurred), _img(sharp), blurred)
    _same_size(blurred, pair.blurred, sharp, pair.sharp, "a pair")
    return pair


def folder_sequences(root: str | Path) -> list[Sequence_]:
    """A `blurvid synth` set: ``root/<sample>/blurred.png`` and ``root/<sample>/frames/*.png``.
    FileNotFoundError when ``root`` is no folder or holds no sample; ValueError naming the files when a
    sample's images differ in size or one cannot be read."""
    _folder(Path(root))
    out = []
    # not hidden folders: a killed `blurvid synth` leaves its half-written sample as .sample_NNNNN.tmp
    samples = (p for p in Path(root).iterdir() if p.is_dir() and not p.name.startswith("."))
    for d in sorted(p for p in samples if (p / "blurred.png").exists()):
        files = list_images([d / "frames"], role=ROLE)
        if not files:
            raise ValueError(f"{d / 'frames'}: holds no frames")
        blurred = _img(d / "blurred.png")
        images = [_img(f) for f in files]
        for f, image in zip(files, images, strict=True):
            _same_size(d / "blurred.png", blurred, f, image, "a sample's images")
        out.append(Sequence_(d.name, blurred, torch.stack(images)))
    if not out:
        raise FileNotFoundError(f"{root}: no samples (expected <sample>/blurred.png and <sample>/frames/)")
    _warn_if_incomplete(Path(root), len(out))
    return out


# what `blurvid synth` records beside its samples: {"count": asked for, "seed": …, "complete": bool}
SYNTH_RECORD = "synth.json"


def _warn_if_incomplete(root: Path, found: int) -> None:
    """Warn when ``root``'s :data:`SYNTH_RECORD` says its run was asked for another number of samples
    than the ``found`` ones, or did not finish (a stopped ``blurvid synth``); silent without a record."""
    try:
        rec = json.loads((root / SYNTH_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(rec, dict) or not isinstance(rec.get("count"), int):
        return
    if rec["count"] != found or rec.get("complete") is False:
        warnings.warn(
            f"{root}: holds {found} of the {rec['count']} samples its `blurvid synth` run was asked for"
            f"{'' if rec.get('complete') is not False else ' (the run stopped before the end)'}",
            stacklevel=3,
        )


def synthetic_sequences(
    photos: Sequence[str | Path], cfg: SynthConfig, count: int, seed: int
) -> list[Sequence_]:
    """``count`` fixed synthesised samples from ``photos`` (the validation protocol)."""
    ds = PhotoSynthDataset(list(photos), cfg, seed=seed, role=ROLE)
    return [Sequence_(f"synth_{i:04d}", (it := ds[i])["blurred"], it["frames"]) for i in range(count)]


def clip_sequences(
    clips: Iterable[str | Path], frames: int = 9, stride: int | None = None, holdout: float = 0.0
) -> list[Sequence_]:
    """GoPro-style sequences from frame folders: windows of ``frames`` consecutive frames (every
    ``stride``, default ``frames``), blurred = their linear-light average (8-bit quantised); with
    ``holdout``, only from the last share of each clip's frames, which training with the same
    ``clip_holdout`` never reads (:func:`blurvid.data.datasets.clip_parts`). A clip folder given twice
    is one clip (:func:`blurvid.data.datasets.clip_frames`). Raises ``ValueError`` when no clip (part)
    has ``frames`` frames, and naming two files when a window's frames differ in size."""
    from .data.datasets import clip_parts
    from .data.synth import average_frames

    out = []
    for whole in clip_frames(clips, role=ROLE):
        files = clip_parts(whole, holdout)[1] if holdout else whole
        first = len(whole) - len(files)  # windows are named by their first frame's place in the clip
        step = stride or frames
        for s in range(0, len(files) - frames + 1, step):
            window = files[s : s + frames]
            images = [_img(f) for f in window]
            for f, image in zip(window[1:], images[1:], strict=True):
                _same_size(window[0], images[0], f, image, "a clip's frames")
            seq = torch.stack(images)
            blurred = torch.round(average_frames(seq) * 255) / 255
            out.append(Sequence_(f"{files[0].parent.name}_{first + s:04d}", blurred, seq))
    if not out:
        part = f" in its last {holdout:g} share" if holdout else ""
        raise ValueError(f"no clip with >= {frames} frames{part} in {', '.join(map(str, clips))}")
    return out


def eval_synth_config(
    task: str = "deblur", *, size: int = 256, frames: int = 9, target: str = "time", noise: bool = True
) -> SynthConfig:
    """The synthesis of the fixed synthetic evaluation sets (``blurvid eval``): no flips, the defaults'
    static-camera share for ``deblur`` (none for the video tasks), sensor noise on every sample or none."""
    return SynthConfig(
        frames=frames,
        size=size,
        hflip=False,
        static_camera_p=SynthConfig.static_camera_p if task == "deblur" else 0.0,
        center=target if task == "deblur" else "time",
        noise_p=1.0 if noise else 0.0,
    )


def deblur_sets(
    *,
    levin: str | Path | None = None,
    folder: str | Path | None = None,
    synth: Sequence[str | Path] = (),
    synth_cfg: SynthConfig | None = None,
    count: int = 24,
    seed: int = 1234,
    clips: Sequence[str | Path] = (),
    frames: int = 9,
    clip_holdout: float = 0.0,
) -> dict[str, tuple[list[Pair], int]]:
    """The deblurring evaluation sets that are asked for, by name: ``{name: (pairs, align px)}``.

    ``levin``: the real camera-shake set, scored with up to 8 px alignment (ValueError naming an image
    too small for it); ``folder``: blurred/sharp pairs (named by the path); ``synth``: ``count`` samples
    of ``synth_cfg`` (seeded) with the central frame as target; ``clips``: GoPro-style averages of
    ``frames`` video frames against the centre frame (with ``clip_holdout``, from the last share of each
    clip only: see :func:`clip_sequences`). Names are ``levin``, the folder's path, ``synthetic`` and
    ``clips``, in that order; a name taken already gets `` (2)``, `` (3)``... (:func:`unique_name`), so
    no set replaces another.
    """
    sets: dict[str, tuple[list[Pair], int]] = {}

    def add(name: str, pairs: list[Pair], align: int) -> None:
        check_alignment(pairs, align)
        sets[unique_name(name, sets)] = (pairs, align)

    if levin:
        add("levin", levin_pairs(levin), LEVIN_ALIGN)
    if folder:
        add(str(folder), folder_pairs(folder), 0)
    if synth:
        seqs = synthetic_sequences(synth, synth_cfg or SynthConfig(), count, seed)
        add("synthetic", [s.center_pair() for s in seqs], 0)
    if clips:
        add("clips", [s.center_pair() for s in clip_sequences(clips, frames, holdout=clip_holdout)], 0)
    return sets


def unique_name(name: str, taken: Iterable[str]) -> str:
    """``name``, or when ``taken`` holds it, the first of ``'name (2)'``, ``'name (3)'``... it does not."""
    taken = set(taken)
    unique, k = name, 1
    while unique in taken:
        k += 1
        unique = f"{name} ({k})"
    return unique


def check_alignment(pairs: Iterable[Pair], align: int) -> None:
    """ValueError naming the first pair (its file, else its name) too small to be scored with shifts of
    up to ``align`` px (:func:`blurvid.metrics.check_alignable`); nothing to check at ``align`` 0."""
    if align <= 0:
        return
    for p in pairs:
        try:
            check_alignable(p.sharp.shape[-2], p.sharp.shape[-1], align)
        except ValueError as e:
            raise ValueError(f"{p.path or p.name}: {e}") from None


def _is_grey(image: torch.Tensor) -> bool:
    """``(1, 3, H, W)``: all three channels equal."""
    return torch.equal(image[:, 0], image[:, 1]) and torch.equal(image[:, 0], image[:, 2])


def eval_deblur(
    fn: Callable[[torch.Tensor], torch.Tensor],
    pairs: Sequence[Pair],
    grey_if_grey: bool = True,
    align: int = 0,
) -> dict:
    """PSNR / SSIM of ``fn(blurred (1,3,H,W)) -> (1,3,H,W)`` against the sharp images, and of the inputs.

    Greyscale pairs (all channels equal) are scored on one channel. ``align > 0`` adds
    ``psnr_aligned`` / ``psnr_in_aligned``: the best PSNR over integer shifts up to ``align`` px (the
    Levin protocol; its kernels are not centred): ValueError naming a pair too small for it, before
    anything is scored. A warning ``fn`` gives is logged once per pair, naming its file.
    """
    from .io import file_warnings

    check_alignment(pairs, align)
    rows = []
    for p in pairs:
        x, t = p.blurred[None], p.sharp[None]
        with file_warnings(p.path or Path(p.name)):  # one line per photo (`--shake`: left as it was)
            y = fn(x).float().clamp(0, 1).cpu()
        if grey_if_grey and _is_grey(x) and _is_grey(t):
            y, x, t = y.mean(1, keepdim=True), x[:, :1], t[:, :1]
        row = {
            "name": p.name,
            "psnr": float(psnr(y, t)),
            "ssim": float(ssim(y, t)),
            "psnr_in": float(psnr(x, t)),
            "ssim_in": float(ssim(x, t)),
        }
        if align > 0:
            row["psnr_aligned"] = float(aligned_psnr(y, t, align))
            row["psnr_in_aligned"] = float(aligned_psnr(x, t, align))
        rows.append(row)
    return _summary(rows)


def eval_video(
    run: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor],
    seqs: Sequence[Sequence_],
    center_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    frames: int | None = None,
    inputs: str = "blurred",
) -> dict:
    """Video metrics for ``run(x, centre (1,3,H,W), N) -> (1, N, 3, H, W)``, where ``x`` is the blurred
    image ``(1,3,H,W)``, or with ``inputs='frames'`` the ground-truth frames ``(1,N,3,H,W)`` (stage 1, the
    autoencoder).

    The centre is the ground-truth central frame, or ``center_fn(blurred)`` (e.g. the DM: end to end).
    Static baseline: every frame = that same centre. ``frames`` scores that many frames against the
    ground-truth frames at the same moments (:func:`out_frame_index`; to test N other than the
    training N).
    """
    rows = []
    for s in seqs:
        tgt = s.frames
        if frames is not None and frames != tgt.shape[0]:
            tgt = tgt[out_frame_index(tgt.shape[0], frames, inputs)]
        tgt = tgt[None]
        n = tgt.shape[1]
        center = (
            center_fn(s.blurred[None]).float().clamp(0, 1).cpu() if center_fn else s.frames[s.center][None]
        )
        x = tgt if inputs == "frames" else s.blurred[None]
        pred = run(x, center, n).float().clamp(0, 1).cpu()
        still = center[:, None].expand_as(tgt)
        rows.append(
            {
                "name": s.name,
                "psnr": float(video_psnr(pred, tgt)),
                "ppsnr": float(ppsnr(pred, tgt)),
                "oie": float(ordering_invariant_error(pred, tgt)),
                "static_psnr": float(video_psnr(still, tgt)),
                "static_oie": float(ordering_invariant_error(still, tgt)),
            }
        )
    return _summary(rows)


def out_frame_index(n: int, out: int, inputs: str = "blurred") -> torch.Tensor:
    """Which of ``n`` ground-truth frames ``out`` predicted frames are scored against.

    From a blurred photo, the frames sit at the centres of ``out`` equal slices of the exposure, as the
    ``n`` true frames sit at the centres of ``n`` (:func:`blurvid.models.warp.resample_in_time`): they
    line up only when ``out`` divides ``n`` an odd number of times (9 -> 3: frames 1, 4, 7), and any
    other ``out`` is a ValueError (frames 0, 4, 8 were taken: a perfect prediction scored 17.8 dB).
    ``inputs='frames'`` (the autoencoder reads the frames it is scored on): ``out`` evenly spread.
    """
    if inputs == "frames":
        return torch.linspace(0, n - 1, out).round().long()
    t = (torch.arange(out, dtype=torch.float64) + 0.5) * n / out - 0.5
    if not torch.equal(t, t.round()):
        fits = [k for k in range(2, n + 1) if n % k == 0 and (n // k) % 2 == 1]
        raise ValueError(
            f"{out} frames fall between the {n} true frames of each sequence, so they cannot be scored; "
            f"use {' or '.join(map(str, fits)) or n}"
        )
    return t.round().long()


def static_blur_baseline(
    seqs: Sequence[Sequence_],
    sigmas: Sequence[float] = (0.5, 1.0, 1.5, 2.0, 3.0),
    frames: int | None = None,
    inputs: str = "blurred",
) -> dict:
    """Best 'blurred static' baseline: every frame = the central frame Gaussian-blurred (best sigma),
    scored against the ground-truth frames :func:`eval_video` scores with the same ``frames``."""
    best = {"sigma": 0.0, "psnr": -1.0}
    for sigma in sigmas:
        vals = []
        for s in seqs:
            c = gaussian_blur(s.frames[s.center][None], sigma)
            tgt = s.frames
            if frames is not None and frames != tgt.shape[0]:
                tgt = tgt[out_frame_index(tgt.shape[0], frames, inputs)]
            vals.append(float(video_psnr(c[:, None].expand(1, *tgt.shape), tgt[None])))
        m = float(np.mean(vals))
        if m > best["psnr"]:
            best = {"sigma": sigma, "psnr": m}
    return best


def _summary(rows: list[dict]) -> dict:
    keys = [k for k in rows[0] if k != "name"] if rows else []
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    return {"count": len(rows), "mean": mean, "items": rows}


def _strict(value: object) -> object:
    """``value`` with every float that is NaN or infinite, at any depth, replaced by None."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    return value


def write_json(result: dict, path: str | Path) -> None:
    """Write a result dict as pretty, strict JSON (atomic): a NaN or infinite number, which JSON has
    not, is written as ``null``."""
    text = json.dumps(_strict(result), indent=2, allow_nan=False)
    with fsutil.atomic_path(path) as tmp:
        tmp.write_text(text)
