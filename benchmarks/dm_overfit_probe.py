"""Can the DM learn to undo straight blur at all? Fit it to a handful of fixed blurred/sharp pairs.

    python benchmarks/dm_overfit_probe.py --photos $DATA/sharp/bsd100 --weights weights/dm-v13.safetensors \
        [--count 16 --held-out 16 --size 128 --length 9 --steps 400 --lr 2e-4] [--json out.json]

``--count`` central crops of training photos are blurred by straight, constant-speed line kernels of
``--length`` px at fixed random angles (no noise, 8-bit, the target exactly where the blur is centred:
as ``dm_linear_probe.py``). The DM is then trained on exactly these pairs (Adam, L1, bf16 autocast,
batch 8) and its PSNR on them is printed every ``--every`` steps, beside the input's and what the
deconvolution of ``deblur --shake`` reaches with the true kernels. A network that can represent the
inverse climbs towards that bar within a few hundred steps on so few pairs; one that stalls far below it
is limited by its architecture or optimisation, not by the amount or variety of its training data.
``--held-out`` more photos, blurred the same way but never trained on, tell learning the inverse from
memorising the pairs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dm_linear_probe import blur, center_crop, line_kernel, psnr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", nargs="+", required=True, help="training photos (never the validation set)")
    ap.add_argument("--weights", type=Path, required=True, help="the DM to start from (.safetensors)")
    ap.add_argument("--count", type=int, default=16)
    ap.add_argument("--held-out", type=int, default=16, help="photos after the first --count, not trained on")
    ap.add_argument("--size", type=int, default=128, help="crop side, a multiple of 32")
    ap.add_argument("--length", type=float, default=9.0)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    from blurvid import shake, weights
    from blurvid.data.datasets import list_images
    from blurvid.pipeline import build_from_checkpoint

    g = torch.Generator().manual_seed(a.seed)
    sets: dict[str, tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]] = {}
    files = list_images(a.photos)
    for name, chosen in (("train", files[: a.count]), ("held_out", files[a.count : a.count + a.held_out])):
        sharp, blurred, deconv = [], [], []
        for f in chosen:
            x = center_crop(f, a.size)
            k = line_kernel(a.length, float(torch.rand((), generator=g)) * math.pi)
            y = blur(x, k)
            sharp.append(x)
            blurred.append(y)
            deconv.append(shake.deconvolve_rgb(y, k.float(), shake.prior_weight(y.mean(0))).clamp(0, 1))
        if sharp:
            sets[name] = (torch.stack(sharp), torch.stack(blurred), deconv)
    xs, ys = sets["train"][:2]

    def mean_psnr(outs: torch.Tensor | list[torch.Tensor], targets: torch.Tensor) -> float:
        return sum(psnr(o, x) for o, x in zip(outs, targets, strict=True)) / len(targets)

    state, meta = weights.load_checkpoint(a.weights)
    net = build_from_checkpoint("dm", state, meta["config"]).to(memory_format=torch.channels_last)

    def score(step: int, **extra: float) -> dict:
        net.eval()
        row = {"step": step}
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            for name, (x, y, _) in sets.items():
                out = net(y.contiguous(memory_format=torch.channels_last)).float().clamp(0, 1)
                row[name] = mean_psnr(out, x)
        net.train()
        print(f"step {step}: " + "  ".join(f"DM on {n} {row[n]:.2f}" for n in sets), flush=True)
        return row | extra

    base = {
        name: {"input": mean_psnr(y, x), "true_kernel": mean_psnr(d, x)} for name, (x, y, d) in sets.items()
    }
    for name, b in base.items():
        print(f"{name}: input {b['input']:.2f}  true-kernel deconvolution {b['true_kernel']:.2f}", flush=True)
    curve = [score(0)]
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    t0 = time.time()
    for step in range(1, a.steps + 1):
        idx = torch.randperm(len(xs), generator=g)[: a.batch]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = net(ys[idx].contiguous(memory_format=torch.channels_last))
        loss = (out.float() - xs[idx]).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % a.every == 0 or step == a.steps:
            curve.append(score(step, loss=float(loss.detach()), minutes=(time.time() - t0) / 60))
    if a.json:
        args = {k: str(v) for k, v in vars(a).items()}
        a.json.write_text(json.dumps({"args": args, "before": base, "curve": curve}, indent=2))


if __name__ == "__main__":
    main()
