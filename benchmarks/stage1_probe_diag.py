"""Can a motion encoder learn the true coarse flows from N sharp frames? (the stage-1 diagnosis)

    python benchmarks/stage1_probe_diag.py --data ../shared/data/sharp/bsd100 ../shared/data/sharp/urban100 \
        --encoder frame frame+diff norm diff+norm stack

Trains only an encoder and the training-time motion probe (no RVD) on a fixed pool of synthesised
sequences (default synthesis, 64 px, N = 9) with L1 to the true 1/8-scale flows, and prints the held-out
error next to the zero-flow error. Encoders: the paper's RVE ('frame'), with the difference-to-centre
input ('frame+diff'), with batch-norm ('norm'), both ('diff+norm'), or a plain CNN over the stacked
frames ('stack'). An encoder that cannot get below the zero-flow error here cannot feed an RVD either.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from blurvid.data.datasets import PhotoSynthDataset
from blurvid.data.synth import SynthConfig
from blurvid.models.blocks import FrameEncoder
from blurvid.models.encoders import RecurrentVideoEncoder, VideoConfig
from blurvid.train.video_tasks import MotionProbe, flows_at_scale

VARIANTS = {
    "frame": VideoConfig(),
    "frame+diff": VideoConfig(rve_input="frame+diff"),
    "norm": VideoConfig(rve_norm=True),
    "diff+norm": VideoConfig(rve_input="frame+diff", rve_norm=True),
}


class StackedFrames(nn.Module):
    """A plain CNN over the N frames stacked on channels: ``(B, N, 3, H, W) -> (B, 256, H/8, W/8)``."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.enc = FrameEncoder(3 * n, (32, 64, 128, 128))
        self.out = nn.Conv2d(128, 256, 1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.out(self.enc(frames.flatten(1, 2))[3])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", nargs="+", required=True, help="sharp photo folders")
    ap.add_argument("--encoder", nargs="+", default=[*VARIANTS, "stack"])
    ap.add_argument("--pool", type=int, default=256, help="sequences (the last 32 are held out)")
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(2)
    ds = PhotoSynthDataset(args.data, SynthConfig(size=args.size, subframes=2), seed=0)
    items = [ds[i] for i in range(args.pool)]
    frames = torch.stack([it["frames"] for it in items])
    flows = torch.stack([it["flows"] for it in items])
    target = flows_at_scale(flows, 8)
    train_n = args.pool - 32
    print(f"zero-flow error: held-out {target[train_n:].abs().mean():.4f}")
    for name in args.encoder:
        torch.manual_seed(0)
        cfg = VARIANTS.get(name, VideoConfig())
        enc = StackedFrames(frames.shape[1]) if name == "stack" else RecurrentVideoEncoder(cfg)
        head = MotionProbe(cfg, frames.shape[1])
        opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], 3e-4)
        t0 = time.time()
        for it in range(args.iters + 1):
            idx = torch.randint(0, train_n, (16,))
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = (head(enc(frames[idx])).float() - target[idx]).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if it % 100 == 0:
                with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
                    held = (head(enc(frames[train_n:])).float() - target[train_n:]).abs().mean()
                print(
                    f"{name:10s} it {it:4d}  held-out error {held:.4f}  ({time.time() - t0:.0f} s)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
