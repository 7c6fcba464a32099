"""Uniform camera-shake removal: blind kernel estimation and non-blind deconvolution.

The paper's deblurring network handles any blur but stays soft on long camera-shake trails. When the
whole photo shares one blur kernel (a hand-held shot of a static scene, the camera translating), the
kernel can be estimated from the photo itself and inverted exactly. This module does that with the
classic coarse-to-fine scheme of an L0 gradient prior (Xu et al. 2013; Pan et al. 2014): alternate a
sharp "latent" image with few, strong edges and a kernel that maps its gradients onto the photo's, from
a 5-9 px kernel at the coarsest scale up to the full size; then deconvolve the photo with the kernel under
a sparse (Laplacian) gradient prior.

All functions are pure torch, work on ``(H, W)`` float tensors in [0, 1] (kernels ``(k, k)``, odd
``k``, non-negative, summing to 1) and run on any device. Convolutions are circular (FFT); photos are
padded with a smooth wrap-around border first (:func:`pad_periodic`), so that their edges do not ring.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F

from .config import check_number

__all__ = [
    "deconvolve",
    "deconvolve_rgb",
    "estimate_kernel",
    "exposure_gain",
    "fft_size",
    "kernel_core",
    "noise_sigma",
    "otf2psf",
    "pad_periodic",
    "prior_weight",
    "psf2otf",
    "refine_kernel",
]


def psf2otf(kernel: torch.Tensor, shape: tuple[int, int], real: bool = False) -> torch.Tensor:
    """The FFT of ``kernel`` ``(kh, kw)`` zero-padded to ``shape`` with its centre moved to ``(0, 0)``:
    multiplying an image's FFT by it is circular convolution with the kernel. Returns ``shape`` complex
    (``real``: the half spectrum of ``torch.fft.rfft2``, ``(H, W // 2 + 1)``)."""
    kh, kw = kernel.shape
    pad = kernel.new_zeros(shape)
    pad[:kh, :kw] = kernel
    pad = torch.roll(pad, (-(kh // 2), -(kw // 2)), (0, 1))
    return torch.fft.rfft2(pad) if real else torch.fft.fft2(pad)


def otf2psf(otf: torch.Tensor, size: tuple[int, int], shape: tuple[int, int] | None = None) -> torch.Tensor:
    """Inverse of :func:`psf2otf`: the real ``size`` kernel centred in the inverse FFT of ``otf``
    (``shape``: the image size of a half spectrum from ``psf2otf(..., real=True)``)."""
    kh, kw = size
    full = torch.fft.ifft2(otf).real if shape is None else torch.fft.irfft2(otf, s=shape)
    return torch.roll(full, (kh // 2, kw // 2), (0, 1))[:kh, :kw]


def _grad_otfs(
    shape: tuple[int, int], dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Half spectra (``rfft2``) of the forward differences along x and y on a ``shape`` grid."""
    dx = torch.zeros(shape, dtype=dtype, device=device)
    dy = torch.zeros(shape, dtype=dtype, device=device)
    # forward differences x[i + 1] - x[i], as circular convolutions centred at (0, 0)
    dx[0, 0], dx[0, -1] = -1.0, 1.0
    dy[0, 0], dy[-1, 0] = -1.0, 1.0
    return torch.fft.rfft2(dx), torch.fft.rfft2(dy)


def _grad(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.roll(x, -1, -1) - x, torch.roll(x, -1, -2) - x


def _normal_terms(
    y: torch.Tensor, kernel: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The half spectra every FFT solve against ``kernel`` on ``y``'s grid needs: ``conj(K) Y``,
    ``|K|^2``, the gradient filters ``Dx``, ``Dy`` and ``|Dx|^2 + |Dy|^2`` (real images: ``rfft2``)."""
    shape = (y.shape[-2], y.shape[-1])
    fk = psf2otf(kernel.to(y.device, y.dtype), shape, real=True)
    fdx, fdy = _grad_otfs(shape, y.dtype, y.device)
    den_d = fdx.abs().square() + fdy.abs().square()
    return fk.conj() * torch.fft.rfft2(y), fk.abs().square(), fdx, fdy, den_d


def _l0_latent(
    y: torch.Tensor, kernel: torch.Tensor, lam: float, kappa: float = 2.0, beta_max: float = 1e5
) -> torch.Tensor:
    """Sharp image with few, strong edges: ``min_x |k * x - y|^2 + lam |grad x|_0`` by half-quadratic
    splitting (the gradient copy is hard-thresholded, then ``x`` is solved in closed form by FFT)."""
    shape = (y.shape[-2], y.shape[-1])
    num_k, den_k, fdx, fdy, den_d = _normal_terms(y, kernel)
    x, beta = y.clone(), 2 * lam
    while beta < beta_max:
        gx, gy = _grad(x)
        keep = (gx.square() + gy.square()) >= lam / beta
        gx, gy = gx * keep, gy * keep
        num = num_k + beta * (fdx.conj() * torch.fft.rfft2(gx) + fdy.conj() * torch.fft.rfft2(gy))
        x = torch.fft.irfft2(num / (den_k + beta * den_d), s=shape)
        beta *= kappa
    return x


def _kernel_step(
    y: torch.Tensor, latent: torch.Tensor, size: int, weight: float, init: torch.Tensor, min_mass: float = 0.1
) -> torch.Tensor:
    """Least-squares kernel of support ``size`` mapping the latent's gradients onto ``y``'s (Tikhonov
    ``weight``), by 20 conjugate-gradient steps from ``init``; then clipped, pruned and normalised."""
    shape = (y.shape[-2], y.shape[-1])
    if _flat(latent):  # nothing to fit: FFT round-off, normalised, made a kernel of scattered specks
        return init
    lx, ly = (torch.fft.rfft2(g) for g in _grad(latent))
    bx, by = (torch.fft.rfft2(g) for g in _grad(y))
    m = lx.abs().square() + ly.abs().square()
    b = otf2psf(lx.conj() * bx + ly.conj() * by, (size, size), shape)

    def a(k: torch.Tensor) -> torch.Tensor:
        return otf2psf(m * psf2otf(k, shape, real=True), (size, size), shape) + weight * k

    k = init.clone()
    r = b - a(k)
    p = r.clone()
    rs = float((r * r).sum())
    for _ in range(20):
        ap = a(p)
        alpha = rs / max(float((p * ap).sum()), 1e-20)
        k = k + alpha * p
        r = r - alpha * ap
        rs_new = float((r * r).sum())
        if rs_new < 1e-12:
            break
        p = r + (rs_new / rs) * p
        rs = rs_new
    k = k.clamp_min(0)
    if not bool(torch.isfinite(k).all()) or float(k.sum()) <= 0:  # nothing fitted: keep the last
        return init
    k = torch.where(k < 0.05 * k.max(), torch.zeros_like(k), k)
    k = _prune(k / k.sum().clamp_min(1e-12), min_mass)
    return _center(k / k.sum().clamp_min(1e-12))


def _flat(y: torch.Tensor) -> bool:
    """Whether ``y`` has no edges at all (mean squared gradient under 1e-10: a flat photo, or round-off)."""
    return float(sum(g.square().mean() for g in _grad(y))) < 1e-10


def _prune(k: torch.Tensor, min_mass: float) -> torch.Tensor:
    """Zero the 8-connected components of ``k``'s support that hold less than ``min_mass`` of its
    total (isolated speckles the least-squares step leaves); the heaviest component always stays."""
    mask = k > 0
    if not bool(mask.any()):
        return k
    n = k.numel()
    labels = torch.where(mask, torch.arange(1, n + 1, dtype=k.dtype, device=k.device).view_as(k), 0)
    while True:  # every pixel of a component takes the component's largest label
        grown = F.max_pool2d(labels[None, None], 3, 1, 1)[0, 0] * mask
        if torch.equal(grown, labels):
            break
        labels = grown
    ids, inv = torch.unique(labels, return_inverse=True)
    mass = torch.zeros(len(ids), dtype=k.dtype, device=k.device).index_add_(0, inv.flatten(), k.flatten())
    mass[ids == 0] = 0
    keep = (mass >= min_mass * mass.sum()) | (mass == mass.max())
    keep[ids == 0] = False
    return k * keep[inv]


def _center(k: torch.Tensor) -> torch.Tensor:
    """Shift ``k`` by whole pixels so that its centre of mass sits at the middle of its support (a
    shifted kernel only shifts the latent image, but a drifting one leaves its support). Mass shifted
    past the edge is dropped and the rest renormalised: wrapping it round to the other side, as a
    circular shift did, made another kernel."""
    size = k.shape[0]
    grid = torch.arange(size, dtype=k.dtype, device=k.device)
    cy = float((k.sum(1) * grid).sum())
    cx = float((k.sum(0) * grid).sum())
    c = size // 2
    dy, dx = round(c - cy), round(c - cx)
    if dy == dx == 0:
        return k
    out = torch.zeros_like(k)
    ys, yd = (slice(0, size - dy), slice(dy, size)) if dy >= 0 else (slice(-dy, size), slice(0, size + dy))
    xs, xd = (slice(0, size - dx), slice(dx, size)) if dx >= 0 else (slice(-dx, size), slice(0, size + dx))
    out[yd, xd] = k[ys, xs]
    total = out.sum()
    return out / total if float(total) > 0 else k


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x[None, None], size=size, mode="bilinear", align_corners=False, antialias=True)[0, 0]


def estimate_kernel(
    y: torch.Tensor,
    size: int = 31,
    iterations: int = 5,
    lam: float = 1e-3,
    weight: float = 100.0,
    min_mass: float = 0.1,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Blind estimate of the blur kernel ``(size, size)`` of a grey photo ``y`` ``(H, W)`` in [0, 1].

    Coarse to fine over scales of ``sqrt(1/2)``, from a 5-9 px kernel up to ``size`` (odd, the largest
    blur extent expected, in pixels of ``y``); ``iterations`` alternations of :func:`_l0_latent` and
    :func:`_kernel_step` per scale, with the L0 weight ``lam`` shrinking by 1.1 per alternation.
    Computes in ``dtype``: float32 measured level with float64 (48 tuning draws: -0.012 dB, standard
    error 0.017, at noise 0.005; -0.002 (0.015) at 0.002; Levin 27.15 against 27.19 dB) and about 1.4x
    faster. Returns float32.
    """
    if size % 2 == 0:
        size += 1
    if _flat(y):  # no edges to estimate a kernel from: a one-pixel kernel ("no shake")
        delta = torch.zeros(size, size, device=y.device)
        delta[size // 2, size // 2] = 1.0
        return delta
    ratio = math.sqrt(0.5)
    scales = max(math.floor(math.log(5 / size) / math.log(ratio)), 0) + 1
    y = y.to(dtype)
    k = None
    for s in range(scales - 1, -1, -1):
        f = ratio**s
        ks = max(math.ceil(size * f) | 1, 3)
        ys = _resize(y, (max(round(y.shape[0] * f), ks + 2), max(round(y.shape[1] * f), ks + 2))) if s else y
        if k is None:
            k = torch.zeros(ks, ks, dtype=y.dtype, device=y.device)
            c = ks // 2
            k[c, c - 1 : c + 1] = 0.5
        else:
            k = _resize(k, (ks, ks)).clamp_min(0)
            k = k / k.sum().clamp_min(1e-12)
        k = _alternate(ys, k, iterations, lam, weight, min_mass)
    return k.float()


def _alternate(
    y: torch.Tensor, k: torch.Tensor, iterations: int, lam: float, weight: float, min_mass: float
) -> torch.Tensor:
    """``iterations`` alternations of :func:`_l0_latent` and :func:`_kernel_step` on ``y`` (in its
    dtype) from the kernel ``k``, the L0 weight shrinking from ``lam`` by 1.1 each time."""
    ks = k.shape[0]
    ys_p = _pad_fft(y, ks)
    lam_s = lam
    for _ in range(iterations):
        latent = _l0_latent(ys_p, k, lam_s)
        k = _kernel_step(ys_p, latent, ks, weight, k, min_mass)
        lam_s = max(lam_s / 1.1, 1e-4)
    return k


def refine_kernel(
    y: torch.Tensor,
    kernel: torch.Tensor,
    iterations: int = 5,
    lam: float = 1e-3,
    weight: float = 100.0,
    min_mass: float = 0.1,
) -> torch.Tensor:
    """One more scale of :func:`estimate_kernel`'s coarse-to-fine scheme: ``kernel`` ``(k, k)`` (odd k,
    e.g. an estimate from a smaller copy, upscaled) re-estimated on the grey ``y`` ``(H, W)`` at ``y``'s
    resolution, by ``iterations`` alternations. Computes in float32 (1.6x faster than float64 and level
    with it in ``benchmarks/shake_scale.py``). Returns ``(k, k)`` float32, sum 1."""
    k = kernel.to(y.device, torch.float32).clamp_min(0)
    return _alternate(y.float(), k / k.sum().clamp_min(1e-12), iterations, lam, weight, min_mass)


def pad_periodic(y: torch.Tensor, margin: int | tuple[int, int]) -> torch.Tensor:
    """``y`` ``(..., H, W)`` padded by ``margin`` px (or ``(rows, columns)``) on the bottom and right
    with a border that fades from a mirror of the last rows/columns into a mirror of the first ones,
    so the padded image is periodic without a jump (circular convolutions then do not ring at the
    photo's edges). Crop ``[..., :H, :W]`` to undo."""
    mh, mw = (margin, margin) if isinstance(margin, int) else margin
    out = y
    for dim, m in ((-1, mw), (-2, mh)):
        if m <= 0:
            continue
        n = out.shape[dim]
        i = torch.arange(m, device=y.device)
        after_end = out.index_select(dim, (n - 2 - i).clamp(0, n - 1))  # continues the last row/column
        before_start = out.index_select(dim, (m - i).clamp(0, n - 1))  # leads into the first one
        shape = [1] * out.dim()
        shape[dim] = m
        t = ((i.to(y.dtype) + 1) / (m + 1)).view(shape)
        t = 0.5 - 0.5 * torch.cos(math.pi * t)
        out = torch.cat([out, (1 - t) * after_end + t * before_start], dim)
    return out


def fft_size(n: int) -> int:
    """The smallest length >= ``n`` whose only prime factors are 2, 3 and 5 (fast FFTs)."""
    m = n
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 1


def _pad_fft(y: torch.Tensor, margin: int) -> torch.Tensor:
    """:func:`pad_periodic` by at least ``margin`` px, up to sides of :func:`fft_size`."""
    h, w = y.shape[-2:]
    return pad_periodic(y, (fft_size(h + margin) - h, fft_size(w + margin) - w))


def deconvolve(
    y: torch.Tensor, kernel: torch.Tensor, lam: float = 4e-3, beta_max: float = 256.0
) -> torch.Tensor:
    """Non-blind deconvolution of ``y`` ``(..., H, W)`` by ``kernel`` under a Laplacian gradient prior,
    ``min_x |k * x - y|^2 + lam |grad x|_1``, by half-quadratic splitting (Krishnan & Fergus 2009: the
    gradient copy is soft-thresholded, then ``x`` is solved in closed form by FFT; the coupling grows
    from 1 to ``beta_max`` by 2 sqrt 2), on a smoothly periodic padding of ``y`` to FFT-friendly sizes.
    Computes in ``y``'s dtype (float32 is within 1e-6 of float64). Returns ``(..., H, W)``."""
    h, w = y.shape[-2:]
    yp = _pad_fft(y, 2 * max(kernel.shape))  # the longer side: a (1, 31) kernel reaches 15 px sideways
    num_k, den_k, fdx, fdy, den_d = _normal_terms(yp, kernel)
    return _sparse_solve(yp, num_k, den_k, fdx, fdy, den_d, lam, beta_max)[..., :h, :w].to(y.dtype)


def _sparse_solve(
    yp: torch.Tensor,
    num_k: torch.Tensor,
    den_k: torch.Tensor,
    fdx: torch.Tensor,
    fdy: torch.Tensor,
    den_d: torch.Tensor,
    lam: float,
    beta_max: float = 256.0,
) -> torch.Tensor:
    """:func:`deconvolve`'s splitting on the padded grid of ``yp`` (``num_k`` = ``conj(K) Yp``; the
    other terms from :func:`_normal_terms`). Returns the padded ``x``."""
    shape = (yp.shape[-2], yp.shape[-1])
    x, beta = yp.clone(), 1.0
    while beta < beta_max:
        gx, gy = _grad(x)
        thr = 1 / (2 * beta)
        gx = torch.sign(gx) * (gx.abs() - thr).clamp_min(0)
        gy = torch.sign(gy) * (gy.abs() - thr).clamp_min(0)
        num = num_k + lam * beta * (fdx.conj() * torch.fft.rfft2(gx) + fdy.conj() * torch.fft.rfft2(gy))
        x = torch.fft.irfft2(num / (den_k + lam * beta * den_d), s=shape)
        beta *= 2 * math.sqrt(2)
    return x


#: A channel value (of 1) from which a photo's pixel counts as clipped by the sensor.
CLIPPED = 0.98


def check_clipped(clipped: object) -> None:
    """ValueError unless ``clipped`` (where highlights count as clipped, see :func:`deconvolve_rgb`)
    is None or a number in (0, 1]."""
    if clipped is not None and (
        isinstance(clipped, bool)
        or not isinstance(clipped, numbers.Real)  # numpy's numbers too
        or not 0 < clipped <= 1  # NaN fails too
    ):
        raise ValueError(f"clipped must be a number in (0, 1] or None, got {clipped!r}")


def deconvolve_rgb(
    y: torch.Tensor,
    kernel: torch.Tensor,
    lam: float = 4e-3,
    chroma: float = 32.0,
    clipped: float | None = None,
    rounds: int = 8,
    gain: float = 1.0,
) -> torch.Tensor:
    """Non-blind deconvolution of a colour photo ``y`` ``(..., 3, H, W)`` (RGB) by ``kernel``.

    The luminance ``(R + G + B) / 3`` is deconvolved under the sparse prior (:func:`deconvolve`,
    weight ``lam``); the two colour differences ``B - Y`` and ``R - Y``, which hold little fine detail
    and most of a photo's colour noise, under a quadratic gradient prior ``chroma`` times stronger,
    solved in one FFT step. Against all three channels under the sparse prior
    (``benchmarks/shake_scale.py`` data, estimated kernels): -0.03 dB at noise 0.005, +0.73 dB at
    0.02, and the deconvolution 2.4x faster. Channel means are kept (without ``clipped``).

    Clipped highlights (a channel at ``clipped`` or more; ``None``: no such handling): the sensor
    recorded only that the blurred light there was at least that bright, so a clipped pixel only asks
    that the reblurred result be no darker than the photo (a censored data term). That is solved by
    majorisation in ``rounds`` deconvolutions: after each, a clipped pixel's target is raised to the
    reblurred result where that is brighter. Without it, the deconvolution takes a blurred lamp's
    flat top for its true shape and rings around it, in colour where one channel clipped
    (``benchmarks/shake_saturation.py``). A photo with no clipped pixel takes one deconvolution, as
    with ``None``. ``gain``: ``y`` is a photo brought up by that factor (:func:`exposure_gain`), so its
    clipped pixels are those from ``clipped * gain``. Returns ``(..., 3, H, W)``. Raises ValueError for
    a ``clipped`` that is not a number in (0, 1], ``rounds`` that is not a whole number, 0 or more, or
    a ``gain`` under 1."""
    check_clipped(clipped)
    if isinstance(rounds, bool) or not isinstance(rounds, numbers.Integral) or rounds < 0:
        raise ValueError(f"rounds must be a whole number, 0 or more, got {rounds!r}")
    check_number("gain", gain, 1.0)
    h, w = y.shape[-2:]
    yp = _pad_fft(y, 2 * max(kernel.shape))
    shape = (yp.shape[-2], yp.shape[-1])
    fk = psf2otf(kernel.to(yp.device, yp.dtype), shape, real=True)
    fdx, fdy = _grad_otfs(shape, yp.dtype, yp.device)
    den_k, den_d = fk.abs().square(), fdx.abs().square() + fdy.abs().square()
    den_chroma = den_k + lam * chroma * den_d  # the colour differences' one FFT solve

    def solve(target: torch.Tensor) -> torch.Tensor:
        spec = fk.conj() * torch.fft.rfft2(target)
        lum = spec.mean(-3, keepdim=True)
        lum_x = _sparse_solve(target.mean(-3, keepdim=True), lum, den_k, fdx, fdy, den_d, lam)
        cb, cr = (torch.fft.irfft2((spec[..., c : c + 1, :, :] - lum) / den_chroma, s=shape) for c in (2, 0))
        return torch.cat([lum_x + cr, lum_x - cr - cb, lum_x + cb], -3)

    x = solve(yp)
    mask = None if clipped is None else yp >= clipped * gain
    if mask is not None and bool(mask.any()):
        previous = None
        for r in range(rounds):
            reblurred = torch.fft.irfft2(fk * torch.fft.rfft2(x), s=shape)
            # with momentum (r / (r + 3)): 16 rounds gain +0.9 dB near the highlights against +0.6 without
            step = reblurred if previous is None else reblurred + r / (r + 3) * (reblurred - previous)
            previous = reblurred
            x = solve(torch.where(mask, torch.maximum(yp, step), yp))
    return x[..., :h, :w]


def kernel_core(kernel: torch.Tensor) -> float:
    """The share of a kernel ``(k, k)``'s mass in its densest 3 x 3 window (anywhere in it): 1.0 for a
    blur of at most one pixel, about ``3 / L`` for a straight path of ``L`` px."""
    k = kernel.float()
    return (
        float(F.avg_pool2d(k[None, None], 3, 1).max() * 9 / k.sum().clamp_min(1e-12))
        if k.shape[-1] >= 3
        else 1.0
    )


def noise_sigma(y: torch.Tensor) -> float:
    """Robust estimate of the white-noise sigma of a grey ``(H, W)`` image: from the finest diagonal
    Haar detail, which holds little signal, as the mean of its smaller half (for Gaussian noise that
    mean is 0.3248 sigma; unlike the median it is not stuck on 8-bit quantisation steps)."""
    y = y.double()
    h, w = (y.shape[0] // 2) * 2, (y.shape[1] // 2) * 2
    d = (y[0:h:2, 0:w:2] - y[1:h:2, 0:w:2] - y[0:h:2, 1:w:2] + y[1:h:2, 1:w:2]).abs().flatten() / 2
    if d.numel() == 0:
        return 0.0
    small = d.sort().values[: max(1, d.numel() // 2)]
    return float(small.mean() / 0.3248)


def exposure_gain(y: torch.Tensor, reference: float = 0.6, most: float = 16.0) -> float:
    """The factor that brings a dark grey photo ``y`` ``(H, W)`` up to ``reference``: ``reference``
    over the photo's 99.5th percentile, within ``[1, most]`` (1 for a photo whose highlights reach it).

    The kernel estimate's edge threshold and the deconvolution's prior weight are absolute, chosen on
    photos whose highlights reach 0.6 or more: the same shake in a photo exposed 2x darker came out 2 dB
    worse, and 4x darker 6.3 dB worse, below the blurred photo (``benchmarks/shake_exposure.py``).
    Estimating and deconvolving ``gain * y`` (then dividing by ``gain``) treats a dark photo as the
    same scene exposed brighter. Large photos are sampled (every n-th pixel) for the percentile."""
    flat = y.detach().flatten()
    step = max(1, flat.numel() // 4_000_000)  # torch.quantile takes at most 2**24 values
    high = float(torch.quantile(flat[::step].float(), 0.995))
    return min(most, max(1.0, reference / high)) if high > 0 else most


def prior_weight(y: torch.Tensor | float, base: float = 4e-3, sigma_ref: float = 0.012) -> float:
    """The deconvolution prior weight for a grey ``(H, W)`` photo (or its noise sigma, if measured
    already): ``base`` (chosen on photos with noise up to ``sigma_ref``), raised with the square of
    the measured noise (:func:`noise_sigma`) above it, as the optimal weight of a prior grows with
    the noise variance."""
    sigma = y if isinstance(y, float) else noise_sigma(y)
    return base * max(1.0, (sigma / sigma_ref) ** 2)
