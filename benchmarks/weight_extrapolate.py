"""A checkpoint moved along the line between two checkpoints of one architecture: ``a + alpha * (a - b)``.

    python benchmarks/weight_extrapolate.py --a weights/dm-v8.safetensors --b old/dm-v7.safetensors \
        --alpha 0.5 --out /tmp/x.safetensors
    python benchmarks/dm_paired.py --data $DATA --a /tmp/x.safetensors --b weights/dm-v8.safetensors

``alpha > 0`` continues the step that led from ``b`` to ``a`` (extrapolation), ``-1 < alpha < 0``
interpolates between them. Every tensor is combined in float32 and stored in ``a``'s dtype; ``a``'s
metadata (arch, config, training record) is kept. Both files must hold the same tensor names and shapes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from blurvid.weights import _RESERVED_METADATA, load_checkpoint, save_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", type=Path, required=True, help="the checkpoint to move from")
    ap.add_argument("--b", type=Path, required=True, help="the checkpoint that defines the direction")
    ap.add_argument("--alpha", type=float, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    a, meta = load_checkpoint(args.a)
    b, _ = load_checkpoint(args.b)
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        raise SystemExit(f"{args.a} and {args.b} do not hold the same tensors")
    moved = {k: (a[k].float() + args.alpha * (a[k].float() - b[k].float())).to(a[k].dtype) for k in a}
    extra = {k: v for k, v in meta.items() if k not in _RESERVED_METADATA}
    save_checkpoint(args.out, moved, arch=meta["arch"], config=meta["config"], extra=extra)
    print(f"wrote {args.out}: {args.a.name} + {args.alpha} * ({args.a.name} - {args.b.name})")


if __name__ == "__main__":
    main()
