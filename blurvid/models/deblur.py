"""DM — the paper's deblurring module (Sec. 2.5, Fig. 4).

U-Net-like encoder/decoder working on a space-to-depth copy of the input:

* space-to-depth (factor 2): ``(B, 3, H, W) -> (B, 12, H/2, W/2)``; all heavy work runs at <= 1/2 scale;
* encoder: a head conv, then Residual Dense Blocks at 1/2, 1/4, 1/8 and 1/16 scale joined by stride-2
  convs;
* decoder: 3 up-sampling blocks (bottleneck block + 4x4 deconv) back to 1/2 scale, each merged with the
  encoder feature of the same size through a 1x1 projection layer;
* two final convs predict a 12-channel residual, depth-to-space returns it to full resolution and it is
  added to the input;
* no normalization layers; residual scaling inside every RDB.

Input sides must be multiples of :attr:`DeblurNet.multiple` (the pipeline pads and crops back).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Config, check_counts, check_number
from .blocks import ResidualDenseBlock, conv3x3


@dataclass
class DMConfig(Config):
    """Architecture of :class:`DeblurNet` (saved inside every checkpoint)."""

    widths: tuple[int, int, int, int] = (48, 96, 128, 192)  # channels at 1/2, 1/4, 1/8, 1/16 scale
    growth: tuple[int, int, int, int] = (24, 32, 48, 48)  # RDB growth rate per scale
    rdb_layers: int = 4  # convs per RDB
    rdbs: tuple[int, int, int, int] = (1, 1, 1, 2)  # RDBs per scale
    res_scale: float = 0.2

    def __post_init__(self) -> None:  # a config file's mistake is a message, not a failed layer
        for name in ("widths", "growth", "rdbs"):
            check_counts(f"model {name}", getattr(self, name), 4)
        check_counts("model rdb_layers", self.rdb_layers)
        check_number("model res_scale", self.res_scale, high=1.0)


def autocast_dtype(device_type: str) -> torch.dtype | None:
    """The dtype autocast runs convolutions in on ``device_type`` here and now; None outside autocast."""
    if hasattr(torch, "get_autocast_dtype"):  # torch >= 2.4
        return torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else None
    if device_type == "cpu":  # torch 2.3
        return torch.get_autocast_cpu_dtype() if torch.is_autocast_cpu_enabled() else None
    return torch.get_autocast_gpu_dtype() if torch.is_autocast_enabled() else None


def full_precision(conv: nn.Module, x: torch.Tensor, autocast_output: bool = True) -> torch.Tensor:
    """``conv(x)`` outside any autocast, in the dtype of ``conv``'s weights (float32 unless the module
    was cast): ``(B, C, H, W) -> conv's output``. With ``autocast_output`` the result is then given the
    dtype autocast gives other layers (if it is on), so that the layers after it run as before.

    The DM's input and output convolutions run this way. Under bf16 autocast on the CPU their weight
    gradients carried an error that points the same way batch after batch (mean cosine 0.70 between
    two batches' errors), as large as their signal: averaged over 64 samples, bf16 gradients no
    longer correlated with the float32 ones of other samples (cosine -0.07 against 0.16 between
    float32 halves; ``benchmarks/grad_noise.py --bf16 16``). Adam kept the error to those two convs,
    and a CPU run's path did not change measurably with the fix (session 36), but their updates are
    now the gradient's. In float32 they cost little (12 channels in or out, at half resolution):
    720p deblurring x1.014, a training step x1.038 (``benchmarks/dm_precision.py --speed``).
    """
    with torch.autocast(x.device.type, enabled=False):
        y = conv(x.to(conv.weight.dtype))
    dtype = autocast_dtype(x.device.type) if autocast_output else None
    return y if dtype is None else y.to(dtype)


class Bottleneck(nn.Module):
    """Residual bottleneck block (1x1 reduce, 3x3, 1x1 expand): ``(B, C, H, W) -> (B, C, H, W)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        mid = max(channels // 2, 8)
        self.body = nn.Sequential(
            nn.Conv2d(channels, mid, 1),
            nn.LeakyReLU(0.1, inplace=True),
            conv3x3(mid, mid),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(mid, channels, 1),
        )

    @torch.no_grad()
    def make_identity(self) -> None:
        """Zero the expanding conv so the block maps ``x -> x`` (a new block grown into a trained net)."""
        self.body[-1].weight.zero_()
        self.body[-1].bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpBlock(nn.Module):
    """Bottleneck block + 4x4 stride-2 deconv: ``(B, cin, H, W) -> (B, cout, 2H, 2W)``."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.bottleneck = Bottleneck(cin)
        self.deconv = nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1)
        self.act = nn.LeakyReLU(0.1, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.deconv(self.bottleneck(x)))


class DeblurNet(nn.Module):
    """The deblurring module: ``blurred (B, 3, H, W) in [0, 1] -> sharp (B, 3, H, W)``.

    H and W must be multiples of ``multiple`` (32; the deepest scale, 1/16, would need 16: 32 is what
    the shipped networks were trained and measured with, and what the pipeline's tiles are rounded to).
    The output is not clamped (the caller clamps).
    """

    multiple = 32

    def __init__(self, config: DMConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or DMConfig()
        w, g = cfg.widths, cfg.growth
        self.head = conv3x3(12, w[0])

        def rdbs(i: int) -> nn.Sequential:
            return nn.Sequential(
                *[ResidualDenseBlock(w[i], g[i], cfg.rdb_layers, cfg.res_scale) for _ in range(cfg.rdbs[i])]
            )

        self.enc = nn.ModuleList(rdbs(i) for i in range(4))
        self.down = nn.ModuleList(
            nn.Sequential(conv3x3(w[i], w[i + 1], stride=2), nn.LeakyReLU(0.1, inplace=True))
            for i in range(3)
        )
        self.up = nn.ModuleList(UpBlock(w[i + 1], w[i]) for i in reversed(range(3)))
        self.proj = nn.ModuleList(nn.Conv2d(w[i], w[i], 1) for i in reversed(range(3)))
        self.tail = nn.Sequential(conv3x3(w[0], w[0]), nn.LeakyReLU(0.1, inplace=True), conv3x3(w[0], 12))
        with torch.no_grad():  # start close to the identity mapping: a small initial residual
            self.tail[-1].weight.mul_(0.1)
            self.tail[-1].bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % self.multiple or w % self.multiple:
            raise ValueError(f"DeblurNet input sides must be multiples of {self.multiple}, got {h}x{w}")
        f = full_precision(self.head, F.pixel_unshuffle(x, 2))  # (B, w0, H/2, W/2)
        skips = []
        for i in range(4):
            f = self.enc[i](f)  # (B, w_i, H/2^(i+1), W/2^(i+1))
            if i < 3:
                skips.append(f)
                f = self.down[i](f)
        for up, proj, skip in zip(self.up, self.proj, reversed(skips), strict=True):
            f = up(f) + proj(skip)  # back up one scale, merged with the encoder's projection
        r = full_precision(self.tail[-1], self.tail[:-1](f), autocast_output=False)  # (B, 12, H/2, W/2)
        return x + F.pixel_shuffle(r, 2).to(x.dtype)  # (B, 3, H, W)
