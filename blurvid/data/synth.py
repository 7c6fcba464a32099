"""Motion-blur synthesis: a blurred photo, its N sharp frames and their true displacement fields.

Stand-in for the paper's GoPro data (240 fps video, blur = average of 9 consecutive frames). A sample is
rendered from a sharp still image as ``N * K`` sub-frames along

* a smooth random camera trajectory: translation, in-plane rotation, zoom and hand-shake jitter (or, for
  a ``tremor_p`` share of samples, a folding hand-tremor translation path, see :func:`tremor_path`), and
* ``0..k`` foreground layers (soft-masked regions cut from other photos), each on its own trajectory.

Sub-frames are averaged in linear light (or, for a random share of samples, in display gamma), highlights
are boosted then clipped as a saturating sensor would, and shot/read noise (and optionally JPEG, see
:mod:`blurvid.data.datasets`) is applied to the blurred image only. The N targets are the middle sub-frame
of each of N equal time slots; the central target is the deblurring target and is an exact (unresampled)
crop of the source. Each target's displacement field relative to the central frame is returned in the
:func:`blurvid.models.warp.warp` convention: ``frame_n(p) ~= central(p + flow_n(p))``.

A sample is made in two steps: :func:`plan` draws all of its randomness on the CPU from a
``torch.Generator`` (source windows, matrices, the exposure's choices: cheap), and :func:`render_batch`
turns a batch of plans into pixels with plain torch on any device. :func:`synthesize` does both for one
sample on the CPU, deterministic for a given generator.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..config import Config

MAX_PATH_PX = 1024  # the longest camera or object path a sample may ask for (its margin costs memory)


@dataclass
class SynthConfig(Config):
    """Settings of :func:`synthesize` (saved in training configs)."""

    frames: int = 9  # N sharp target frames
    subframes: int = 5  # K rendered sub-frames per target (continuous blur, no ghosting)
    size: int = 256  # output crop side (px)
    zoom: tuple[float, float] = (0.2, 2.0)  # source rescale range (paper's augmentation)
    hflip: bool = True
    blur_px: tuple[float, float] = (2.0, 30.0)  # camera path length range at output scale (px)
    rotation_deg: float = 2.0  # max in-plane rotation over the exposure
    zoom_motion: float = 0.03  # max relative zoom change over the exposure
    shake: float = 0.35  # share of the path made of hand-shake jitter (0 = smooth)
    # probability that a moving camera follows a hand-tremor path instead (see tremor_path): it folds back
    # on itself and dwells at reversals like measured camera-shake kernels (e.g. Levin et al.'s)
    tremor_p: float = 0.0
    tremor_px: tuple[float, float] = (16.0, 64.0)  # tremor path length range (px)
    static_camera_p: float = 0.25  # probability that the camera does not move (object motion only)
    objects: tuple[int, int] = (0, 2)  # number of independently moving foreground layers
    object_px: tuple[float, float] = (4.0, 36.0)  # object path length range (px)
    object_size: tuple[float, float] = (0.2, 0.55)  # object side as a share of the crop
    gamma_average_p: float = 0.3  # probability of averaging in display gamma instead of linear light
    highlight_p: float = 0.25  # probability of boosting highlights before the sensor clips
    shot_noise: tuple[float, float] = (0.0, 4e-3)  # variance per unit of linear signal
    read_noise: tuple[float, float] = (0.0, 6e-3)  # std in linear light
    # probability that a sample gets sensor noise at all; below 1, the rest are clean like low-ISO
    # photos (real photos and the Levin set measure ~0.5/255 noise, these ranges ~4/255)
    noise_p: float = 1.0
    # probability of a black-and-white sample: blurred image and targets become their luma (Rec. 601, as
    # a camera's or editor's monochrome conversion after capture; e.g. the Levin set is grey)
    grey_p: float = 0.0
    quantize: bool = True  # round the blurred image to 8 bits like a camera file
    # the central target's pose: 'time' = the scene at the central instant (the paper's video frame);
    # 'mean' = every layer at its time-averaged pose, the sharp image the blur is centred on (a well-posed
    # deblurring target: curved or uneven paths leave no doubt where the sharp photo should sit)
    center: str = "time"
    # blur_px / object_px are the path's length over the exposure (True). False, as before session 28:
    # measured over the exposure and back to its central instant, which leaves trails ~0.69 of the stated
    # length (a 32 px straight path spans 21 px); the fixed validation protocols and the shipped
    # checkpoints' training configs keep it. A number in 0..1 mixes the two conventions: the probability
    # that a path (camera or object, drawn per path) is measured over the exposure
    exposure_length: bool | float = False

    def __post_init__(self) -> None:
        for name in ("blur_px", "tremor_px", "object_px"):
            lo, hi = (float(v) for v in getattr(self, name))
            if not 0 <= lo <= hi <= MAX_PATH_PX:  # also NaN
                raise ValueError(
                    f"{name} {lo:g} to {hi:g}: path lengths lie in 0..{MAX_PATH_PX} px, low to high"
                )
        share = self.exposure_length
        if not isinstance(share, (bool, int, float)) or not 0 <= share <= 1:  # also NaN
            raise ValueError(f"exposure_length {share!r}: use true, false or a probability from 0 to 1")

    @property
    def margin(self) -> int:
        """Source pixels needed around the crop so that no sub-frame samples outside the source."""
        rot = math.radians(self.rotation_deg) * self.size * 0.75 + self.zoom_motion * self.size * 0.75
        longest = max(self.blur_px[1], self.tremor_px[1] if self.tremor_p > 0 else 0.0)
        # a path of exposure length L strays up to L from the reference pose (measured: 0.79 L); as the
        # length was measured before, with the return to the central instant, within 0.6 L
        return math.ceil(longest * (1.0 if self.exposure_length else 0.6) + rot + 4)


@dataclass
class Sample:
    """One synthesised training sample (all CPU float32 tensors, sRGB in [0, 1])."""

    blurred: torch.Tensor  # (3, S, S)
    frames: torch.Tensor  # (N, 3, S, S)
    flows: torch.Tensor  # (N, 2, S, S) displacement of each frame relative to the central one (px)
    center: int  # index of the central frame
    meta: dict = field(default_factory=dict)


# ---------------------------------------------------------------- colour ---------------------------------
def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """Inverse sRGB transfer function (IEC 61966-2-1), elementwise on values in [0, 1]."""
    # in place on one temporary: the same arithmetic as the formula, with fewer passes over memory
    curve = x.clamp(min=0).add_(0.055).div_(1.055).pow_(2.4)
    return torch.where(x <= 0.04045, x / 12.92, curve)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """sRGB transfer function, elementwise; negative inputs map linearly, values above 1 are kept."""
    curve = x.clamp(min=0.0031308).pow_(1 / 2.4).mul_(1.055).sub_(0.055)
    return torch.where(x <= 0.0031308, x * 12.92, curve)


LUMA_601 = (0.299, 0.587, 0.114)


def to_grey(x: torch.Tensor) -> torch.Tensor:
    """Monochrome ``(..., 3, H, W)`` -> ``(..., 3, H, W)`` with three equal channels: Rec. 601 luma of
    the sRGB values (what PIL's ``convert("L")`` computes, before rounding)."""
    w = x.new_tensor(LUMA_601).view(3, 1, 1)
    return (x * w).sum(-3, keepdim=True).expand_as(x).contiguous()


def center_index(n: int) -> int:
    """The paper's central frame ``x_ceil(N/2)`` as a 0-based index: ``(n - 1) // 2``."""
    return (n - 1) // 2


# ---------------------------------------------------------------- geometry -------------------------------
def _uniform(g: torch.Generator, lo: float, hi: float, size: tuple[int, ...] = ()) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(size, generator=g, dtype=torch.float64)


def _arc_length(path: torch.Tensor) -> torch.Tensor:
    """Length of the polyline ``path: (T, 2)`` (at least 1e-9, so it can divide)."""
    return (path[1:] - path[:-1]).norm(dim=1).sum().clamp(min=1e-9)


def random_path(
    g: torch.Generator, times: torch.Tensor, length: float, shake: float, span: int | None = None
) -> torch.Tensor:
    """A random smooth 2-D path ``(T, 2)`` over ``times`` in [0, 1] with arc length ~``length`` px
    through its first ``span`` points (None: all of them; the renderer appends the central instant to
    the exposure's times, and measured with it, the exposure's own path came out ~0.69 as long).

    A random cubic (smooth, possibly curved or accelerating motion) plus ``shake`` share of
    hand-shake jitter (a few sinusoids of 1-4 cycles per exposure). The path passes through 0 at t=0.
    """
    t = times.to(torch.float64)
    coef = torch.randn(3, 2, generator=g, dtype=torch.float64) * torch.tensor(
        [[1.0], [0.6], [0.3]], dtype=torch.float64
    )
    smooth = t[:, None] * coef[0] + t[:, None] ** 2 * coef[1] + t[:, None] ** 3 * coef[2]
    jitter = torch.zeros_like(smooth)
    for _ in range(3):
        freq = _uniform(g, 1.0, 4.0)
        phase = _uniform(g, 0, 2 * math.pi, (2,))
        amp = torch.randn(2, generator=g, dtype=torch.float64)
        jitter += amp * (torch.sin(2 * math.pi * freq * t[:, None] + phase) - torch.sin(phase))

    path = (1 - shake) * smooth / _arc_length(smooth) + shake * jitter / _arc_length(jitter)
    return path * (length / _arc_length(path[:span]))


def tremor_path(g: torch.Generator, times: torch.Tensor, length: float, steps: int = 256) -> torch.Tensor:
    """A random hand-tremor path ``(T, 2)`` over ``times`` in [0, 1] with arc length ~``length`` px.

    A noise-driven damped oscillator (0.3-2 cycles per exposure, damping ratio 0.05-0.5) plus a random
    drift, integrated on ``steps`` intervals and sampled linearly at ``times``. Unlike
    :func:`random_path` it folds back on itself and slows down at reversals, so its kernels are compact
    (extent ~1/3 of the length) with bright dwell points, as measured camera-shake kernels are.
    """
    dt = 1.0 / steps
    w = 2 * math.pi * float(_uniform(g, 0.3, 2.0))
    zeta = float(_uniform(g, 0.05, 0.5))
    drift = torch.randn(2, generator=g, dtype=torch.float64) * float(_uniform(g, 0, 1)) * w
    force = torch.randn(steps, 2, generator=g, dtype=torch.float64) * (0.3 * w * w / math.sqrt(dt))
    v = torch.randn(2, generator=g, dtype=torch.float64) * w
    x = torch.zeros(2, dtype=torch.float64)
    points = [x]
    for i in range(steps):  # semi-implicit Euler: stable for these stiffnesses at this step
        v = v + dt * (force[i] - w * w * x - 2 * zeta * w * v)
        x = x + dt * (v + drift)
        points.append(x)
    path = torch.stack(points)  # (steps + 1, 2)
    path = path * (length / _arc_length(path))
    pos = (times.to(torch.float64).clamp(0, 1) * steps).clamp(max=steps - 1e-9)
    i0 = pos.floor().long()
    a = (pos - i0)[:, None]
    return path[i0] * (1 - a) + path[i0 + 1] * a


def _affine(tx: torch.Tensor, ty: torch.Tensor, rot: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Batch of 3x3 matrices ``T(tx, ty) @ R(rot) @ S(scale)``; all inputs ``(T,)`` float64."""
    c, s = torch.cos(rot) * scale, torch.sin(rot) * scale
    m = torch.zeros(tx.shape[0], 3, 3, dtype=torch.float64)
    m[:, 0, 0], m[:, 0, 1], m[:, 0, 2] = c, -s, tx
    m[:, 1, 0], m[:, 1, 1], m[:, 1, 2] = s, c, ty
    m[:, 2, 2] = 1
    return m


def _translate(x: float, y: float) -> torch.Tensor:
    m = torch.eye(3, dtype=torch.float64)
    m[0, 2], m[1, 2] = x, y
    return m


def _pixel_grid(size: int) -> torch.Tensor:
    """Homogeneous pixel coordinates ``(3, S*S)`` (x, y, 1), row-major."""
    ys, xs = torch.meshgrid(
        torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64), indexing="ij"
    )
    return torch.stack([xs.flatten(), ys.flatten(), torch.ones(size * size, dtype=torch.float64)])


def _normalizer(side_h: int, side_w: int) -> torch.Tensor:
    """Pixel index -> [-1, 1] (align_corners=True) as a 3x3 float64 matrix."""
    m = torch.eye(3, dtype=torch.float64)
    m[0, 0], m[0, 2] = 2 / max(side_w - 1, 1), -1
    m[1, 1], m[1, 2] = 2 / max(side_h - 1, 1), -1
    return m


@functools.lru_cache(maxsize=8)
def _base_grid(size: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Normalised homogeneous output coordinates ``(1, S*S, 3)`` (x, y, 1), row-major, align_corners=True:
    what :func:`torch.nn.functional.affine_grid` multiplies by theta (shared: never modify it)."""
    axis = torch.linspace(-1, 1, size, dtype=dtype)
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xs, ys, torch.ones_like(xs)], -1).view(1, size * size, 3).to(device)


