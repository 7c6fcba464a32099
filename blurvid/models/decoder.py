"""RVD — the recurrent video decoder (Sec. 2.2, Fig. 3).

At each step ``n``: the flow encoder (same 4-block structure as the RVE) reads the previous step's
full-resolution flow ``f(n-1, 4)``; a 3x3 ConvLSTM, whose first state is the motion embedding, updates
its state; the flow decoder turns the state into flows at 1/8, 1/4, 1/2 and 1 scale (4x4 deconvs
up-sampling, U-Net skips from the flow encoder, each finer flow refining the up-sampled coarser one);
each flow warps the correspondingly down-sampled central sharp frame into frame ``n``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ConvLSTMCell, FrameEncoder, conv3x3
from .encoders import VideoConfig, split_state
from .warp import downsample, warp


@dataclass
class DecodeResult:
    """``flows[j]``: ``(B, N, 2, H/s, W/s)`` and ``frames[j]``: ``(B, N, 3, H/s, W/s)`` for s = 8, 4, 2, 1;
    ``embedding``: the motion representation decoded, when the caller keeps it (training); ``probe``:
    ``(B, N, 2, H/8, W/8)`` flows read from the embedding by a training-only head, when there is one."""

    flows: list[torch.Tensor]
    frames: list[torch.Tensor]
    embedding: torch.Tensor | None = None
    probe: torch.Tensor | None = None


class FlowDecoder(nn.Module):
    """Flow decoder FD: ConvLSTM output + flow-encoder skips -> flows at 1/8, 1/4, 1/2, 1 scale (pixels)."""

    def __init__(self, widths: tuple[int, int, int, int], hidden: int) -> None:
        super().__init__()
        self.flow8 = conv3x3(hidden, 2)
        ins = (hidden, widths[2], widths[1])
        outs = (widths[2], widths[1], widths[0])
        self.deconvs = nn.ModuleList(
            nn.ConvTranspose2d(i, o, 4, 2, 1) for i, o in zip(ins, outs, strict=True)
        )
        # fuse: [deconv features, up-sampled flow, encoder skip] -> features at that scale
        self.fuse = nn.ModuleList(conv3x3(2 * o + 2, o) for o in outs)
        self.flows = nn.ModuleList(conv3x3(o, 2) for o in outs)
        self.act = nn.LeakyReLU(0.1, inplace=True)
        for head in [self.flow8, *self.flows]:  # start from small flows
            nn.init.normal_(head.weight, std=1e-3)
            nn.init.zeros_(head.bias)

    def forward(self, h: torch.Tensor, skips: list[torch.Tensor]) -> list[torch.Tensor]:
        flow = self.flow8(h)  # (B, 2, H/8, W/8)
        flows = [flow]
        x = h
        for j in range(3):
            up_flow = 2 * F.interpolate(flow, scale_factor=2, mode="bilinear", align_corners=False)
            x = self.act(self.deconvs[j](x))
            x = self.act(self.fuse[j](torch.cat([x, up_flow, skips[2 - j]], dim=1)))
            flow = up_flow + self.flows[j](x)
            flows.append(flow)
        return flows


class RecurrentVideoDecoder(nn.Module):
    """RVD: ``(embedding (B, 2*hidden, H/8, W/8), center (B, 3, H, W), n) -> DecodeResult``.

    Any number of frames ``n``; H, W multiples of 8. ``warp_frames=False`` skips warping (flows only).
    """

    def __init__(self, config: VideoConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or VideoConfig()
        self.flow_encoder = FrameEncoder(2, cfg.widths)
        self.lstm = ConvLSTMCell(cfg.widths[3], cfg.hidden, 3)
        self.decoder = FlowDecoder(cfg.widths, cfg.hidden)

    def step(
        self, prev_flow: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[list[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """One recurrence: ``prev_flow (B, 2, H, W)`` and state -> (flows at 4 scales, new state)."""
        feats = self.flow_encoder(prev_flow * self.config.flow_input_scale)
        state = self.lstm(feats[3], state)
        return self.decoder(state[0], feats[:3]), state

    def forward(
        self, embedding: torch.Tensor, center: torch.Tensor, n: int, warp_frames: bool = True
    ) -> DecodeResult:
        b, _, h, w = center.shape
        state = split_state(embedding)
        prev = center.new_zeros(b, 2, h, w)
        per_step: list[list[torch.Tensor]] = []
        for _ in range(n):
            flows, state = self.step(prev, state)
            per_step.append(flows)
            prev = flows[-1]
        flows = [torch.stack([s[j] for s in per_step], dim=1) for j in range(4)]  # coarse -> fine
        frames: list[torch.Tensor] = []
        if warp_frames:
            for j, f in enumerate(flows):
                c = downsample(center, 2 ** (3 - j))
                fr = warp(c.unsqueeze(1).expand(-1, n, -1, -1, -1).flatten(0, 1), f.flatten(0, 1).float())
                frames.append(fr.view(b, n, *fr.shape[1:]))
        return DecodeResult(flows=flows, frames=frames)
