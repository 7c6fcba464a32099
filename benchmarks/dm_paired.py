"""Two DM checkpoints paired per image on the deblurring sets: the A/B behind every "paired" number.

    python benchmarks/dm_paired.py --data $DATA --a weights/dm-v13.safetensors --b old/dm-v12.safetensors \
        [--sets levin kodak kodak_clean clips] [--clips-holdout 0.25] [--json out.json]

``--a`` / ``--b``: an exported checkpoint, a run folder (its best.safetensors) or a run's ``last.pt``
(its weight average), as ``blurvid eval --run`` takes them. The sets are the model card's:
``levin`` (aligned PSNR, 32 real camera-shake images), ``kodak`` (kodak24, synthesis defaults, seed
1234, 256 px), ``kodak_clean`` (the same scenes without sensor noise) and ``clips`` (the DAVIS clips
averaged GoPro-style, centre frame as target; in-sample: the DM's training draws windows from the same
clips, unless both DMs were trained with ``clip_holdout`` and ``--clips-holdout`` names that share: then
only the held-out end of each clip is scored). For each set: both means, the mean per-image
difference A - B with its standard error, and on how many images A is better. Levin is also split into
its small (1, 2, 3, 5) and large (4, 6, 7, 8) kernels. CPU, bf16 as ``blurvid deblur`` runs.
"""

from __future__ import annotations

import argparse
import json
import statistics as st
from pathlib import Path

import torch

SETS = ("levin", "kodak", "kodak_clean", "clips")


def eval_sets(data: Path, names: list[str], clip_holdout: float = 0.0) -> dict[str, tuple[list, int, str]]:
    """``{name: (pairs, align, score key)}`` for the chosen names (``clip_holdout``: the clips' held-out end)."""
    from blurvid import evaluate as ev

    out = {}
    for name in names:
        if name == "levin":
            (pairs, align) = ev.deblur_sets(levin=data / "realblur" / "levin")["levin"]
            out[name] = (pairs, align, "psnr_aligned")
        elif name in ("kodak", "kodak_clean"):
            cfg = ev.eval_synth_config(noise=name != "kodak_clean")  # the protocol of `blurvid eval`
            (pairs, align) = ev.deblur_sets(synth=[data / "sharp" / "kodak24"], synth_cfg=cfg)["synthetic"]
            out[name] = (pairs, align, "psnr")
        elif name == "clips":
            clips = [data / "video" / "bmx-trees", data / "video" / "tennis"]
            (pairs, align) = ev.deblur_sets(clips=clips, clip_holdout=clip_holdout)["clips"]
            out[name] = (pairs, align, "psnr")
    return out


def levin_kernel(name: str) -> int:
    """The kernel number (1-8) of a Levin image named like ``im3_kernel7_img``."""
    return int(name.split("_")[1].removeprefix("kernel"))


def levin_kernel_file(levin: Path, k: int) -> torch.Tensor:
    """Levin's stored kernel ``gt/kernel{k}.png`` as a float ``(kh, kw)`` summing to 1."""
    from blurvid.data.datasets import load_rgb

    a = load_rgb(levin / "gt" / f"kernel{k}.png").float().mean(0)  # (3, kh, kw) -> (kh, kw)
    return a / a.sum()


def compare(a: list[float], b: list[float]) -> dict[str, float]:
    """Means of ``a`` and ``b``, mean of ``a - b``, its standard error, and how often ``a > b``."""
    d = [x - y for x, y in zip(a, b, strict=True)]
    se = st.stdev(d) / len(d) ** 0.5 if len(d) > 1 else float("nan")
    better = sum(x > 0 for x in d)
    return {"a": st.mean(a), "b": st.mean(b), "diff": st.mean(d), "se": se, "better": better, "n": len(d)}


def write_json(path: Path | None, result: dict) -> None:
    """``result`` as indented JSON at ``path`` (its folder made), if a path was given."""
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="the shared data folder")
    ap.add_argument("--a", type=Path, required=True)
    ap.add_argument("--b", type=Path, required=True)
    ap.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--clips-holdout", type=float, default=0.0, help="score only the clips' last share of frames"
    )
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from blurvid import evaluate as ev
    from blurvid.train.export import evaluation_runtime

    torch.set_num_threads(args.threads)
    runtimes = {k: evaluation_runtime("deblur", getattr(args, k), "cpu", "auto").deblur for k in ("a", "b")}
    result: dict = {"a": str(args.a), "b": str(args.b), "clips_holdout": args.clips_holdout, "sets": {}}
    for name, (pairs, align, key) in eval_sets(args.data, args.sets, args.clips_holdout).items():
        items = {k: ev.eval_deblur(fn, pairs, align=align)["items"] for k, fn in runtimes.items()}
        row = compare([r[key] for r in items["a"]], [r[key] for r in items["b"]])
        line = (
            f"{name:12s} A {row['a']:.3f}  B {row['b']:.3f}  A-B {row['diff']:+.3f} (se {row['se']:.3f})"
            f"  A better on {row['better']} of {row['n']}"
        )
        if name == "levin":
            for part, kernels in (("small", (1, 2, 3, 5)), ("large", (4, 6, 7, 8))):
                idx = [i for i, r in enumerate(items["a"]) if levin_kernel(r["name"]) in kernels]
                sub = compare([items["a"][i][key] for i in idx], [items["b"][i][key] for i in idx])
                row[part] = sub
                line += f"  {part} {sub['diff']:+.3f}"
        result["sets"][name] = row
        print(line, flush=True)
    write_json(args.json, result)


if __name__ == "__main__":
    main()