def sample_affine(src: torch.Tensor, mats: torch.Tensor, size: int, mode: str = "bilinear") -> torch.Tensor:
    """Render ``src: (C, Hs, Ws)`` through pixel-space matrices ``mats: (T, 3, 3)`` -> ``(T, C, size, size)``,
    or a batch: ``src: (B, C, Hs, Ws)``, ``mats: (B, T, 3, 3)`` -> ``(B, T, C, size, size)``.

    Output pixel ``p`` takes ``src`` at ``mats @ p`` (pixel indices), border-replicated outside. ``mats``
    may stay on the CPU (float64) while ``src`` is on another device.
    """
    batched = src.dim() == 4
    if not batched:
        src, mats = src[None], mats[None]
    b, ch, hs, ws = src.shape
    t = mats.shape[1]
    theta = _normalizer(hs, ws) @ mats.cpu() @ torch.linalg.inv(_normalizer(size, size))  # (B, T, 3, 3)
    # affine_grid's arithmetic as one batched matmul on a cached base grid (~4x faster on a CPU core)
    base = _base_grid(size, src.dtype, src.device)
    theta = theta[..., :2, :].to(src.dtype).transpose(-1, -2).to(src.device)  # (B, T, 3, 2)
    grid = torch.matmul(base, theta)  # (B, T, S*S, 2)
    if b == 1:  # one source: sampled T times as a view, straight into (T, C, S, S)
        out = F.grid_sample(
            src.expand(t, ch, hs, ws),
            grid[0].view(t, size, size, 2),
            mode=mode,
            padding_mode="border",
            align_corners=True,
        )[None]
    else:  # the T grids stacked along the height, then (B, C, T, S, S) -> (B, T, C, S, S)
        out = F.grid_sample(
            src, grid.view(b, t * size, size, 2), mode=mode, padding_mode="border", align_corners=True
        )
        out = out.view(b, ch, t, size, size).transpose(1, 2).contiguous()
    return out if batched else out[0]


