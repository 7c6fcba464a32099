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

Everything is plain torch on CPU tensors, deterministic for a given ``torch.Generator``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..config import Config


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

    @property
    def margin(self) -> int:
        """Source pixels needed around the crop so that no sub-frame samples outside the source."""
        rot = math.radians(self.rotation_deg) * self.size * 0.75 + self.zoom_motion * self.size * 0.75
        longest = max(self.blur_px[1], self.tremor_px[1] if self.tremor_p > 0 else 0.0)
        return math.ceil(longest * 0.6 + rot + 4)


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


def random_path(g: torch.Generator, times: torch.Tensor, length: float, shake: float) -> torch.Tensor:
    """A random smooth 2-D path ``(T, 2)`` over ``times`` in [0, 1] with arc length ~``length`` px.

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
    return path * (length / _arc_length(path))


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
def _base_grid(size: int, dtype: torch.dtype) -> torch.Tensor:
    """Normalised homogeneous output coordinates ``(1, S*S, 3)`` (x, y, 1), row-major, align_corners=True:
    what :func:`torch.nn.functional.affine_grid` multiplies by theta (shared: never modify it)."""
    axis = torch.linspace(-1, 1, size, dtype=dtype)
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xs, ys, torch.ones_like(xs)], -1).view(1, size * size, 3)


def sample_affine(src: torch.Tensor, mats: torch.Tensor, size: int, mode: str = "bilinear") -> torch.Tensor:
    """Render ``src: (C, Hs, Ws)`` through pixel-space matrices ``mats: (T, 3, 3)`` -> ``(T, C, size, size)``.

    Output pixel ``p`` takes ``src`` at ``mats @ p`` (pixel indices), border-replicated outside.
    """
    _, hs, ws = src.shape
    theta = _normalizer(hs, ws) @ mats @ torch.linalg.inv(_normalizer(size, size))
    t = mats.shape[0]
    # affine_grid's arithmetic as one batched matmul on a cached base grid (~4x faster on a CPU core)
    base = _base_grid(size, src.dtype).to(src.device)
    grid = torch.matmul(base, theta[:, :2].to(src.dtype).transpose(1, 2)).view(t, size, size, 2)
    return F.grid_sample(
        src.expand(t, *src.shape), grid, mode=mode, padding_mode="border", align_corners=True
    )


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
            trans = random_path(g, t, float(_uniform(g, *cfg.blur_px)), cfg.shake)
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
    trans = random_path(g, t, length, cfg.shake * 0.3)
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


def synthesize(
    image: torch.Tensor,
    g: torch.Generator,
    cfg: SynthConfig,
    others: list[torch.Tensor] | None = None,
    targets: str = "all",
) -> Sample:
    """Render one sample from ``image: (3, H, W)`` sRGB, float in [0, 1] or uint8 (at least
    ``size + 2*margin`` px per side after zoom; smaller images are upscaled to fit). ``others`` supply
    foreground textures (same types).

    ``targets="center"`` renders only what deblurring needs: ``frames`` is the central target alone
    ``(1, 3, S, S)`` with ``center`` 0 and ``flows`` its (zero) displacement ``(1, 2, S, S)``; the
    blurred image and that target are identical to the ``"all"`` sample of the same generator state.
    """
    if targets not in ("all", "center"):
        raise ValueError(f"targets must be 'all' or 'center', not {targets!r}")
    only_center = targets == "center"
    n, k, size = cfg.frames, cfg.subframes, cfg.size
    if n < 1 or k < 1:
        raise ValueError("frames and subframes must be >= 1")
    if cfg.center not in ("time", "mean"):
        raise ValueError(f"center must be 'time' or 'mean', not {cfg.center!r}")
    mean_ref = cfg.center == "mean"
    margin = cfg.margin
    region = size + 2 * margin
    img = _random_view(image, g, cfg, region)  # (3, region, region) sRGB
    lin = srgb_to_linear(img)
    times = (torch.arange(n * k, dtype=torch.float64) + 0.5) / (n * k)
    target_idx = torch.arange(n) * k + k // 2
    c = center_index(n)
    t_c = float(times[target_idx[c]])

    cam = _camera_mats(g, cfg, times, t_c, size, region)  # (T, 3, 3) output -> region
    frames_lin = sample_affine(lin, cam, size)  # (T, 3, S, S)
    # the reference pose is an exact crop (no resampling softness): the central target, or with
    # center='mean' an extra image appended after the T sub-frames (not part of the exposure)
    crop = lin[:, margin : margin + size, margin : margin + size]
    if mean_ref:
        frames_lin = torch.cat([frames_lin, crop[None]])
    else:
        frames_lin[target_idx[c]] = crop
    center_cam = _translate(margin, margin)
    # (N, 2, S, S); the central frame's own displacement is zero
    flows = torch.zeros(1, 2, size, size) if only_center else _flows(cam[target_idx], center_cam, size)

    n_obj = int(torch.randint(cfg.objects[0], cfg.objects[1] + 1, (), generator=g)) if others else 0
    for _ in range(n_obj):
        tex_src = others[int(torch.randint(len(others), (), generator=g))]
        obj = int(size * float(_uniform(g, *cfg.object_size))) | 1
        tex = srgb_to_linear(_random_view(tex_src, g, cfg, obj, zoom=False))
        mask = soft_mask(g, obj)
        place = torch.randint(-obj // 4, size - obj + obj // 4 + 1, (2,), generator=g)
        omats = _object_mats(g, cfg, times, t_c, obj, place + margin)  # world -> texture
        layer = sample_affine(torch.cat([tex, mask]), omats @ cam, size)  # (T, 4, S, S)
        # exact texture at the reference pose (integer placement, no rotation)
        pasted = _paste(torch.cat([tex, mask]), place, size)
        if mean_ref:
            layer = torch.cat([layer, pasted[None]])
            # output -> texture at the reference pose: the texture's top-left sits at `place`
            center_w2t = _translate(-float(place[0]), -float(place[1]))
        else:
            layer[target_idx[c]] = pasted
            center_w2t = omats[target_idx[c]] @ center_cam  # output -> texture at the central time
        alpha = layer[:, 3:4]
        frames_lin = alpha * layer[:, :3] + (1 - alpha) * frames_lin
        if not only_center:
            obj_flow = _flows(
                torch.linalg.inv(center_w2t) @ omats[target_idx] @ cam[target_idx],
                torch.eye(3, dtype=torch.float64),
                size,
            )
            a = alpha[target_idx]
            flows = a * obj_flow + (1 - a) * flows

    t_sub = n * k
    blurred_lin, frames_lin = _expose(frames_lin, g, cfg, t_sub)
    # the reference-pose image is the last one with center='mean', else the central time's sub-frame
    ref = frames_lin[t_sub] if mean_ref else frames_lin[target_idx[c]]
    if only_center:
        sharp = linear_to_srgb(ref[None]).clamp(0, 1)
        c = 0
    else:
        sharp = linear_to_srgb(frames_lin[target_idx]).clamp(0, 1)
        if mean_ref:
            sharp[c] = linear_to_srgb(ref).clamp(0, 1)
    if float(torch.rand((), generator=g)) < cfg.gamma_average_p:
        blurred_lin = srgb_to_linear(linear_to_srgb(frames_lin[:t_sub]).mean(0))  # _expose clipped them
    blurred = linear_to_srgb(_noise(blurred_lin, g, cfg)).clamp(0, 1)
    # no draw at grey_p = 0, so default streams are unchanged
    if cfg.grey_p > 0 and float(torch.rand((), generator=g)) < cfg.grey_p:
        blurred, sharp = to_grey(blurred), to_grey(sharp)
    if cfg.quantize:
        blurred = torch.round(blurred * 255) / 255
    if cfg.hflip and float(torch.rand((), generator=g)) < 0.5:
        blurred, sharp, flows = blurred.flip(-1), sharp.flip(-1), flows.flip(-1)
        flows = flows * torch.tensor([-1.0, 1.0]).view(1, 2, 1, 1)
    return Sample(
        blurred=blurred.float(),
        frames=sharp.float(),
        flows=flows.float(),
        center=c,
        meta={"objects": n_obj},
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
    crop = image[:, y0 : y0 + win, x0 : x0 + win]
    if not crop.is_floating_point():
        crop = crop.float() / 255
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


def _expose(
    frames_lin: torch.Tensor, g: torch.Generator, cfg: SynthConfig, count: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Average the first ``count`` (default all) sub-frames into the blurred exposure; optionally boost
    highlights (of every frame given), then clip like a sensor.

    Returns ``(blurred_lin (3, S, S), frames_lin (T, 3, S, S))``, both clipped to [0, 1].
    """
    if float(torch.rand((), generator=g)) < cfg.highlight_p:
        lum = frames_lin.mean(1, keepdim=True)
        gain = float(_uniform(g, 1.5, 6.0))
        frames_lin = frames_lin * (1 + (gain - 1) * ((lum - 0.7) / 0.3).clamp(0, 1))
    blurred = frames_lin[:count].mean(0).clamp(0, 1)
    return blurred, frames_lin.clamp(0, 1)


def _noise(lin: torch.Tensor, g: torch.Generator, cfg: SynthConfig) -> torch.Tensor:
    """Poisson-Gaussian sensor noise in linear light (heteroscedastic Gaussian approximation)."""
    if cfg.noise_p < 1 and float(torch.rand((), generator=g)) >= cfg.noise_p:
        return lin  # a clean sample (no draw at noise_p = 1, so default streams are unchanged)
    a = float(_uniform(g, *cfg.shot_noise))
    b = float(_uniform(g, *cfg.read_noise))
    if a == 0 and b == 0:
        return lin
    std = (a * lin.clamp(min=0) + b * b).sqrt()
    return lin + std * torch.randn(lin.shape, generator=g)


def average_frames(frames: torch.Tensor, linear: bool = True) -> torch.Tensor:
    """Blur from consecutive sharp frames ``(N, 3, H, W)`` (GoPro-style), averaging in linear light."""
    if linear:
        return linear_to_srgb(srgb_to_linear(frames).mean(0)).clamp(0, 1)
    return frames.mean(0)
