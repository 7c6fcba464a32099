"""Speed, memory and efficiency of deblur / animate — prints a table and writes JSON.

    python benchmarks/bench_speed.py                      # 1280x720 deblur + animate (9 frames)
    python benchmarks/bench_speed.py --sizes 720p 12mp 24mp --json benchmarks/results/speed.json
    python benchmarks/bench_speed.py --tasks deblur --compare-dm old/dm-v5.safetensors   # A/B, same run
    python benchmarks/bench_speed.py --tasks deblur shake   # camera-shake mode (deblur --shake) beside the DM
    python benchmarks/bench_speed.py --tasks shake shake-scaled  # the cost of refining its kernel
    python benchmarks/bench_speed.py --tasks shake shake-f64     # its first kernel estimate in float64
    python benchmarks/bench_speed.py --tasks shake shake-unjudged  # the cost of the DM's check for blur

Each case runs in a fresh subprocess so its peak RSS is its own (read before the 720p rows' fp32
reference pass; until session 27 it was read after it, which inflated the 720p rows' peak). Times are
the median of --repeat runs after one warm-up (two on CUDA) at 720p; larger sizes run once after the
warm-up. "efficiency" = the DM's FLOPs per image / its time, divided by the machine's dense
fp32 matmul FLOP/s (torch.mm of 4096^2 matrices) measured in the same run — the number that does not
depend on how fast this particular machine is. Uses the installed checkpoints when present, otherwise the
default architectures with random weights (speed does not depend on weight values; --random forces it).
The networks run on a random image; the shake tasks on ``examples/astronaut_camera_shake.jpg`` resized
to the size, since the kernel search depends on content (before 2026-11-27 they used the random image);
since session 24 (2026-12-05) they include the DM's check for blur on a copy of at most 1024 px, as
``deblur --shake`` runs it.
``--compare-dm FILE`` also times deblur with that DM checkpoint (e.g. the previous version), alternating
the two per case, and prints the ratio of the installed DM's time to it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

SIZES = {"720p": (720, 1280), "12mp": (3000, 4000), "24mp": (4000, 6000)}


def matmul_flops(device: str = "cpu", repeat: int = 5) -> dict:
    """Dense matmul FLOP/s of this machine's ``device`` (4096^2 on a CPU, 8192^2 on a GPU), fp32 and bf16."""
    import torch

    n = 8192 if device.startswith("cuda") else 4096
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a = torch.randn(n, n, dtype=dtype, device=device)
        b = torch.randn(n, n, dtype=dtype, device=device)
        torch.mm(a, b)
        sync()
        ts = []
        for _ in range(repeat):
            t = time.perf_counter()
            torch.mm(a, b)
            sync()
            ts.append(time.perf_counter() - t)
        out[name] = 2 * n**3 / min(ts)
    return out


def _models(random: bool, dm_file: str | None = None):
    import torch

    from blurvid import pipeline
    from blurvid.models import BlurredImageEncoder, DeblurNet, RecurrentVideoDecoder
    from blurvid.weights import WeightsError

    torch.manual_seed(0)
    if dm_file:
        from blurvid.weights import load_checkpoint

        state, meta = load_checkpoint(dm_file)
        return pipeline.build_from_checkpoint("dm", state, meta["config"]), None, None, dm_file
    if not random:
        try:
            return (
                pipeline.load_model("dm"),
                pipeline.load_model("bie"),
                pipeline.load_model("rvd"),
                "installed",
            )
        except WeightsError:
            pass
    return DeblurNet().eval(), BlurredImageEncoder().eval(), RecurrentVideoDecoder().eval(), "random"


def dm_flops(dm, h: int, w: int) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from blurvid.tiling import pad_to_multiple

    x, _ = pad_to_multiple(torch.rand(1, 3, h, w), dm.multiple)
    with FlopCounterMode(display=False) as fc, torch.inference_mode():
        dm(x)
    return float(fc.get_total_flops())


