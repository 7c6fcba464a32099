"""Small shared building blocks: residual block, residual dense block, ConvLSTM cell.

All modules are pure ``nn.Module``s on ``(B, C, H, W)`` tensors; none knows about files or devices.
"""

from __future__ import annotations

import torch
from torch import nn


def conv3x3(cin: int, cout: int, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    """3x3 convolution with padding 1: ``(B, cin, H, W) -> (B, cout, ceil(H/stride), ceil(W/stride))``."""
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=bias)


class ResBlock(nn.Module):
    """Two 3x3 convs with a leaky-ReLU between them and an identity skip: ``(B, C, H, W) -> (B, C, H, W)``."""

    def __init__(self, channels: int, slope: float = 0.1) -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)
        self.act = nn.LeakyReLU(slope, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


class EncoderBlock(nn.Module):
    """A stride-``s`` 3x3 conv + leaky ReLU, followed (when ``res``) by a :class:`ResBlock`.

    ``(B, cin, H, W) -> (B, cout, ceil(H/s), ceil(W/s))``.
    """

    def __init__(self, cin: int, cout: int, stride: int, res: bool = True, norm: bool = False) -> None:
        super().__init__()
        self.conv = conv3x3(cin, cout, stride)
        self.norm = nn.BatchNorm2d(cout) if norm else nn.Identity()
        self.act = nn.LeakyReLU(0.1, inplace=True)
        self.res = ResBlock(cout) if res else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res(self.act(self.norm(self.conv(x))))


class FrameEncoder(nn.Module):
    """The paper's 4-block convolutional encoder (Fig. 2a), shared by the RVE and the RVD's flow encoder.

    Block 1: 3x3 conv, stride 1, ``widths[0]`` channels. Blocks 2-4: a stride-2 3x3 conv + ResBlock with
    ``widths[1..3]`` channels. Input ``(B, cin, H, W)`` with H, W multiples of 8; returns the four feature
    maps ``[(B, w0, H, W), (B, w1, H/2, W/2), (B, w2, H/4, W/4), (B, w3, H/8, W/8)]``. ``norm`` adds a
    batch-norm after each block's first conv.
    """

    def __init__(
        self, cin: int, widths: tuple[int, int, int, int] = (16, 32, 64, 128), norm: bool = False
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            [EncoderBlock(cin, widths[0], 1, res=False, norm=norm)]
            + [EncoderBlock(widths[i - 1], widths[i], 2, norm=norm) for i in range(1, 4)]
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats


class ConvLSTMCell(nn.Module):
    """Convolutional LSTM cell (Shi et al. 2015) with a ``k x k`` kernel over ``[x, h]``.

    ``x: (B, cin, H, W)``, ``state = (h, c)`` each ``(B, hidden, H, W)`` or ``None`` (zeros).
    Returns the new ``(h, c)``.
    """

    def __init__(self, cin: int, hidden: int, kernel: int = 3) -> None:
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(cin + hidden, 4 * hidden, kernel, padding=kernel // 2)
        with torch.no_grad():  # forget-gate bias 1 (Jozefowicz et al. 2015): memory survives N steps at init
            self.gates.bias[hidden : 2 * hidden].fill_(1.0)

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden, x.shape[2], x.shape[3])
            state = (zeros, zeros)
        h, c = state
        i, f, o, g = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class ResidualDenseBlock(nn.Module):
    """Residual Dense Block (Zhang et al. 2018) with residual scaling.

    ``layers`` 3x3 convs, each seeing the concatenation of the block input and all previous outputs
    (``growth`` channels each), a 1x1 local feature fusion back to ``channels``, and
    ``x + scale * fused``. ``(B, C, H, W) -> (B, C, H, W)``.
    """

    def __init__(self, channels: int, growth: int, layers: int = 4, scale: float = 0.2) -> None:
        super().__init__()
        self.convs = nn.ModuleList(conv3x3(channels + i * growth, growth) for i in range(layers))
        self.fuse = nn.Conv2d(channels + layers * growth, channels, 1)
        self.act = nn.LeakyReLU(0.1, inplace=True)
        self.scale = scale

    @torch.no_grad()
    def make_identity(self) -> None:
        """Zero the fusion layer so the block maps ``x -> x`` (a new block grown into a trained net)."""
        self.fuse.weight.zero_()
        self.fuse.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for conv in self.convs:
            feats.append(self.act(conv(torch.cat(feats, dim=1))))
        return x + self.scale * self.fuse(torch.cat(feats, dim=1))
