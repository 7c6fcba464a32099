"""Image and video quality metrics on ``(..., C, H, W)`` float tensors in [0, 1]."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def psnr(x: torch.Tensor, y: torch.Tensor, peak: float = 1.0) -> torch.Tensor:
    """PSNR in dB over the last three dims: ``(..., C, H, W) x2 -> (...)``; capped at 100 dB (identical)."""
    mse = (x.float() - y.float()).pow(2).mean(dim=(-3, -2, -1)).clamp(min=1e-10 * peak**2)
    return 10 * torch.log10(peak**2 / mse)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of standard deviation ``sigma`` px (radius ``max(1, round(3 sigma))``),
    replicate padding: ``(B, C, H, W) -> (B, C, H, W)`` float32 on ``x``'s device."""
    r = max(1, int(3 * sigma + 0.5))
    ax = torch.arange(-r, r + 1, dtype=torch.float32, device=x.device)
    k = torch.exp(-(ax**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x.float(), (r, r, r, r), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _gauss(window: int, sigma: float, device: torch.device) -> torch.Tensor:
    ax = torch.arange(window, dtype=torch.float32, device=device) - (window - 1) / 2
    g = torch.exp(-(ax**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(
    x: torch.Tensor, y: torch.Tensor, peak: float = 1.0, window: int = 11, sigma: float = 1.5
) -> torch.Tensor:
    """SSIM (Wang et al. 2004, Gaussian 11x11, sigma 1.5, 'valid' filtering) per image.

    ``x, y: (B, C, H, W)`` -> ``(B,)``, averaged over channels. Images smaller than the window use a
    window of the image's smaller side.
    """
    x, y = x.float(), y.float()
    c = x.shape[1]
    window = min(window, x.shape[-1], x.shape[-2])
    g = _gauss(window, sigma, x.device)
    k = (g[:, None] * g[None, :]).expand(c, 1, window, window).contiguous()

    def filt(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, k, groups=c)

    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mx, my = filt(x), filt(y)
    sxx, syy, sxy = filt(x * x) - mx**2, filt(y * y) - my**2, filt(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return s.mean(dim=(1, 2, 3))


def video_psnr(pred: torch.Tensor, target: torch.Tensor, peak: float = 1.0) -> torch.Tensor:
    """PSNR of ``(B, N, C, H, W)`` videos -> ``(B,)``, with the MSE pooled over all frames.

    Pooling (rather than averaging per-frame PSNRs) keeps one perfect frame — e.g. the given central
    frame, which a static baseline reproduces exactly — from dominating the score.
    """
    mse = (pred.float() - target.float()).pow(2).mean(dim=(1, 2, 3, 4)).clamp(min=1e-10 * peak**2)
    return 10 * torch.log10(peak**2 / mse)


def ppsnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """pPSNR: the better of forward and time-reversed order (motion direction is ambiguous). ``(B,)``."""
    return torch.maximum(video_psnr(pred, target), video_psnr(pred.flip(1), target))


def ordering_invariant_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The paper's Eq. 6 error summed over frame pairs, per video: ``(B, N, C, H, W) x2 -> (B,)``.

    ``sum_n mean| |p_n + p_m| - |t_n + t_m| | + mean| |p_n - p_m| - |t_n - t_m| |`` with ``m = N-1-n``
    for the first ``ceil(N/2)`` frames (the centre's self-pair included; the printed sum stops at N/2);
    mean over pixels and channels (the paper states neither its reduction nor its intensity range).
    Invariant to reversing ``pred`` in time.
    """
    n = pred.shape[1]
    total = pred.new_zeros(pred.shape[0], dtype=torch.float32)
    for i in range((n + 1) // 2):
        j = n - 1 - i
        a = ((pred[:, i] + pred[:, j]).abs() - (target[:, i] + target[:, j]).abs()).abs()
        b = ((pred[:, i] - pred[:, j]).abs() - (target[:, i] - target[:, j]).abs()).abs()
        total = total + a.float().mean(dim=(1, 2, 3)) + b.float().mean(dim=(1, 2, 3))
    return total


def check_alignable(h: int, w: int, max_shift: int) -> None:
    """ValueError unless an ``h`` x ``w`` image can be scored with shifts of up to ``max_shift`` px:
    :func:`aligned_psnr` crops ``max_shift`` px off each side, so each side must exceed twice that."""
    if min(h, w) <= 2 * max_shift:
        raise ValueError(
            f"{w}x{h} px is too small for the aligned PSNR: shifts of up to {max_shift} px need images "
            f"larger than {2 * max_shift} px on each side"
        )


def best_shift(x: torch.Tensor, y: torch.Tensor, max_shift: int = 8) -> tuple[int, int]:
    """The integer shift ``(dy, dx)``, each within ``max_shift`` px, at which ``x`` best matches ``y``
    (``(1, C, H, W)`` each): ``x[..., m + dy : H - m + dy, m + dx : W - m + dx]`` has the lowest mean
    squared error against ``y`` cropped by ``m = max_shift`` on each side (the first in row-major order
    on ties). ``torch.roll(x, (-dy, -dx), (-2, -1))`` then lines ``x`` up with ``y``'s interior.
    ValueError when ``y`` is not larger than ``2 * max_shift`` px on each side (nothing would be left
    to compare) or ``x`` differs from it in size.
    """
    m = max_shift
    h, w = y.shape[-2:]
    check_alignable(h, w, m)
    if x.shape[-2:] != y.shape[-2:]:
        raise ValueError(f"aligned PSNR of a {w}x{h} image against a {x.shape[-1]}x{x.shape[-2]} one")
    t = y[..., m : h - m, m : w - m].float()
    best, best_err = (0, 0), float("inf")
    for dy in range(-m, m + 1):
        for dx in range(-m, m + 1):
            err = float((x[..., m + dy : h - m + dy, m + dx : w - m + dx].float() - t).pow(2).mean())
            if err < best_err:
                best, best_err = (dy, dx), err
    return best


def aligned_psnr(x: torch.Tensor, y: torch.Tensor, max_shift: int = 8, peak: float = 1.0) -> torch.Tensor:
    """Best PSNR of ``x`` against ``y`` over integer shifts of up to ``max_shift`` px (``(1, C, H, W)``).

    The standard protocol for Levin et al.'s set, whose blur kernels are not centred: ``y`` is cropped
    by ``max_shift`` on each side and compared with every shifted crop of ``x`` (:func:`best_shift`).
    """
    m = max_shift
    h, w = y.shape[-2:]
    dy, dx = best_shift(x, y, m)
    return psnr(x[..., m + dy : h - m + dy, m + dx : w - m + dx], y[..., m : h - m, m : w - m], peak).max()
