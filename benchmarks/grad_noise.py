"""How much of a DM training step's gradient is signal, at the batch sizes a CPU and a GPU train at?

From a DM checkpoint, gradients of the training loss (the config's, on its synthesised stream) are
computed in fp32 for ``2 * --groups`` disjoint batches of ``--batch`` samples. Reported:

* the cosine between two single batches' gradients (mean over disjoint pairs), and between the means of
  two disjoint groups of ``--groups`` batches (an effective batch of ``groups * batch``); with gradient
  = signal + independent noise, the cosine is ``|s|^2 / (|s|^2 + |n|^2 / B)``, so the two numbers show
  how fast the noise averages out;
* the cosine and relative error between bf16-autocast and fp32 gradients of the same batch (the CPU
  trains under bf16 autocast).

::

    python benchmarks/grad_noise.py --config weights/configs/dm-v12.json \
        --weights weights/dm-v12.safetensors --batch 8 --groups 8 --json benchmarks/results/grad_noise_dm_v12.json

With ``--bf16 2*groups`` (every batch in both precisions) it also reports whether bf16's error is a
bias (``_bias``); ``--bf16-ends`` runs the DM's two end convolutions under autocast too, as before
session 36 (``dm_precision.bf16_ends``)::

    python benchmarks/grad_noise.py --config weights/configs/s32-cpu-lowlr.json \
        --weights weights/dm-v13.safetensors --bf16 16 [--bf16-ends] --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import statistics

import torch
from torch.utils.data import default_collate

from blurvid.train.config import TrainConfig
from blurvid.train.loop import _init_weights, _prepare, autocast_factory, build_dataset, synth_config
from blurvid.train.tasks import make_task


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


def _bias(g32: list[torch.Tensor], g16: list[torch.Tensor]) -> dict[str, float]:
    """Is bf16's gradient error the same from batch to batch (a bias that averaging keeps)?

    Over K batches with both gradients: the mean cosine between two batches' errors ``g16 - g32``
    (0 for independent rounding noise), the norm of the mean error against the norm of the mean fp32
    gradient (the signal that averaging leaves), and, splitting the batches into two halves A and B,
    the cosine of A's mean gradient with B's fp32 mean in each precision (equal if bf16 keeps the
    signal)."""
    err = [b - a for a, b in zip(g32, g16, strict=True)]
    h = len(g32) // 2
    m32a, m32b = torch.stack(g32[:h]).mean(0), torch.stack(g32[h : 2 * h]).mean(0)
    m16a, m16b = torch.stack(g16[:h]).mean(0), torch.stack(g16[h : 2 * h]).mean(0)
    return {
        "cos_errors_all_pairs_mean": statistics.mean(_cos(x, y) for x, y in itertools.combinations(err, 2)),
        "mean_error_over_mean_fp32": float(torch.stack(err).mean(0).norm() / torch.stack(g32).mean(0).norm()),
        "cos_mean_bf16_mean_fp32": _cos(torch.stack(g16).mean(0), torch.stack(g32).mean(0)),
        "cos_halves_fp32_fp32": _cos(m32a, m32b),
        "cos_halves_bf16_fp32": _cos(m16a, m32b),
        "cos_halves_bf16_bf16": _cos(m16a, m16b),
    }


def _inner_mask(net: torch.nn.Module) -> torch.Tensor:
    """Over the flattened gradient (parameters with a gradient, in order): False for the DM's input
    conv and last output conv, True elsewhere."""
    ends = ("head.", f"tail.{len(net.dm.tail) - 1}.") if hasattr(net, "dm") else ()
    parts = [
        torch.full((p.numel(),), not any(f".{e}" in f".{n}" for e in ends), dtype=torch.bool)
        for n, p in net.named_parameters()
        if p.grad is not None
    ]
    return torch.cat(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument(
        "--weights", required=True, nargs="+", help="checkpoints to load (BIE and RVD for stage bie)"
    )
    ap.add_argument("--data", action="append", default=None, help="overrides the config's photo folders")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument(
        "--groups", type=int, default=8, help="batches per group (effective batch = groups * batch)"
    )
    ap.add_argument("--bf16", type=int, default=3, help="batches whose bf16 gradient is compared with fp32")
    ap.add_argument(
        "--bf16-ends", action="store_true", help="the DM's ends under autocast too (before session 36)"
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    raw = json.loads(open(a.config).read())
    if a.data:
        raw["data"] = a.data
    cfg = TrainConfig.from_dict({**raw, "batch": a.batch})
    task = make_task(cfg)
    net = task.net
    for path in a.weights:
        _init_weights(net, path, lambda _: None)
    net = net.to(memory_format=torch.channels_last).train()
    ds = build_dataset(cfg, synth_config(cfg))
    cpu = torch.device("cpu")

    def grad(k: int, precision: str) -> torch.Tensor:
        batch = default_collate([ds[10_000 + k * a.batch + i] for i in range(a.batch)])
        batch = _prepare(batch, cpu, True)
        net.zero_grad(set_to_none=True)
        with autocast_factory(precision, cpu)():
            out = net(task.inputs(batch))
        loss, _ = task.loss(out, batch, 0)
        loss.backward()
        return torch.cat([p.grad.flatten().float() for p in net.parameters() if p.grad is not None])

    ends = contextlib.ExitStack()
    if a.bf16_ends:
        from dm_precision import bf16_ends

        ends.enter_context(bf16_ends())
    grads = [grad(k, "fp32") for k in range(2 * a.groups)]
    pairs = [_cos(grads[2 * i], grads[2 * i + 1]) for i in range(a.groups)]
    group = _cos(torch.stack(grads[: a.groups]).mean(0), torch.stack(grads[a.groups :]).mean(0))
    every = [_cos(x, y) for x, y in itertools.combinations(grads, 2)]
    inner = _inner_mask(net)  # all but the DM's two end convolutions
    grads_inner = [g[inner] for g in grads]
    group_inner = _cos(
        torch.stack(grads_inner[: a.groups]).mean(0), torch.stack(grads_inner[a.groups :]).mean(0)
    )
    bf = []
    g16s = []
    for k in range(min(a.bf16, len(grads))):
        g16 = grad(k, "bf16")
        g16s.append(g16)
        bf.append({"cos": _cos(g16, grads[k]), "rel_err": float((g16 - grads[k]).norm() / grads[k].norm())})
    ends.close()
    res = {
        "config": a.config,
        "weights": a.weights,
        "batch": a.batch,
        "bf16_ends": a.bf16_ends,
        "cos_single_batches_mean": statistics.mean(pairs),
        "cos_single_batches_all_pairs_mean": statistics.mean(every),
        "cos_single_batches": pairs,
        f"cos_batch_{a.groups * a.batch}": group,
        f"cos_batch_{a.groups * a.batch}_inner_layers": group_inner,
        "bf16_vs_fp32": bf,
    }
    if len(g16s) >= 4:
        res["bf16_bias"] = _bias(grads[: len(g16s)], g16s)
        res["bf16_bias_inner_layers"] = _bias(grads_inner[: len(g16s)], [g[inner] for g in g16s])
    mean = res["cos_single_batches_mean"]
    print(f"cos between two batches of {a.batch}: mean {mean:.3f} {[round(c, 3) for c in pairs]}")
    print(f"cos between two batches of {a.groups * a.batch} (means of {a.groups}): {group:.3f}")
    print(f"the same without the DM's end convs: {group_inner:.3f}")
    for k, r in enumerate(bf):
        print(f"batch {k}: bf16 vs fp32 gradient cos {r['cos']:.4f}, relative error {r['rel_err']:.3f}")
    if "bf16_bias" in res:
        print("bf16 error across batches:", {k: round(v, 4) for k, v in res["bf16_bias"].items()})
        print(
            "the same without the end convs:",
            {k: round(v, 4) for k, v in res["bf16_bias_inner_layers"].items()},
        )
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