def _flows(frame_mats: torch.Tensor, center_mat: torch.Tensor, size: int) -> torch.Tensor:
    """Displacements ``(N, 2, S, S)``: ``center_mat^-1 @ frame_mats @ p - p`` for every pixel p."""
    grid = _pixel_grid(size)
    moved = (torch.linalg.inv(center_mat) @ frame_mats @ grid)[:, :2]
    return (moved - grid[:2]).view(-1, 2, size, size).float()


def soft_mask(g: torch.Generator, size: int) -> torch.Tensor:
    """A random soft blob ``(1, size, size)`` in [0, 1]: a rotated super-ellipse with a feathered edge."""
    ys, xs = torch.meshgrid(
        torch.linspace(-1, 1, size, dtype=torch.float64),
        torch.linspace(-1, 1, size, dtype=torch.float64),
        indexing="ij",
    )
    ang = _uniform(g, 0, math.pi)
    u = xs * torch.cos(ang) + ys * torch.sin(ang)
    v = -xs * torch.sin(ang) + ys * torch.cos(ang)
    ax, ay = _uniform(g, 0.55, 0.95), _uniform(g, 0.55, 0.95)
    p = _uniform(g, 1.5, 4.0)
    # angular wobble makes the outline organic rather than geometric
    theta = torch.atan2(v, u)
    wobble = (
        1
        + 0.12 * torch.sin(3 * theta + _uniform(g, 0, 6.3))
        + 0.06 * torch.sin(5 * theta + _uniform(g, 0, 6.3))
    )
    r = ((u.abs() / ax) ** p + (v.abs() / ay) ** p) ** (1 / p) / wobble
    feather = _uniform(g, 0.02, 0.12)
    mask = ((1 - r) / feather).clamp(0, 1).float()
    mask[:2], mask[-2:], mask[:, :2], mask[:, -2:] = 0, 0, 0, 0  # border sampling must replicate zeros
    return mask.unsqueeze(0)


