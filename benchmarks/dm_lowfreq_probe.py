"""Measured, not adopted: put the blurred photo's low frequencies back into the DM's output.

    python benchmarks/dm_lowfreq_probe.py [--data ../shared/data] [--sigmas 8 16 32 64] [--json out.json]

Blur keeps a photo's local mean at scales well above the blur, so ``out + G_sigma * (blurred - out)``
undoes any slow brightness or colour drift of the network (dm-v12 darkens real photos by ~3/255) while
keeping its detail. For Levin (aligned PSNR) and kodak24 (synthesis defaults, seed 1234), prints the
installed DM's mean PSNR and the mean change per Gaussian sigma (px), with its standard error.
"""

from __future__ import annotations

import argparse
import json
import statistics as st
from pathlib import Path

import torch

from blurvid import pipeline
from blurvid.evaluate import deblur_sets, eval_synth_config
from blurvid.metrics import aligned_psnr, gaussian_blur, psnr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--sigmas", nargs="+", type=float, default=[8, 16, 32, 64])
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    torch.set_num_threads(2)
    dm = pipeline.Deblurrer(pipeline.load_model("dm"), torch.device("cpu"), torch.bfloat16)
    sets = deblur_sets(
        levin=f"{a.data}/realblur/levin",
        synth=[f"{a.data}/sharp/kodak24"],
        synth_cfg=eval_synth_config("deblur"),
        count=24,
        seed=1234,
    )
    result = {}
    for name, (pairs, align) in sets.items():
        scores: dict[str, list[float]] = {"dm": []} | {f"sigma_{s:g}": [] for s in a.sigmas}
        for p in pairs:
            x, t = p.blurred[None], p.sharp[None]
            y = dm.tensor(x)
            outs = {"dm": y} | {f"sigma_{s:g}": (y + gaussian_blur(x - y, s)).clamp(0, 1) for s in a.sigmas}
            grey = torch.equal(x[:, 0], x[:, 1])
            for key, o in outs.items():
                o, tt = (o.mean(1, keepdim=True), t[:, :1]) if grey else (o, t)
                scores[key].append(float(aligned_psnr(o, tt, align)) if align else float(psnr(o, tt)))
        base = scores["dm"]
        row = {"dm": st.mean(base)}
        for key, v in scores.items():
            if key != "dm":
                diff = [u - b for u, b in zip(v, base, strict=True)]
                row[key] = {"diff": st.mean(diff), "se": st.stdev(diff) / len(diff) ** 0.5}
        result[name] = row
        print(
            f"{name}: DM {row['dm']:.3f}  "
            + "  ".join(f"{k} {r['diff']:+.3f} (se {r['se']:.3f})" for k, r in row.items() if k != "dm"),
            flush=True,
        )
    if a.json:
        a.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
