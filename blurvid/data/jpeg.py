"""JPEG compression artefacts in torch, for synthesis on any device (batched, per-sample quality).

What a baseline JPEG encoder and decoder do to the pixels, as libjpeg (and so PIL) does it by default:
JFIF YCbCr with 8-bit samples, 4:2:0 chroma (2x2 averages), 8x8 DCT blocks quantised by the standard's
Annex K tables scaled to the quality as IJG does, then the decoder's inverse, its triangular ("fancy")
chroma upsampling and 8-bit RGB. Entropy coding is lossless and left out; libjpeg's integer DCT and
fixed-point colour arithmetic are replaced by exact float ones, so the result is close to PIL's output
but not byte-identical to it (``tests/test_synth.py`` measures how close).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

# ITU-T T.81 Annex K, tables K.1 (luminance) and K.2 (chrominance), in row-major (not zigzag) order
_LUMA = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)
_CHROMA = (
    (17, 18, 24, 47, 99, 99, 99, 99),
    (18, 21, 26, 66, 99, 99, 99, 99),
    (24, 26, 56, 99, 99, 99, 99, 99),
    (47, 66, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99),
)


def quant_table(quality: int, chroma: bool = False) -> torch.Tensor:
    """The ``(8, 8)`` quantisation table IJG libjpeg uses at ``quality`` (1-100, baseline: <= 255)."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    base = torch.tensor(_CHROMA if chroma else _LUMA, dtype=torch.int64)
    return ((base * scale + 50) // 100).clamp(1, 255).float()


@functools.lru_cache(maxsize=4)
def _dct_matrix(device: torch.device) -> torch.Tensor:
    """Orthonormal 8-point DCT-II matrix ``D`` (``D @ x`` transforms a column), float32."""
    k = torch.arange(8, dtype=torch.float64)
    d = torch.cos((2 * k[None, :] + 1) * k[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return d.float().to(device)


def _blocks(x: torch.Tensor) -> torch.Tensor:
    """``(B, H, W)`` -> ``(B, H/8, W/8, 8, 8)`` blocks (a view when contiguous)."""
    b, h, w = x.shape
    return x.view(b, h // 8, 8, w // 8, 8).transpose(2, 3)


def _unblocks(x: torch.Tensor) -> torch.Tensor:
    b, nh, nw, _, _ = x.shape
    return x.transpose(2, 3).reshape(b, nh * 8, nw * 8)


def _quantise(plane: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
    """Level-shifted samples ``(B, H, W)`` (multiples of 8) through DCT, quantisation by ``tables
    (B, 8, 8)`` and the inverse DCT."""
    d = _dct_matrix(plane.device)
    blk = _blocks(plane)
    coef = d @ blk @ d.T
    q = tables[:, None, None]
    coef = torch.round(coef / q) * q
    return _unblocks(d.T @ coef @ d)


def jpeg_round_trip(img: torch.Tensor, quality: int | Sequence[int]) -> torch.Tensor:
    """Encode and decode ``img: (B, 3, H, W)`` sRGB in [0, 1] as 4:2:0 baseline JPEG at ``quality``
    (one for all, or one per image). Returns the decoded ``(B, 3, H, W)``, 8-bit values in [0, 1].

    Edges are replicated to whole 16x16 macro-blocks as an encoder does, and cropped back.
    """
    b, _, h, w = img.shape
    qs = [int(quality)] * b if isinstance(quality, int) else [int(q) for q in quality]
    if len(qs) != b:
        raise ValueError(f"{len(qs)} qualities for {b} images")
    dev = img.device
    luma_q = torch.stack([quant_table(q) for q in qs]).to(dev)
    chroma_q = torch.stack([quant_table(q, chroma=True) for q in qs]).to(dev)
    x = torch.round(img.clamp(0, 1) * 255)  # the encoder reads 8-bit RGB
    ph, pw = -h % 16, -w % 16
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    r, g, bl = x.unbind(1)
    y = torch.round(0.299 * r + 0.587 * g + 0.114 * bl)
    cb = torch.round(-0.168736 * r - 0.331264 * g + 0.5 * bl + 128)
    cr = torch.round(0.5 * r - 0.418688 * g - 0.081312 * bl + 128)
    y = _quantise(y - 128, luma_q) + 128
    # 4:2:0: chroma averaged over 2x2, coded at half resolution, upsampled by the decoder's triangular
    # filter (weights 3/4, 1/4 per axis with replicated edges: bilinear, align_corners=False)
    chroma = F.avg_pool2d(torch.stack([cb, cr], 1), 2)
    chroma = torch.stack([_quantise(chroma[:, i] - 128, chroma_q) for i in range(2)], 1)
    chroma = torch.round(chroma + 128).clamp(0, 255)
    cb, cr = (F.interpolate(chroma, scale_factor=2, mode="bilinear", align_corners=False) - 128).unbind(1)
    y = torch.round(y).clamp(0, 255)
    rgb = torch.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], 1)
    return (torch.round(rgb).clamp(0, 255) / 255)[:, :, :h, :w]
