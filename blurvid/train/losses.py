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


def align_to_target(
    pred: torch.Tensor, target: torch.Tensor, max_shift: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each sample's prediction moved by the integer shift (within ``max_shift`` px) at which it best
    matches its target, for a loss that judges sharpness but not placement.

    ``pred``, ``target``: ``(B, C, H, W)``. Returns ``(pred', target')``, both ``(B, C, H - 2m, W - 2m)``
    with ``m = max_shift``: ``target'`` is the target's interior and ``pred'[b]`` the crop of ``pred[b]``
    shifted by the ``(dy, dx)`` of lowest mean absolute error (chosen without gradient). ``max_shift`` 0
    returns the inputs unchanged.
    """
    m = max_shift
    if m <= 0:
        return pred, target
    h, w = target.shape[-2:]
    t = target[..., m : h - m, m : w - m]
    with torch.no_grad():
        p, tf = pred.detach().float(), t.float()
        errs = torch.stack(
            [
                (p[..., m + dy : h - m + dy, m + dx : w - m + dx] - tf).abs().mean(dim=(1, 2, 3))
                for dy in range(-m, m + 1)
                for dx in range(-m, m + 1)
            ],
            dim=1,
        )  # (B, (2m+1)^2)
        best = errs.argmin(dim=1).tolist()
    side = 2 * m + 1
    crops = []
    for b, k in enumerate(best):
        dy, dx = k // side - m, k % side - m
        crops.append(pred[b, :, m + dy : h - m + dy, m + dx : w - m + dx])
    return torch.stack(crops), t
