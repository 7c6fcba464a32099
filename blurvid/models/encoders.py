"""Motion encoders: RVE (sharp frames -> motion embedding) and BIE (blurred + sharp centre -> embedding).

The motion embedding is the ConvLSTM state ``(h, c)`` stacked on channels: ``(B, 2 * hidden, H/8, W/8)``
for an ``(B, 3, H, W)`` input (H, W multiples of 8). The RVD starts its own ConvLSTM from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import Config, check_counts, check_number
from .blocks import ConvLSTMCell, FrameEncoder


@dataclass
class VideoConfig(Config):
    """Architecture of RVE, RVD and BIE (one config: they must agree on the embedding)."""

    widths: tuple[int, int, int, int] = (16, 32, 64, 128)  # encoder blocks A1..A4 (paper Fig. 2a)
    hidden: int = 128  # ConvLSTM channels
    bie_widths: tuple[int, ...] = (32, 64, 64, 128, 128, 256)  # BIE conv layers 1..6 (layer 7 -> 2*hidden)
    flow_input_scale: float = 0.1  # the previous flow is fed to the flow encoder multiplied by this
    # RVE input per time step: 'frame' (the paper) or 'frame+diff' (the frame and its difference from the
    # central frame, 6 channels: motion is visible at full resolution before the stride-8 encoder)
    rve_input: str = "frame"
    # the RVE's final (h, c) times this: with the default init the ConvLSTM's state is ~0.02, too weak
    # for the RVD to notice before it learns to ignore it (the BIE's embedding starts ~1 and grows)
    rve_scale: float = 1.0
    # batch-norm in the RVE's frame encoder (the BIE has it; without it the RVE collapsed)
    rve_norm: bool = False
    # N the networks were trained with: the RVD's steps span the exposure in this many frames (inference
    # samples other counts from that trajectory); recorded at training, 9 in checkpoints made before it
    frames: int = 9

    def __post_init__(self) -> None:  # a config file's mistake is a message, not a failed layer
        check_counts("model widths", self.widths, 4)
        check_counts("model bie_widths", self.bie_widths, 6)
        check_counts("model hidden", self.hidden)
        check_counts("model frames", self.frames, least=2)
        check_number("model flow_input_scale", self.flow_input_scale)
        check_number("model rve_scale", self.rve_scale)
        if self.rve_input not in ("frame", "frame+diff"):
            raise ValueError(f"model rve_input {self.rve_input!r}: use 'frame' or 'frame+diff'")


def split_state(embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, 2C, h, w) -> (h, c)`` each ``(B, C, h, w)``."""
    h, c = embedding.chunk(2, dim=1)
    return h.contiguous(), c.contiguous()


class RecurrentVideoEncoder(nn.Module):
    """RVE: ``frames (B, N, 3, H, W) -> embedding (B, 2*hidden, H/8, W/8)``; any N >= 1.

    Each frame goes through the 4-block encoder; a 3x3 ConvLSTM reads the 1/8-scale features in time
    order and its last state is the motion embedding.
    """

    def __init__(self, config: VideoConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or VideoConfig()
        if cfg.rve_input not in ("frame", "frame+diff"):
            raise ValueError(f"rve_input must be 'frame' or 'frame+diff', not {cfg.rve_input!r}")
        self.diff = cfg.rve_input == "frame+diff"
        self.encoder = FrameEncoder(6 if self.diff else 3, cfg.widths, norm=cfg.rve_norm)
        self.lstm = ConvLSTMCell(cfg.widths[3], cfg.hidden, 3)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        b, n = frames.shape[:2]
        if self.diff:  # (B, N, 6, H, W): each frame and its difference from the central one
            c = (n - 1) // 2  # the paper's central frame x_ceil(N/2)
            frames = torch.cat([frames, frames - frames[:, c : c + 1]], dim=2)
        feats = self.encoder(frames.flatten(0, 1))[3]  # (B*N, w3, H/8, W/8) — all frames in one pass
        feats = feats.view(b, n, *feats.shape[1:])
        state = None
        for i in range(n):
            state = self.lstm(feats[:, i], state)
        emb = torch.cat(state, dim=1)
        return emb * self.config.rve_scale if self.config.rve_scale != 1.0 else emb


class BlurredImageEncoder(nn.Module):
    """BIE: ``blurred (B, 3, H, W)``, ``sharp (B, 3, H, W)`` -> ``embedding (B, 2*hidden, H/8, W/8)``.

    7 conv layers (7x7, 5x5 then 3x3 kernels; three of stride 2), batch-norm + leaky ReLU after every
    layer but the last. H, W multiples of 8.
    """

    def __init__(self, config: VideoConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or VideoConfig()
        w = cfg.bie_widths
        kernels = (7, 5, 3, 3, 3, 3, 3)
        strides = (1, 2, 1, 2, 1, 2, 1)
        chans = (6, *w, 2 * cfg.hidden)
        layers: list[nn.Module] = []
        for i in range(7):
            layers.append(
                nn.Conv2d(chans[i], chans[i + 1], kernels[i], strides[i], kernels[i] // 2, bias=i == 6)
            )
            if i < 6:
                layers += [nn.BatchNorm2d(chans[i + 1]), nn.LeakyReLU(0.1, inplace=True)]
        self.net = nn.Sequential(*layers)

    def forward(self, blurred: torch.Tensor, sharp: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([blurred, sharp], dim=1))
