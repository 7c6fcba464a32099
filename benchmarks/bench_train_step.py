"""Time one DM training step (forward, L1, backward, Adam) eager vs. ``torch.compile``, in one run.

    python benchmarks/bench_train_step.py [--rdbs 3 3 3 4] [--batch 8] [--crop 192] [--steps 20]

Random inputs, bf16 autocast + channels_last as in ``blurvid train deblur`` on CPU. Each variant runs
``--warmup`` untimed steps (compilation happens there), then the median of ``--steps`` timed steps.
Prints seconds per step and the ratio to eager; ``--json`` writes them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def _time_steps(net: torch.nn.Module, fn, x: torch.Tensor, t: torch.Tensor, warmup: int, steps: int) -> dict:
    opt = torch.optim.Adam(net.parameters(), lr=1e-5)
    dtype = torch.bfloat16 if x.device.type == "cpu" else torch.float16
    times = []
    t_start = time.perf_counter()
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        with torch.autocast(x.device.type, dtype=dtype):
            y = fn(x)
        loss = F.l1_loss(y.float(), t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i == warmup - 1:
            first = time.perf_counter() - t_start
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return {"step_s": statistics.median(times), "warmup_s": first if warmup else 0.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rdbs", type=int, nargs="+", default=[3, 3, 3, 4])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=192)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", nargs="+", default=["eager", "compile"])
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()

    from blurvid.models.deblur import DeblurNet, DMConfig

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x = torch.rand(a.batch, 3, a.crop, a.crop).contiguous(memory_format=torch.channels_last)
    t = torch.rand(a.batch, 3, a.crop, a.crop)
    res: dict[str, dict] = {}
    for v in a.variants:
        net = DeblurNet(DMConfig(rdbs=tuple(a.rdbs))).to(memory_format=torch.channels_last).train()
        fn = torch.compile(net) if v == "compile" else net
        res[v] = _time_steps(net, fn, x, t, a.warmup, a.steps)
        print(f"{v:8s} {res[v]['step_s']:.3f} s/step  (warm-up {res[v]['warmup_s']:.0f} s)", flush=True)
    base = res[a.variants[0]]["step_s"]
    for v in a.variants[1:]:
        res[v]["ratio_to_" + a.variants[0]] = res[v]["step_s"] / base
        print(f"{v} / {a.variants[0]}: {res[v]['step_s'] / base:.3f}")
    if a.json:
        a.json.write_text(json.dumps({"args": vars(a) | {"json": str(a.json)}, "results": res}, indent=2))


if __name__ == "__main__":
    main()