def run_case(
    task: str,
    size: str,
    precision: str,
    repeat: int,
    random: bool,
    threads: int,
    device: str = "cpu",
    dm_file: str | None = None,
) -> dict:
    import numpy as np
    import torch

    from blurvid import pipeline

    if threads:
        torch.set_num_threads(threads)
    dm, bie, rvd, source = _models(random, dm_file)
    dev = pipeline.select_device(device)
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    dtype = pipeline.resolve_precision(precision, dev)
    h, w = SIZES[size]
    if task.startswith("shake"):
        # the kernel search depends on content (on noise its refinement stops at once): a real
        # camera-shake photo, resized to the size
        from PIL import Image

        photo = Image.open(Path(__file__).parent.parent / "examples" / "astronaut_camera_shake.jpg")
        img = np.asarray(photo.convert("RGB").resize((w, h), Image.Resampling.BICUBIC), np.float32) / 255
    else:
        img = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)

    def make(dt: torch.dtype, tile: int = 1024):
        if task.startswith("shake"):  # deblur --shake: the DM (at the precision) only checks for blur
            # as the CLI; shake-scaled: the kernel only scaled up from the small copy (no refinement)
            if task == "shake-f64":  # the first kernel estimate in float64, as before session 14
                import functools

                from blurvid import shake

                shake.estimate_kernel = functools.partial(shake.estimate_kernel, dtype=torch.float64)
            judge = None if task == "shake-unjudged" else pipeline.Deblurrer(dm, dev, dt, tile=tile)
            remover = pipeline.ShakeRemover(
                dev, tile=max(tile, 2048), refine=task != "shake-scaled", judge=judge
            )
            return lambda: remover(img)
        deb = pipeline.Deblurrer(dm, dev, dt, tile=tile)
        if task == "deblur":
            return lambda: deb(img)
        an = pipeline.Animator(deb, bie, rvd)
        return lambda: an(img, 9)

    fn = make(dtype)
    fn()
    if cuda:
        fn()  # second warm-up: cuDNN autotuning
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t)
    res = {
        "task": task,
        "size": size,
        "hw": [h, w],
        "precision": str(dtype).replace("torch.", ""),
        "weights": source,
        "median_s": statistics.median(ts),
        "times_s": ts,
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(dev) if cuda else "cpu",
    }
    if cuda:
        res["peak_cuda_mib"] = torch.cuda.max_memory_allocated(dev) / 2**20
    res["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the timed runs'
    if size == "720p":  # the reference: fp32, one untiled pass, on the same device
        ref = make(torch.float32, tile=4096)()
        o, r = (np.stack(out), np.stack(ref)) if task == "animate" else (out, ref)
        res["max_abs_diff_vs_fp32_untiled"] = float(np.abs(o - r).max())
        res["mean_abs_diff_vs_fp32_untiled"] = float(np.abs(o - r).mean())
        if task == "deblur":
            res["dm_gflops"] = dm_flops(dm.float().cpu(), h, w) / 1e9
    return res


def _child(cmd: list[str]) -> dict:
    """Run one case in a fresh process and return its JSON result."""
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["720p"], choices=list(SIZES))
    ap.add_argument(
        "--tasks",
        nargs="+",
        default=["deblur", "animate"],
        choices=["deblur", "animate", "shake", "shake-scaled", "shake-f64", "shake-unjudged"],
    )
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs at 720p (larger sizes: one)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu | cuda (GPU rows add peak CUDA memory)")
    ap.add_argument("--random", action="store_true", help="random weights even if checkpoints are installed")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--compare-dm", help="also time deblur with this DM checkpoint; prints the time ratio")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--dm", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.case:  # child process
        task, size = a.case.split(":")
        print(json.dumps(run_case(task, size, a.precision, a.repeat, a.random, a.threads, a.device, a.dm)))
        return
    import torch

    peak = matmul_flops(a.device)
    rows = []
    for size in a.sizes:
        for task in a.tasks:
            cmd = [
                sys.executable,
                __file__,
                "--case",
                f"{task}:{size}",
                "--precision",
                a.precision,
                "--repeat",
                str(a.repeat if size == "720p" else 1),
                "--threads",
                str(a.threads),
                "--device",
                a.device,
            ]
            if a.random:
                cmd.append("--random")
            r = _child(cmd)
            if a.compare_dm and task == "deblur":  # alternate: installed, other, installed, other
                other = [_child([*cmd, "--dm", a.compare_dm])]
                mine = [r["median_s"], _child(cmd)["median_s"]]
                other.append(_child([*cmd, "--dm", a.compare_dm]))
                r["median_s"] = statistics.median(mine)
                r["compare_dm"] = {
                    "file": a.compare_dm,
                    "median_s": statistics.median(o["median_s"] for o in other),
                    "peak_rss_mib": max(o["peak_rss_mib"] for o in other),
                }
                r["compare_dm"]["time_ratio"] = r["median_s"] / r["compare_dm"]["median_s"]
                print(
                    f"{task:8s} {size:5s} {a.compare_dm}: {r['compare_dm']['median_s']:.3f} s; installed DM / it:"
                    f" {r['compare_dm']['time_ratio']:.2f}x",
                    flush=True,
                )
            if "dm_gflops" in r:
                achieved = r["dm_gflops"] * 1e9 / r["median_s"]
                r["efficiency_vs_fp32_mm"] = achieved / peak["fp32"]
                r["efficiency_vs_bf16_mm"] = achieved / peak["bf16"]
            rows.append(r)
            print(
                f"{task:8s} {size:5s} {r['precision']:9s} {r['median_s']:7.3f} s  peak RSS {r['peak_rss_mib']:7.0f} MiB"
                + (f"  peak CUDA {r['peak_cuda_mib']:6.0f} MiB" if "peak_cuda_mib" in r else "")
                + (
                    f"  eff {r['efficiency_vs_fp32_mm']:.2f} of fp32 mm, {r['efficiency_vs_bf16_mm']:.2f} of bf16 mm"
                    if "dm_gflops" in r
                    else ""
                )
                + (
                    f"  max|d| vs fp32 {r['max_abs_diff_vs_fp32_untiled']:.4f}"
                    if "max_abs_diff_vs_fp32_untiled" in r
                    else ""
                ),
                flush=True,
            )
    result = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "device": a.device if a.device == "cpu" else torch.cuda.get_device_name(0),
            "torch": torch.__version__,
            "matmul_flops": peak,
        },
        "rows": rows,
    }
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(result, indent=2))
    print(f"matmul peak: fp32 {peak['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peak['bf16'] / 1e9:.0f} GFLOP/s")


if __name__ == "__main__":
    main()