# ---------------------------------------------------------------- rendering ------------------------------
def _reference(values: torch.Tensor, center: str) -> torch.Tensor:
    """The pose values are measured from: the last row (the central time) or the mean of the others."""
    return values[-1] if center == "time" else values[:-1].mean(0)


def _exposure_span(g: torch.Generator, cfg: SynthConfig, steps: int) -> int | None:
    """``random_path``'s ``span`` for one path: ``steps`` (its length measured over the exposure) with
    probability ``cfg.exposure_length``, else None. Draws only for a share strictly between 0 and 1, so
    the streams of ``True`` / ``False`` configs are unchanged."""
    share = float(cfg.exposure_length)
    if 0 < share < 1:
        return steps if float(torch.rand((), generator=g)) < share else None
    return steps if share else None


def _camera_mats(
    g: torch.Generator, cfg: SynthConfig, times: torch.Tensor, t_c: float, size: int, region: int
) -> torch.Tensor:
    """Camera matrices output-pixel -> region-pixel for each time; identity-plus-margin at the reference
    pose (``t_c``, or the time-averaged pose when ``cfg.center == 'mean'``)."""
    t = torch.cat([times.to(torch.float64), torch.tensor([t_c], dtype=torch.float64)])
    n = t.shape[0]
    if torch.rand((), generator=g) < cfg.static_camera_p:
        trans, rot, zoom = (
            torch.zeros(n, 2, dtype=torch.float64),
            torch.zeros(n, dtype=torch.float64),
            torch.zeros(n, dtype=torch.float64),
        )
    else:
        # no draw at tremor_p = 0, so default streams are unchanged
        if cfg.tremor_p > 0 and float(torch.rand((), generator=g)) < cfg.tremor_p:
            trans = tremor_path(g, t, float(_uniform(g, *cfg.tremor_px)))
        else:
            span = _exposure_span(g, cfg, len(times))  # t ends with the central instant
            trans = random_path(g, t, float(_uniform(g, *cfg.blur_px)), cfg.shake, span)
        rot = (
            math.radians(cfg.rotation_deg)
            * _uniform(g, -1, 1)
            * (t + 0.3 * torch.sin(2 * math.pi * _uniform(g, 1, 3) * t))
        )
        zoom = cfg.zoom_motion * _uniform(g, -1, 1) * t
    ref = cfg.center
    trans, rot, zoom = (
        trans - _reference(trans, ref),
        rot - _reference(rot, ref),
        zoom - _reference(zoom, ref),
    )
    half_out, half_reg = (size - 1) / 2, (region - 1) / 2
    m = (
        _translate(half_reg, half_reg)
        @ _affine(trans[:, 0], trans[:, 1], rot, torch.exp(zoom))
        @ _translate(-half_out, -half_out)
    )
    return m[:-1]


def _object_mats(
    g: torch.Generator, cfg: SynthConfig, times: torch.Tensor, t_c: float, obj: int, place: torch.Tensor
) -> torch.Tensor:
    """World -> object-texture matrices for each time (inverse of the object's placement)."""
    t = torch.cat([times.to(torch.float64), torch.tensor([t_c], dtype=torch.float64)])
    length = float(_uniform(g, *cfg.object_px))
    trans = random_path(g, t, length, cfg.shake * 0.3, _exposure_span(g, cfg, len(times)))
    rot = math.radians(6.0) * _uniform(g, -1, 1) * t
    trans, rot = trans - _reference(trans, cfg.center), rot - _reference(rot, cfg.center)
    h = (obj - 1) / 2
    # placement: texture -> world; centred rotation, then translation to `place` (integer top-left)
    fwd = (
        _translate(float(place[0]) + h, float(place[1]) + h)
        @ _affine(trans[:, 0], trans[:, 1], rot, torch.ones_like(rot))
        @ _translate(-h, -h)
    )
    return torch.linalg.inv(fwd)[:-1]


