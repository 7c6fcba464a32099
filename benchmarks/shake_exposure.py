"""Does ``deblur --shake`` depend on how bright the photo is? (``ShakeRemover``'s ``exposure``.)

    python benchmarks/shake_exposure.py --data $DATA [--json out.json]

The kernel estimate's edge threshold and the deconvolution's prior weight are absolute numbers, so the
same shake in a darker photo was handled differently. This scores ``ShakeRemover`` (blind: kernel
estimated, no network judge) on ``shake_eval.py``'s tuning set (16 grey 255 px BSD100 crops, random
hand-tremor kernels, noise 0.01, 8-bit) made darker: each blurred image times an exposure factor,
rounded to 8 bits again (a darker photo also has coarser steps), deconvolved, divided by the factor
and scored against the sharp crop (aligned PSNR, as ``shake_eval.py``). Settings: ``exposure`` None
(the photo as it is, before session 30) and the given references (photos whose 99.5th percentile is
under one are brought up to it). Levin's 32 photos all reach 0.616 or more there (their highlights),
so a reference of 0.6 leaves them exactly as they were.
"""

from __future__ import annotations

import argparse
import json
import statistics as st
import time
from pathlib import Path

import torch
from shake_eval import score, tune_set

from blurvid.pipeline import ShakeRemover


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="../shared/data")
    ap.add_argument("--exposures", type=float, nargs="+", default=[1.0, 0.5, 0.25, 0.1])
    ap.add_argument("--references", type=float, nargs="+", default=[0.6, 1.0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    items = tune_set(args.data / "sharp" / "bsd100")
    settings: list[float | None] = [None, *args.references]
    rows = []
    t0 = time.perf_counter()
    for name, blurred, sharp, _ in items:
        for e in args.exposures:
            dark = (blurred * e * 255).round() / 255
            row = {"name": name, "exposure": e, "input": score(dark / e, sharp)}
            for ref in settings:
                remover = ShakeRemover(torch.device("cpu"), exposure=ref)
                out = remover.tensor(dark[None, None])[0, 0]
                row[f"shake@{ref}"] = score((out / e).clamp(0, 1), sharp)
            rows.append(row)
            print(
                " ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                flush=True,
            )
    summary = {}
    for e in args.exposures:
        sel = [r for r in rows if r["exposure"] == e]
        summary[str(e)] = {k: st.mean(r[k] for r in sel) for k in sel[0] if k not in ("name", "exposure")}
        print(f"exposure x{e:g}: " + " ".join(f"{k}={v:.2f}" for k, v in summary[str(e)].items()), flush=True)
    result = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "summary": summary,
        "rows": rows,
        "seconds": time.perf_counter() - t0,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
