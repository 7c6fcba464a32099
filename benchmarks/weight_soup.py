"""The uniform average of several runs' weights of one architecture (a "model soup", Wortsman et al. 2022).

    python benchmarks/weight_soup.py --runs runs/s32/it3389.pt runs/s33/last.pt --out /tmp/soup.safetensors
    blurvid train export /tmp/soup.safetensors --out weights --name v13     # how dm-v13 was made

``--runs``: run folders, ``last.pt`` files (their weight average where kept) or checkpoints, as
``blurvid train export`` takes them; runs fine-tuned from one checkpoint average well, unrelated ones
do not. Each float tensor is averaged in float32; the file records the runs and their iterations
(``train.soup``). Where there are two, ``weight_extrapolate.py --alpha -0.5`` is their midpoint too,
but takes exported files only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch


def soup(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The float32 mean of each float tensor over ``states`` (others taken from the first). Raises
    ValueError unless all hold the same names and shapes."""
    first = states[0]
    for s in states[1:]:
        if s.keys() != first.keys() or any(s[k].shape != first[k].shape for k in first):
            raise ValueError("the runs do not hold the same tensors (another architecture or size?)")
    return {
        k: torch.stack([s[k].float() for s in states]).mean(0) if v.is_floating_point() else v.clone()
        for k, v in first.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, nargs="+", required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    from blurvid.train.export import _load_run
    from blurvid.weights import save_checkpoint

    loaded = [_load_run(r) for r in args.runs]
    arch = {meta["arch"] for _, meta in loaded}
    if len(arch) != 1:
        raise SystemExit(f"the runs hold different networks: {sorted(arch)}")
    record = [
        {"run": str(r), **meta.get("train", {})} for r, (_, meta) in zip(args.runs, loaded, strict=True)
    ]
    state = soup([s for s, _ in loaded])
    save_checkpoint(
        args.out, state, arch=arch.pop(), config=loaded[0][1]["config"], extra={"train": {"soup": record}}
    )
    print(f"wrote {args.out}: the mean of {len(loaded)} runs")


if __name__ == "__main__":
    main()
