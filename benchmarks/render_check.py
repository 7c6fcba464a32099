"""Device-side synthesis (``synth_on_device``): does a GPU render what the CPU renders, and how fast?

Plans are drawn from a training config's photos (as the data workers draw them). The same
:class:`~blurvid.data.synth.PlanBatch` is rendered on the CPU and on ``--device``, with the noise left out
(the device draws its own), and the largest differences of the targets and the blurred images are
reported. Then render time per batch is measured on the device for each ``--batch`` (median of
``--repeat``, after a warm-up)::

    python benchmarks/render_check.py --config weights/configs/dm-v14.json --data .gpu/sharp/bsd100 \
        --batch 16 32 64 --json render_check.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from blurvid.data.datasets import PhotoSynthDataset
from blurvid.data.synth import PlanBatch, render_batch
from blurvid.train.loop import synth_config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import load_config, sync


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--data", action="append", default=None, help="overrides the config's photo folders")
    ap.add_argument("--batch", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--compare", type=int, default=16, help="plans compared between the CPU and the device")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    _, cfg, dev = load_config(a.config, a.data, device=a.device)
    ds = PhotoSynthDataset(
        cfg.data,
        synth_config(cfg),
        seed=cfg.seed,
        jpeg_p=cfg.jpeg_p,
        center_only=cfg.stage == "deblur",
        plans=True,
    )
    res: dict = {
        "config": a.config,
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
    }

    plans = [dataclasses.replace(ds[i]["plan"], noise=None) for i in range(a.compare)]
    pb = PlanBatch.collate(plans)
    cpu, on_dev = render_batch(pb, "cpu"), render_batch(pb, dev)
    diff = {k: float((cpu[k] - on_dev[k].cpu()).abs().max()) for k in ("blurred", "frames")}
    mean = {k: float((cpu[k] - on_dev[k].cpu()).abs().mean()) for k in ("blurred", "frames")}
    res["cpu_vs_device"] = {"max_abs": diff, "mean_abs": mean, "plans": a.compare}
    print(f"CPU vs {dev.type}, {a.compare} noise-free plans: max |diff| {diff}, mean {mean}", flush=True)

    res["render_ms"] = {}
    for b in a.batch:
        batch = PlanBatch.collate([ds[1000 + i]["plan"] for i in range(b)])
        render_batch(batch, dev)  # warm-up
        times = []
        for _ in range(a.repeat):
            sync(dev)
            t0 = time.perf_counter()
            render_batch(batch, dev)
            sync(dev)
            times.append(time.perf_counter() - t0)
        ms = 1000 * statistics.median(times)
        res["render_ms"][b] = ms
        print(f"render on {dev.type}, batch {b}: {ms:.1f} ms ({b / ms * 1000:.0f} samples/s)", flush=True)
    if dev.type == "cuda":
        res["peak_mem_gib"] = torch.cuda.max_memory_allocated(dev) / 2**30
        print(f"peak memory {res['peak_mem_gib']:.2f} GiB")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
