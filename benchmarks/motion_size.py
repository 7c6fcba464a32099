"""Is the motion that ``blurvid animate`` extracts the size of the true motion? Flows against the truth.

    python benchmarks/motion_size.py --data $DATA [--bie A.safetensors --rvd B.safetensors] [--json out.json]

Two sets with known true flows (the synthesiser's displacement fields, in the convention the video
networks are trained on):

* ``examples``: the example photos in ``examples/`` (rendered by ``examples/make_examples.py`` with
  fixed seeds, so their true flows are re-rendered here; the random draws do not depend on pixels).
* ``synthetic``: the model card's video set (kodak24 synthesis, seed 1234, 256 px, N = 9).

The flows are predicted as ``blurvid animate`` predicts them, from the blurred photo and the DM's
output (``centre dm``), and, on the synthetic set, also from the true sharp centre (``centre gt``: the
video model's own error, without the DM's residual blur). Reported over the pixels that move (the
summed first- and last-frame motion above half its maximum):

* ``extent_ratio``: predicted / true distance between the first and last frame (1 = right size),
* ``epe``: mean end-point error over the N frames, the better of both playback orders (px),
* ``epe_zero``: the same for no motion at all (the floor a useful model must beat).

The DM is the installed one; ``--bie`` / ``--rvd`` replace the installed video networks (e.g. a run's
export). CPU, bf16 where the CPU has it, as ``animate`` runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))


def add_video_options(ap: argparse.ArgumentParser) -> None:
    """``--bie`` / ``--rvd``: video checkpoints to measure instead of the installed ones."""
    ap.add_argument("--bie", help="a BIE .safetensors instead of the installed one")
    ap.add_argument("--rvd", help="an RVD .safetensors instead of the installed one")


def _video_nets(bie: str | None, rvd: str | None) -> tuple[torch.nn.Module, torch.nn.Module]:
    from blurvid import pipeline, weights

    def one(arch: str, path: str | None) -> torch.nn.Module:
        if path is None:
            return pipeline.load_model(arch)
        state, meta = weights.load_checkpoint(path)
        return pipeline.build_from_checkpoint(arch, state, meta.get("config") or {})

    return one("bie", bie), one("rvd", rvd)


def _scores(pred: torch.Tensor, true: torch.Tensor) -> dict[str, float]:
    """``pred`` / ``true``: ``(N, 2, H, W)`` flows in px."""
    mag = true.norm(dim=1)
    ends = mag[0] + mag[-1]
    moving = ends > 0.5 * ends.max()

    def extent(f: torch.Tensor) -> float:
        return float((f[-1] - f[0]).norm(dim=0)[moving].mean())

    fwd = float((pred - true).norm(dim=1)[:, moving].mean())
    rev = float((pred.flip(0) - true).norm(dim=1)[:, moving].mean())
    return {
        "extent_true": extent(true),
        "extent_pred": extent(pred),
        "extent_ratio": extent(pred) / max(extent(true), 1e-6),
        "epe": min(fwd, rev),
        "epe_zero": float(mag[:, moving].mean()),
    }


def _mean(rows: list[dict]) -> dict[str, float]:
    keys = [k for k in rows[0] if isinstance(rows[0][k], float)]
    return {k: float(np.mean([r[k] for r in rows])) for k in keys}


def examples(animator) -> list[dict]:
    import make_examples as me

    from blurvid.data.synth import synthesize
    from blurvid.pipeline import to_tensor

    rows = []
    for ex in me.EXAMPLES:
        cfg = ex.cfg
        region = cfg.size + 2 * cfg.margin
        others = None
        if ex.moving_subject:
            _, _, obj = me.layer_placement(ex.seed, cfg, region)
            others = [torch.zeros(3, obj, obj)]
        truth = synthesize(
            torch.zeros(3, region, region), torch.Generator().manual_seed(ex.seed), cfg, others=others
        )
        x = to_tensor(
            np.asarray(Image.open(ROOT / "examples" / f"{ex.name}.jpg").convert("RGB")), torch.device("cpu")
        )
        sharp = animator.deblurrer.tensor(x)
        pred = animator.flows(x, sharp, truth.flows.shape[0]).float()
        rows.append({"name": ex.name, **_scores(pred, truth.flows.float())})
    return rows


def synthetic(animator, data: Path) -> dict[str, list[dict]]:
    from blurvid.data.datasets import PhotoSynthDataset
    from blurvid.evaluate import eval_synth_config

    cfg = eval_synth_config("video")  # the video set of `blurvid eval video --synth`
    ds = PhotoSynthDataset([str(data / "sharp" / "kodak24")], cfg, seed=1234)
    out: dict[str, list[dict]] = {"centre dm": [], "centre gt": []}
    for i in range(24):
        item = ds[i]
        x = item["blurred"][None]
        true = item["flows"].float()
        centres = {
            "centre dm": animator.deblurrer.tensor(x),
            "centre gt": item["frames"][item["center"]][None],
        }
        for name, centre in centres.items():
            pred = animator.flows(x, centre, true.shape[0]).float()
            out[name].append({"name": f"synth_{i:04d}", **_scores(pred, true)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    add_video_options(ap)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from blurvid import pipeline

    cpu = torch.device("cpu")
    bie, rvd = _video_nets(args.bie, args.rvd)
    deblurrer = pipeline.Deblurrer(pipeline.load_model("dm"), cpu, pipeline.resolve_precision("auto", cpu))
    animator = pipeline.Animator(deblurrer, bie, rvd)
    result: dict = {"bie": args.bie or "installed", "rvd": args.rvd or "installed", "sets": {}}
    rows = examples(animator)
    result["sets"]["examples"] = {"rows": rows, "mean": _mean(rows)}
    for name, rows in synthetic(animator, args.data).items():
        result["sets"][f"synthetic, {name}"] = {"rows": rows, "mean": _mean(rows)}
    for name, s in result["sets"].items():
        m = s["mean"]
        print(
            f"{name:22s} extent true {m['extent_true']:6.2f} px, predicted {m['extent_pred']:6.2f} "
            f"(ratio {m['extent_ratio']:.2f}); EPE {m['epe']:.2f} px (no motion {m['epe_zero']:.2f})"
        )
    for r in result["sets"]["examples"]["rows"]:
        print(
            f"  {r['name']:32s} ratio {r['extent_ratio']:.2f}, EPE {r['epe']:.2f} (no motion {r['epe_zero']:.2f})"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
