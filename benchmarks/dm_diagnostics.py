"""Where a DM checkpoint's gains are, and are not: the diagnostics behind the model card's session-9 notes.

    python benchmarks/dm_diagnostics.py --data $DATA [--dm weights/dm-v13.safetensors] [--json out.json]

* ``levin_kernels``: aligned PSNR of input and output per Levin kernel (1-8, 4 images each);
* ``grey``: mean gain over the input on noise-free kodak24 (synthesis defaults, seed 1234) in colour and
  on grey copies of the same pairs (Levin is greyscale);
* ``ensemble``: Levin with a flip / transpose self-ensemble of 2, 4 and 8 passes, paired per image
  with one pass;
* ``cascade``: Levin with test-time multi-scale passes, paired per image with one pass: ``twice``
  (the DM on its own output), ``low_band`` (the output's low band replaced by the upsampled output of a
  half-scale pass) and ``coarse_first`` (the DM on the input with its low band replaced by that
  half-scale output). A half-scale pass halves the blur's extent, which the DM handles better.

CPU, bf16 as ``blurvid deblur`` runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics as st
from collections.abc import Callable
from pathlib import Path

import torch
from dm_paired import compare, eval_sets, levin_kernel

from blurvid import evaluate as ev
from blurvid.data.synth import to_grey
from blurvid.pipeline import resize
from blurvid.train.export import evaluation_runtime

Fn = Callable[[torch.Tensor], torch.Tensor]


def _tf(x: torch.Tensor, k: int, inverse: bool = False) -> torch.Tensor:
    """The ``k``-th of the 8 flips / transpositions of ``(B, C, H, W)`` (or its inverse)."""
    ops = [(4, lambda t: t.transpose(-1, -2)), (1, lambda t: t.flip(-1)), (2, lambda t: t.flip(-2))]
    for bit, op in reversed(ops) if inverse else ops:
        if k & bit:
            x = op(x)
    return x


def ensemble(fn: Fn, n: int) -> Fn:
    """Mean of ``fn`` over the first ``n`` transforms, each undone."""
    return lambda x: torch.stack([_tf(fn(_tf(x, k)).float(), k, inverse=True) for k in range(n)]).mean(0)


def _half(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W) -> (B, C, H // 2, W // 2)``, antialiased."""
    return resize(x, (x.shape[-2] // 2, x.shape[-1] // 2))


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``x`` resized bilinearly to ``like``'s height and width."""
    return resize(x, tuple(like.shape[-2:]))


def cascades(fn: Fn) -> dict[str, Fn]:
    """The test-time multi-scale variants of ``fn`` named in the module docstring."""

    def f(x: torch.Tensor) -> torch.Tensor:
        return fn(x).float()

    def low_band(x: torch.Tensor) -> torch.Tensor:
        y = f(x)
        return y - _up(_half(y), x) + _up(f(_half(x)), x)

    def coarse_first(x: torch.Tensor) -> torch.Tensor:
        return f((x - _up(_half(x), x) + _up(f(_half(x)), x)).clamp(0, 1))

    return {"twice": lambda x: f(f(x).clamp(0, 1)), "low_band": low_band, "coarse_first": coarse_first}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="the shared data folder")
    ap.add_argument(
        "--dm",
        type=Path,
        default=Path("weights/dm-v13.safetensors"),
        help="checkpoint, run folder or last.pt",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    fn = evaluation_runtime("deblur", args.dm, "cpu", "auto").deblur
    sets = eval_sets(args.data, ["levin", "kodak_clean"])
    out: dict = {"dm": str(args.dm)}

    pairs, align, key = sets["levin"]
    base = ev.eval_deblur(fn, pairs, align=align)["items"]
    out["levin_kernels"] = {}
    for k in range(1, 9):
        rows = [r for r in base if levin_kernel(r["name"]) == k]
        row = {"input": st.mean(r["psnr_in_aligned"] for r in rows), "output": st.mean(r[key] for r in rows)}
        out["levin_kernels"][k] = row
        print(f"levin kernel {k}: input {row['input']:.2f}  output {row['output']:.2f}", flush=True)

    kp, _, _ = sets["kodak_clean"]
    grey = [dataclasses.replace(p, blurred=to_grey(p.blurred), sharp=to_grey(p.sharp)) for p in kp]
    out["grey"] = {}
    for name, ps in (("colour", kp), ("grey", grey)):
        items = ev.eval_deblur(fn, ps)["items"]
        out["grey"][name] = st.mean(r["psnr"] - r["psnr_in"] for r in items)
        print(f"kodak24 without noise, {name}: gain {out['grey'][name]:+.3f} dB", flush=True)

    # test-time variants, each paired per image with one pass
    variants = {"ensemble": {n: ensemble(fn, n) for n in (2, 4, 8)}, "cascade": cascades(fn)}
    label = {"ensemble": "ensemble x{}", "cascade": "{}"}
    for section, fns in variants.items():
        out[section] = {}
        for name, variant in fns.items():
            items = ev.eval_deblur(variant, pairs, align=align)["items"]
            row = compare([r[key] for r in items], [r[key] for r in base])
            out[section][name] = row
            print(
                f"levin {label[section].format(name)}: {row['a']:.3f} vs {row['b']:.3f}, "
                f"{row['diff']:+.3f} (se {row['se']:.3f})",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
