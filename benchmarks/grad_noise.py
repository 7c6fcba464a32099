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
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--data", action="append", default=None, help="overrides the config's photo folders")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument(
        "--groups", type=int, default=8, help="batches per group (effective batch = groups * batch)"
    )
    ap.add_argument("--bf16", type=int, default=3, help="batches whose bf16 gradient is compared with fp32")
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
    _init_weights(net, a.weights, lambda _: None)
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

    grads = [grad(k, "fp32") for k in range(2 * a.groups)]
    pairs = [_cos(grads[2 * i], grads[2 * i + 1]) for i in range(a.groups)]
    group = _cos(torch.stack(grads[: a.groups]).mean(0), torch.stack(grads[a.groups :]).mean(0))
    every = [_cos(x, y) for x, y in itertools.combinations(grads, 2)]
    bf = []
    for k in range(min(a.bf16, len(grads))):
        g16 = grad(k, "bf16")
        bf.append({"cos": _cos(g16, grads[k]), "rel_err": float((g16 - grads[k]).norm() / grads[k].norm())})
    res = {
        "config": a.config,
        "weights": a.weights,
        "batch": a.batch,
        "cos_single_batches_mean": statistics.mean(pairs),
        "cos_single_batches_all_pairs_mean": statistics.mean(every),
        "cos_single_batches": pairs,
        f"cos_batch_{a.groups * a.batch}": group,
        "bf16_vs_fp32": bf,
    }
    mean = res["cos_single_batches_mean"]
    print(f"cos between two batches of {a.batch}: mean {mean:.3f} {[round(c, 3) for c in pairs]}")
    print(f"cos between two batches of {a.groups * a.batch} (means of {a.groups}): {group:.3f}")
    for k, r in enumerate(bf):
        print(f"batch {k}: bf16 vs fp32 gradient cos {r['cos']:.4f}, relative error {r['rel_err']:.3f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
