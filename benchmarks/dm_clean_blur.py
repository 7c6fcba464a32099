"""DM checkpoints side by side on noise-free camera shake of fixed lengths (no objects, no noise).

    python benchmarks/dm_clean_blur.py --photos $DATA/sharp/kodak24 \
        --weights weights/dm-v5.safetensors old/dm-v4.safetensors [--lengths 4 16 28] [--json out.json]
        [--path smooth|tremor] [--target time|mean]

For each path length, ``--count`` scenes synthesised with a fixed seed; prints the blurred input's
PSNR and each checkpoint's PSNR / SSIM against the target (fp32, CPU). ``--path tremor`` moves the
camera along folding hand-tremor paths (like measured camera-shake kernels) instead of smooth ones;
``--target`` is the central instant (the paper's) or the time-averaged pose the blur is centred on.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", nargs="+", required=True)
    ap.add_argument("--weights", nargs="+", type=Path, required=True, help="DM .safetensors files")
    ap.add_argument("--lengths", nargs="+", type=float, default=[4, 16, 28])
    ap.add_argument("--count", type=int, default=16)
    ap.add_argument("--seed", type=int, default=99)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--path", choices=["smooth", "tremor"], default="smooth")
    ap.add_argument("--target", choices=["time", "mean"], default="time")
    a = ap.parse_args()

    from blurvid import evaluate, pipeline, weights
    from blurvid.data.synth import SynthConfig

    dev = torch.device("cpu")
    models = {}
    for path in a.weights:
        state, meta = weights.load_checkpoint(path)
        dm = pipeline.build_from_checkpoint("dm", state, meta["config"])
        models[path.stem] = pipeline.Deblurrer(dm, dev, torch.float32)
    rows = []
    for length in a.lengths:
        cfg = SynthConfig(
            size=a.size,
            hflip=False,
            blur_px=(length, length),
            tremor_p=1.0 if a.path == "tremor" else 0.0,
            tremor_px=(length, length),
            center=a.target,
            static_camera_p=0.0,
            objects=(0, 0),
            shot_noise=(0.0, 0.0),
            read_noise=(0.0, 0.0),
        )
        seqs = evaluate.synthetic_sequences(a.photos, cfg, a.count, a.seed)
        pairs = [s.center_pair() for s in seqs]
        res = {name: evaluate.eval_deblur(d.tensor, pairs)["mean"] for name, d in models.items()}
        first = next(iter(res.values()))
        row = {"length_px": length, "psnr_in": first["psnr_in"], "ssim_in": first["ssim_in"]}
        row |= {f"{n}_{k}": r[k] for n, r in res.items() for k in ("psnr", "ssim")}
        rows.append(row)
        scores = " ".join(f"{n} {r['psnr']:.2f}/{r['ssim']:.3f}" for n, r in res.items())
        print(f"{length:g} px: input {first['psnr_in']:.2f}/{first['ssim_in']:.3f}  {scores}", flush=True)
    if a.json:
        a.json.write_text(
            json.dumps({"args": {k: str(v) for k, v in vars(a).items()}, "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