@dataclass
class ObjectPlan:
    """One foreground layer of a :class:`SynthPlan`."""

    tex: torch.Tensor  # (3, o, o) sRGB texture, float in [0, 1] or uint8
    mask: torch.Tensor  # (1, o, o) float alpha, zero on its outer two pixels
    mats: torch.Tensor  # (T, 3, 3) float64: output pixel -> texture pixel, per sub-frame
    place: tuple[int, int]  # (x, y) of the texture's top-left at the reference pose (output px)
    flow: torch.Tensor | None  # (N, 2, S, S) displacements of its targets; None for targets="center"


@dataclass
class SynthPlan:
    """Everything random about one sample, drawn on the CPU in the generator's order (cheap); turning it
    into pixels (:func:`render`) is deterministic arithmetic that runs on any device, for a batch at once.

    ``noise`` is the read/shot noise field ``(3, S, S)`` drawn from the sample's generator, or (for a plan
    made with ``noise_field=False``) an integer seed for the rendering device's generator, or None for
    a clean sample. ``jpeg`` (a JPEG quality, 0 = none) is set by the dataset, not by :func:`plan`.
    """

    cfg: SynthConfig
    region: torch.Tensor  # (3, R, R) sRGB source window, float in [0, 1] or uint8
    cam: torch.Tensor  # (T, 3, 3) float64: output pixel -> region pixel, per sub-frame
    flows: torch.Tensor | None  # (N, 2, S, S) camera displacements of the targets; None for "center"
    objects: list[ObjectPlan]
    highlight: float  # highlight gain - 1 (0: no boost)
    gamma: bool  # average the exposure in display gamma
    noise_a: float  # shot-noise variance per unit of linear signal
    noise_b2: float  # read-noise variance
    noise: torch.Tensor | int | None
    grey: bool
    hflip: bool
    only_center: bool
    jpeg: int = 0

    def compact(self) -> SynthPlan:
        """The same plan with its source windows as uint8 (a quarter of the bytes to pass between
        processes; rendering then sees them rounded to 8 bits, as the photos were)."""

        def u8(x: torch.Tensor) -> torch.Tensor:
            return x if x.dtype == torch.uint8 else (x.clamp(0, 1) * 255).round_().to(torch.uint8)

        objects = [dataclasses.replace(o, tex=u8(o.tex)) for o in self.objects]
        return dataclasses.replace(self, region=u8(self.region), objects=objects)


