"""Losses of the paper (Sec. 2.4): multi-scale L1, total variation, ordering-invariant Eq. 6."""

from __future__ import annotations

import torch

from ..metrics import ordering_invariant_error


def tv(flow: torch.Tensor) -> torch.Tensor:
    """Total variation ``mean(|d/dx f| + |d/dy f|)`` of ``(B, 2, H, W)`` -> scalar (0 for a constant)."""
    dx = (flow[..., :, 1:] - flow[..., :, :-1]).abs().mean()
    dy = (flow[..., 1:, :] - flow[..., :-1, :]).abs().mean()
    return dx + dy


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error."""
    return (pred.float() - target.float()).abs().mean()


def sequence_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Autoencoder data term ``L_j = sum_n |x^_n - x_n|_1`` (mean over pixels): ``(B, N, C, H, W)`` -> scalar."""
    return (pred.float() - target.float()).abs().mean(dim=(0, 2, 3, 4)).sum()


def ordering_invariant(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 6 as a loss: batch mean of :func:`blurvid.metrics.ordering_invariant_error`."""
    return ordering_invariant_error(pred, target).mean()


def gradient_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between horizontal and vertical image gradients (an optional edge term for the DM)."""
    p, t = pred.float(), target.float()
    dx = ((p[..., :, 1:] - p[..., :, :-1]) - (t[..., :, 1:] - t[..., :, :-1])).abs().mean()
    dy = ((p[..., 1:, :] - p[..., :-1, :]) - (t[..., 1:, :] - t[..., :-1, :])).abs().mean()
    return dx + dy


def fft_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between the 2-D spectra (``rfft2``, orthonormal, real and imaginary parts) of ``(..., H, W)``
    images -> scalar; an optional frequency term for the DM that weights lost fine detail (high
    frequencies) as much as the rest. With the orthonormal transform a white error of per-pixel size
    ``e`` gives coefficients of size ~``e``, so the term is on the scale of :func:`l1`."""
    d = torch.fft.rfft2(pred.float() - target.float(), norm="ortho")  # the transform is linear
    return torch.view_as_real(d).abs().mean()
