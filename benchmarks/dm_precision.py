"""What running the DM's two end convolutions in float32 changes at inference, paired per image.

    python benchmarks/dm_precision.py --data $DATA [--dm weights/dm-v13.safetensors] [--sets levin kodak]
        [--json out.json]

Since session 36 ``DeblurNet`` runs its input and output convolutions outside autocast
(``blurvid.models.deblur.full_precision``), because their bf16 weight gradients were biased
(``grad_noise.py --bf16 16``). Inference then changes too, a little. This scores one DM three ways on
the model card's sets (those of ``dm_paired.py``), each paired per image with the first:

* ``fp32 ends``: as ``blurvid deblur`` runs now (bf16 autocast where the CPU has it, ends in float32);
* ``bf16 ends``: every convolution under autocast, as before session 36;
* ``fp32``: no autocast at all (the reference both approximate).

``--speed``: instead, the time of both ways, alternating in one process (median of ``--repeat``): a
1280x720 deblur (``Deblurrer.tensor``, as ``blurvid deblur`` runs it) and a training step (forward and
backward of the default DM at batch 8, 192 px, bf16 autocast, channels-last), with their ratios.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path

import torch
from dm_paired import SETS, compare, eval_sets, write_json


@contextlib.contextmanager
def bf16_ends() -> Iterator[None]:
    """Inside: the DM's ends run under autocast like every other layer (the code before session 36)."""
    from blurvid.models import deblur

    kept = deblur.full_precision
    deblur.full_precision = lambda conv, x, **_: conv(x)
    try:
        yield
    finally:
        deblur.full_precision = kept


WAYS = {"fp32 ends": contextlib.nullcontext, "bf16 ends": bf16_ends}  # the code now, and before session 36


def speed(dm: Path | None, repeat: int) -> dict:
    """Median seconds of a 720p deblur and of a training step, with the ends in float32 and in bf16."""
    import statistics
    import time

    from blurvid.models import DeblurNet
    from blurvid.train.export import evaluation_runtime

    runtime = evaluation_runtime("deblur", dm, "cpu", "auto")
    photo = torch.rand(1, 3, 720, 1280)
    net = DeblurNet(runtime.deblurrer.dm.config)
    net = net.to(memory_format=torch.channels_last).train()
    batch = torch.rand(8, 3, 192, 192).to(memory_format=torch.channels_last)

    def step() -> None:
        net.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = net(batch)
        (out - batch).abs().mean().backward()

    tasks = {"deblur 720p": lambda: runtime.deblur(photo), "train step": step}
    result = {}
    for task, fn in tasks.items():
        times: dict[str, list[float]] = {way: [] for way in WAYS}
        for context in WAYS.values():  # warm-up
            with context():
                fn()
        for _ in range(repeat):
            for way, context in WAYS.items():
                with context():
                    t = time.perf_counter()
                    fn()
                    times[way].append(time.perf_counter() - t)
        med = {way: statistics.median(t) for way, t in times.items()}
        ratio = statistics.median(a / b for a, b in zip(times["fp32 ends"], times["bf16 ends"], strict=True))
        result[task] = {"median_s": med, "ratio_fp32_ends_to_bf16_ends": ratio, "times": times}
        print(
            f"{task}: fp32 ends {med['fp32 ends']:.3f} s, bf16 ends {med['bf16 ends']:.3f} s, ratio {ratio:.3f}"
        )
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="the shared data folder (not needed with --speed)")
    ap.add_argument("--dm", type=Path, default=None, help="a DM checkpoint (default: the installed one)")
    ap.add_argument("--sets", nargs="+", choices=SETS, default=["levin", "kodak", "kodak_clean"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--speed", action="store_true", help="time both ways instead of scoring them")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    from blurvid import evaluate as ev
    from blurvid.train.export import evaluation_runtime

    torch.set_num_threads(args.threads)

    if args.speed:
        result = {"dm": str(args.dm or "installed"), "speed": speed(args.dm, args.repeat)}
        write_json(args.json, result)
        return
    if args.data is None:
        ap.error("--data is needed to score the sets")
    auto = evaluation_runtime("deblur", args.dm, "cpu", "auto").deblur
    fp32 = evaluation_runtime("deblur", args.dm, "cpu", "fp32").deblur
    ways = {way: (auto, context) for way, context in WAYS.items()}
    ways["fp32"] = (fp32, contextlib.nullcontext)
    result: dict = {"dm": str(args.dm or "installed"), "sets": {}}
    for name, (pairs, align, key) in eval_sets(args.data, args.sets).items():
        scores = {}
        for way, (fn, context) in ways.items():
            with context():
                scores[way] = [r[key] for r in ev.eval_deblur(fn, pairs, align=align)["items"]]
        rows = {way: compare(s, scores["fp32 ends"]) for way, s in scores.items() if way != "fp32 ends"}
        result["sets"][name] = {"fp32 ends": sum(scores["fp32 ends"]) / len(pairs), "against it": rows}
        line = f"{name:12s} fp32 ends {result['sets'][name]['fp32 ends']:.4f}"
        for way, row in rows.items():
            line += f"  {way} {row['diff']:+.4f} (se {row['se']:.4f})"
        print(line, flush=True)
    write_json(args.json, result)


if __name__ == "__main__":
    main()