def plan(
    image: torch.Tensor,
    g: torch.Generator,
    cfg: SynthConfig,
    others: list[torch.Tensor] | None = None,
    targets: str = "all",
    noise_field: bool = True,
) -> SynthPlan:
    """Draw one sample's randomness from ``g`` (see :func:`synthesize` for the arguments): the source
    windows, the camera's and objects' matrices, the targets' true flows and the exposure's choices.

    With ``noise_field=False`` the noise is a seed for the rendering device instead of a ``(3, S, S)``
    field: the rest of the draws then differ from the default stream (still deterministic per ``g``).
    """
    if targets not in ("all", "center"):
        raise ValueError(f"targets must be 'all' or 'center', not {targets!r}")
    only_center = targets == "center"
    n, k, size = cfg.frames, cfg.subframes, cfg.size
    if n < 1 or k < 1:
        raise ValueError("frames and subframes must be >= 1")
    if cfg.center not in ("time", "mean"):
        raise ValueError(f"center must be 'time' or 'mean', not {cfg.center!r}")
    margin = cfg.margin
    img = _random_view(image, g, cfg, size + 2 * margin)  # (3, R, R) sRGB
    times, target_idx, c = _timing(cfg)
    t_c = float(times[target_idx[c]])
    cam = _camera_mats(g, cfg, times, t_c, size, size + 2 * margin)  # (T, 3, 3) output -> region
    center_cam = _translate(margin, margin)
    flows = None if only_center else _flows(cam[target_idx], center_cam, size)  # (N, 2, S, S)

    objects = []
    n_obj = int(torch.randint(cfg.objects[0], cfg.objects[1] + 1, (), generator=g)) if others else 0
    for _ in range(n_obj):
        tex_src = others[int(torch.randint(len(others), (), generator=g))]
        obj = int(size * float(_uniform(g, *cfg.object_size))) | 1
        tex = _random_view(tex_src, g, cfg, obj, zoom=False)
        mask = soft_mask(g, obj)
        place = torch.randint(-obj // 4, size - obj + obj // 4 + 1, (2,), generator=g)
        omats = _object_mats(g, cfg, times, t_c, obj, place + margin)  # world -> texture
        flow = None
        if not only_center:
            if cfg.center == "mean":  # output -> texture at the reference pose: its top-left at `place`
                center_w2t = _translate(-float(place[0]), -float(place[1]))
            else:  # output -> texture at the central time
                center_w2t = omats[target_idx[c]] @ center_cam
            flow = _flows(
                torch.linalg.inv(center_w2t) @ omats[target_idx] @ cam[target_idx],
                torch.eye(3, dtype=torch.float64),
                size,
            )
        objects.append(ObjectPlan(tex, mask, omats @ cam, (int(place[0]), int(place[1])), flow))

    highlight = (
        float(_uniform(g, 1.5, 6.0)) - 1 if float(torch.rand((), generator=g)) < cfg.highlight_p else 0.0
    )
    gamma = float(torch.rand((), generator=g)) < cfg.gamma_average_p
    a = b2 = 0.0
    noise: torch.Tensor | int | None = None
    # no draw at noise_p = 1, so default streams are unchanged
    if cfg.noise_p >= 1 or float(torch.rand((), generator=g)) < cfg.noise_p:
        a, b = float(_uniform(g, *cfg.shot_noise)), float(_uniform(g, *cfg.read_noise))
        if a != 0 or b != 0:
            b2 = b * b
            if noise_field:
                noise = torch.randn((3, size, size), generator=g)
            else:
                noise = int(torch.randint(2**62, (), generator=g))
    # no draw at grey_p = 0, so default streams are unchanged
    grey = cfg.grey_p > 0 and float(torch.rand((), generator=g)) < cfg.grey_p
    hflip = cfg.hflip and float(torch.rand((), generator=g)) < 0.5
    return SynthPlan(cfg, img, cam, flows, objects, highlight, gamma, a, b2, noise, grey, hflip, only_center)


def _timing(cfg: SynthConfig) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Sub-frame times ``(N*K,)`` in (0, 1), the N targets' sub-frame indices, the central target's index."""
    n, k = cfg.frames, cfg.subframes
    times = (torch.arange(n * k, dtype=torch.float64) + 0.5) / (n * k)
    return times, torch.arange(n) * k + k // 2, center_index(n)


def _as_float(x: torch.Tensor) -> torch.Tensor:
    """8-bit values as float in [0, 1]; float tensors as they are."""
    return x if x.is_floating_point() else x.float() / 255


@dataclass
class PlanBatch:
    """Plans of one :class:`SynthConfig` stacked into few tensors (see :meth:`collate`): what a data
    worker hands to the training process, which renders it on its device (:func:`render_batch`)."""

    cfg: SynthConfig
    only_center: bool
    region: torch.Tensor  # (B, 3, R, R)
    cam: torch.Tensor  # (B, T, 3, 3) float64
    flows: torch.Tensor | None  # (B, N, 2, S, S); None for targets="center" (zeros)
    # object slot j: have (B flags: which samples have an object j), and for those b samples tex
    # (b, 3, O, O), mask (b, 1, O, O), mats (b, T, 3, 3), side and place (b each), flow (b, N, 2, S, S)
    slots: list[dict]
    highlight: list[float]
    gamma: list[bool]
    noise_a: list[float]
    noise_b2: list[float]
    noise: list[torch.Tensor | int | None]
    grey: list[bool]
    hflip: list[bool]
    jpeg: list[int]

    def __len__(self) -> int:
        return len(self.highlight)

    @classmethod
    def collate(cls, plans: list[SynthPlan]) -> PlanBatch:
        """Stack plans made with one config and targets mode; object textures are zero-padded to the
        largest of their slot (alpha 0, like each mask's own border)."""
        p0 = plans[0]
        if any(p.cfg != p0.cfg or p.only_center != p0.only_center for p in plans):
            raise ValueError("a batch of plans must share one SynthConfig and targets mode")
        slots = []
        for j in range(max(len(p.objects) for p in plans)):
            have = [len(p.objects) > j for p in plans]
            objs = [p.objects[j] for p, h in zip(plans, have, strict=True) if h]
            side = max(o.tex.shape[-1] for o in objs)
            tex = objs[0].tex.new_zeros(len(objs), 3, side, side)
            mask = torch.zeros(len(objs), 1, side, side)
            for i, o in enumerate(objs):
                w = o.tex.shape[-1]
                tex[i, :, :w, :w], mask[i, :, :w, :w] = o.tex, o.mask
            slots.append(
                {
                    "have": have,
                    "tex": tex,
                    "mask": mask,
                    "mats": _stack([o.mats for o in objs]),
                    "side": [o.tex.shape[-1] for o in objs],
                    "place": [o.place for o in objs],
                    "flow": None if p0.only_center else _stack([o.flow for o in objs]),
                }
            )
        return cls(
            cfg=p0.cfg,
            only_center=p0.only_center,
            region=_stack([p.region for p in plans]),
            cam=_stack([p.cam for p in plans]),
            flows=None if p0.only_center else _stack([p.flows for p in plans]),
            slots=slots,
            highlight=[p.highlight for p in plans],
            gamma=[p.gamma for p in plans],
            noise_a=[p.noise_a for p in plans],
            noise_b2=[p.noise_b2 for p in plans],
            noise=[p.noise for p in plans],
            grey=[p.grey for p in plans],
            hflip=[p.hflip for p in plans],
            jpeg=[p.jpeg for p in plans],
        )


def _stack(xs: list[torch.Tensor]) -> torch.Tensor:
    """``torch.stack``, as a view for a single tensor (one plan: no copies)."""
    return xs[0][None] if len(xs) == 1 else torch.stack(xs)


def _select(flags: list[bool], device: torch.device) -> torch.Tensor | slice | None:
    """Which samples take an option: None (none), ``slice(None)`` (all: no gather or scatter needed) or
    an index tensor on ``device``."""
    idx = [i for i, f in enumerate(flags) if f]
    if not idx:
        return None
    return slice(None) if len(idx) == len(flags) else torch.tensor(idx, device=device)


def _apply(
    x: torch.Tensor, sel: torch.Tensor | slice | None, fn: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """``x`` with ``fn`` applied to the selected samples (see :func:`_select`)."""
    if sel is None:
        return x
    if isinstance(sel, slice):
        return fn(x)
    x[sel] = fn(x[sel])
    return x


def _over(alpha: torch.Tensor, top: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """``base -> alpha * top + (1 - alpha) * base``: a layer composited over what lies below it."""
    return lambda base: alpha * top + (1 - alpha) * base


def render(plans: list[SynthPlan], device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """Render plans made with the same :class:`SynthConfig` and targets as one batch on ``device``
    (default: the CPU): :meth:`PlanBatch.collate`, then :func:`render_batch`. One plan on the CPU renders
    byte-identically to the sample :func:`synthesize` has always given."""
    return render_batch(PlanBatch.collate(plans), device)


def render_batch(pb: PlanBatch, device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """Render a :class:`PlanBatch` on ``device`` (default: the CPU).

    Returns ``blurred (B, 3, S, S)``, ``frames (B, N, 3, S, S)`` (``N = 1`` for targets="center"),
    ``flows (B, N, 2, S, S)``, all float32 sRGB in [0, 1] (flows in px), and ``center`` (int). Plans with
    a ``jpeg`` quality go through :func:`blurvid.data.jpeg.jpeg_round_trip`.
    """
    cfg, only_center = pb.cfg, pb.only_center
    dev = torch.device(device) if device is not None else torch.device("cpu")
    size, margin, mean_ref = cfg.size, cfg.margin, cfg.center == "mean"
    _, target_idx, c = _timing(cfg)
    t_sub = cfg.frames * cfg.subframes
    bsz = len(pb)

    lin = srgb_to_linear(_as_float(pb.region.to(dev)))  # (B, 3, R, R)
    frames_lin = sample_affine(lin, pb.cam, size)  # (B, T, 3, S, S)
    # the reference pose is an exact crop (no resampling softness): the central target, or with
    # center='mean' an extra image appended after the T sub-frames (not part of the exposure)
    crop = lin[:, :, margin : margin + size, margin : margin + size]
    if mean_ref:
        frames_lin = torch.cat([frames_lin, crop[:, None]], 1)
    else:
        frames_lin[:, target_idx[c]] = crop
    flows = torch.zeros(bsz, 1, 2, size, size, device=dev) if pb.flows is None else pb.flows.to(dev)

    for slot in pb.slots:  # object slot j of every sample that has one
        layers = torch.cat([srgb_to_linear(_as_float(slot["tex"].to(dev))), slot["mask"].to(dev)], 1)
        layer = sample_affine(layers, slot["mats"], size)  # (b, T, 4, S, S)
        # exact texture at the reference pose (integer placement, no rotation)
        pasted = torch.stack(
            [
                _paste(x[:, :w, :w], pl, size)
                for x, w, pl in zip(layers, slot["side"], slot["place"], strict=True)
            ]
        )
        if mean_ref:
            layer = torch.cat([layer, pasted[:, None]], 1)
        else:
            layer[:, target_idx[c]] = pasted
        alpha = layer[:, :, 3:4]
        have = _select(slot["have"], dev)
        frames_lin = _apply(frames_lin, have, _over(alpha, layer[:, :, :3]))
        if not only_center:
            flows = _apply(flows, have, _over(alpha[:, target_idx], slot["flow"].to(dev)))

    # highlights boosted before the sensor clips
    gain = torch.tensor([h for h in pb.highlight if h != 0], device=dev).view(-1, 1, 1, 1, 1)
    frames_lin = _apply(
        frames_lin,
        _select([h != 0 for h in pb.highlight], dev),
        lambda f: f * (1 + gain * ((f.mean(2, keepdim=True) - 0.7) / 0.3).clamp(0, 1)),
    )
    blurred_lin = frames_lin[:, :t_sub].mean(1).clamp(0, 1)
    frames_lin = frames_lin.clamp(0, 1)
    # the reference-pose image is the last one with center='mean', else the central time's sub-frame
    ref = frames_lin[:, t_sub] if mean_ref else frames_lin[:, target_idx[c]]
    if only_center:
        sharp = linear_to_srgb(ref[:, None]).clamp(0, 1)
        c = 0
    else:
        sharp = linear_to_srgb(frames_lin[:, target_idx]).clamp(0, 1)
        if mean_ref:
            sharp[:, c] = linear_to_srgb(ref).clamp(0, 1)
    gam = _select(pb.gamma, dev)
    if gam is not None:  # averaged in display gamma (the sub-frames are clipped already)
        blurred_lin = _apply(
            blurred_lin, gam, lambda _: srgb_to_linear(linear_to_srgb(frames_lin[gam, :t_sub]).mean(1))
        )
    noisy = _select([n is not None for n in pb.noise], dev)
    if noisy is not None:  # Poisson-Gaussian sensor noise (heteroscedastic Gaussian approximation)
        idx = [i for i, n in enumerate(pb.noise) if n is not None]
        field = torch.stack([_noise_field(pb.noise[i], size, dev) for i in idx])
        a = torch.tensor([pb.noise_a[i] for i in idx], device=dev).view(-1, 1, 1, 1)
        b2 = torch.tensor([pb.noise_b2[i] for i in idx], device=dev).view(-1, 1, 1, 1)
        blurred_lin = _apply(blurred_lin, noisy, lambda x: x + (a * x.clamp(min=0) + b2).sqrt() * field)
    blurred = linear_to_srgb(blurred_lin).clamp(0, 1)
    grey = _select(pb.grey, dev)
    blurred, sharp = _apply(blurred, grey, to_grey), _apply(sharp, grey, to_grey)
    if cfg.quantize:
        blurred = torch.round(blurred * 255) / 255
    flip = _select(pb.hflip, dev)
    blurred, sharp = _apply(blurred, flip, lambda x: x.flip(-1)), _apply(sharp, flip, lambda x: x.flip(-1))
    sign = torch.tensor([-1.0, 1.0], device=dev).view(1, 1, 2, 1, 1)
    flows = _apply(flows, flip, lambda f: f.flip(-1) * sign)
    quality = [q for q in pb.jpeg if q > 0]
    if quality:
        from .jpeg import jpeg_round_trip

        blurred = _apply(
            blurred, _select([q > 0 for q in pb.jpeg], dev), lambda x: jpeg_round_trip(x, quality)
        )
    return {"blurred": blurred, "frames": sharp, "flows": flows, "center": c}


def _noise_field(noise: torch.Tensor | int, size: int, dev: torch.device) -> torch.Tensor:
    """A plan's noise field on ``dev``: its own tensor, or drawn there from its seed."""
    if isinstance(noise, torch.Tensor):
        return noise.to(dev)
    gen = torch.Generator(dev).manual_seed(noise)
    return torch.randn((3, size, size), generator=gen, device=dev)


def synthesize(
    image: torch.Tensor,
    g: torch.Generator,
    cfg: SynthConfig,
    others: list[torch.Tensor] | None = None,
    targets: str = "all",
) -> Sample:
    """Render one sample from ``image: (3, H, W)`` sRGB, float in [0, 1] or uint8 (at least
    ``size + 2*margin`` px per side after zoom; smaller images are upscaled to fit). ``others`` supply
    foreground textures (same types). On the CPU: :func:`plan`, then :func:`render`.

    ``targets="center"`` renders only what deblurring needs: ``frames`` is the central target alone
    ``(1, 3, S, S)`` with ``center`` 0 and ``flows`` its (zero) displacement ``(1, 2, S, S)``; the
    blurred image and that target are identical to the ``"all"`` sample of the same generator state.
    """
    pl = plan(image, g, cfg, others, targets)
    out = render([pl])
    return Sample(
        blurred=out["blurred"][0],
        frames=out["frames"][0],
        flows=out["flows"][0].float(),
        center=out["center"],
        meta={"objects": len(pl.objects)},
    )


def _paste(layer: torch.Tensor, place: torch.Tensor, size: int) -> torch.Tensor:
    """Place ``layer: (C, o, o)`` with its top-left at integer ``place=(x, y)`` on a zero canvas."""
    cch, o, _ = layer.shape
    out = layer.new_zeros(cch, size, size)
    x0, y0 = int(place[0]), int(place[1])
    xs, ys = max(x0, 0), max(y0, 0)
    xe, ye = min(x0 + o, size), min(y0 + o, size)
    if xe > xs and ye > ys:
        out[:, ys:ye, xs:xe] = layer[:, ys - y0 : ye - y0, xs - x0 : xe - x0]
    return out


def _random_view(
    image: torch.Tensor, g: torch.Generator, cfg: SynthConfig, side: int, zoom: bool = True
) -> torch.Tensor:
    """A random ``(3, side, side)`` float crop of ``image`` (float in [0, 1], or uint8) after a random
    rescale within ``cfg.zoom``; a uint8 photo is converted only within the window it is cropped to."""
    _, h, w = image.shape
    lo, hi = cfg.zoom if zoom else (min(cfg.zoom[0], 1.0), 1.0)
    need = side / min(h, w)  # the smallest scale that still fits the crop
    lo, hi = max(lo, need), max(hi, need)
    s = float(_uniform(g, lo, hi))
    # crop a window of side/s source pixels first, then resize only that (cheap for big photos)
    win = min(math.ceil(side / s) + 2, h, w)
    y0 = int(torch.randint(0, h - win + 1, (), generator=g))
    x0 = int(torch.randint(0, w - win + 1, (), generator=g))
    crop = _as_float(image[:, y0 : y0 + win, x0 : x0 + win])
    out_side = max(side, round(win * s))
    if out_side != win:
        crop = F.interpolate(
            crop[None],
            size=(out_side, out_side),
            mode="bicubic",
            antialias=out_side < win,
            align_corners=False,
        )[0]
    crop = crop.clamp(0, 1)
    return crop[:, :side, :side]


def average_frames(frames: torch.Tensor, linear: bool = True) -> torch.Tensor:
    """Blur from consecutive sharp frames ``(N, 3, H, W)`` (GoPro-style), averaging in linear light."""
    if linear:
        return linear_to_srgb(srgb_to_linear(frames).mean(0)).clamp(0, 1)
    return frames.mean(0)
