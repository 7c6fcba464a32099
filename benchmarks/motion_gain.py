"""Is the video model's motion the right size? Its flows multiplied by a gain, on real and synthetic blur.

    python benchmarks/motion_gain.py --data $DATA [--gains 1 1.15 1.3 1.5] [--shake] [--bie A --rvd B] [--json out.json]

* ``levin_reblur``: Levin's real camera shake has a sharp ground truth but no video. The flows that
  ``blurvid animate`` predicts (BIE + RVD, from the blurred image and the DM's output, resampled to
  ``--frames`` instants) warp the *ground-truth* sharp image, the warps are averaged (display values,
  as Levin's captures), and the result is scored against the real blurred image (PSNR at the best
  integer shift of up to 8 px). If the motion explained the blur, this would be high; gain 0 (no
  motion) is the floor, and the true kernel (``gt/kernelY.png``, convolved with the sharp image in
  display values) the ceiling: the better of its two orientations per image, because this copy of the
  set stores kernels 4 and 8 flipped against the others. Rows ``dm x G``: the flows predicted with the
  DM's output as the sharp reference (what ``animate`` does); rows ``gt x G``: with the ground truth as
  the reference instead (shifted by whole pixels to where the DM's output sits), which separates the
  video model's error from the DM's residual blur; rows ``shake x G`` (with ``--shake``): with the
  output of ``deblur --shake`` as the reference (what ``animate --shake`` does). Also per kernel (1-8).
* ``refine``: a test-time use of that motion, measured on Levin and paired per image with the DM's
  output ``x0``: ``x`` starts at ``x0`` and takes 30 Adam steps (lr 3e-3) on
  ``|reblur(x, G * flows) - blurred|^2 + L * |x - x0|^2`` for the ``(G, L)`` in ``REFINE``.
* ``video``: the model card's video PSNR / pPSNR with the ground-truth centre (kodak24 synthesis,
  seed 1234, 256 px, N = 9; the DAVIS clips, 15 windows) with the flows multiplied by each gain.

The DM is the installed one; ``--bie`` / ``--rvd`` replace the installed video networks (an older
version from git history, or a run's export), so that versions are compared with one DM.
CPU, bf16 as ``blurvid animate`` runs.
"""

from __future__ import annotations

import argparse
import json
import statistics as st
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from dm_paired import compare, levin_kernel, levin_kernel_file
from motion_size import _video_nets, add_video_options

from blurvid import evaluate as ev
from blurvid.metrics import aligned_psnr, best_shift
from blurvid.models.warp import warp
from blurvid.pipeline import ShakeRemover
from blurvid.train.export import EvalRuntime, evaluation_runtime


def reblur(sharp: torch.Tensor, flows: torch.Tensor) -> torch.Tensor:
    """Mean over ``flows (N, 2, H, W)`` of ``sharp (1, C, H, W)`` warped by each: ``(1, C, H, W)``."""
    return warp(sharp.expand(flows.shape[0], -1, -1, -1), flows).mean(0, keepdim=True)


def kernel_blur(sharp: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """``sharp (1, C, H, W)`` convolved with ``kernel (kh, kw)`` (sums to 1), replicate borders."""
    kh, kw = kernel.shape
    c = sharp.shape[1]
    x = F.pad(sharp, (kw // 2, kw - 1 - kw // 2, kh // 2, kh - 1 - kh // 2), mode="replicate")
    return F.conv2d(x, kernel.flip(0, 1)[None, None].expand(c, 1, kh, kw).contiguous(), groups=c)


def _shift_to(x: torch.Tensor, like: torch.Tensor, m: int = 8) -> torch.Tensor:
    """``x`` rolled by the whole-pixel shift (up to ``m`` px) that best matches ``like`` (interiors)."""
    dy, dx = best_shift(x, like, m)
    return torch.roll(x, (-dy, -dx), (-2, -1))


@dataclass
class LevinMotion:
    """One Levin image ``(1, C, H, W)`` with the DM's output and the flows ``(N, 2, H, W)`` predicted from it."""

    name: str
    blurred: torch.Tensor
    sharp: torch.Tensor
    deblurred: torch.Tensor
    flows: torch.Tensor


def levin_motion(rt: EvalRuntime, levin: Path, frames: int) -> list[LevinMotion]:
    """What ``blurvid animate`` computes for each Levin image, at ``frames`` instants."""
    out = []
    for p in ev.levin_pairs(levin):
        blurred = p.blurred[None]
        deblurred = rt.deblur(blurred)
        flows = rt.animator.flows(blurred, deblurred, frames).float()
        out.append(LevinMotion(p.name, blurred, p.sharp[None], deblurred, flows))
    return out


def levin_reblur(
    rt: EvalRuntime, items: list[LevinMotion], levin: Path, gains: list[float], shake: bool = False
) -> dict:
    """Per reference and gain (and ``"true kernel"``): mean reblur PSNR over Levin's 32 images, and per
    kernel. ``shake``: also the flows predicted from ``deblur --shake``'s output."""
    refs = ("dm", "gt", "shake") if shake else ("dm", "gt")
    remover = ShakeRemover(torch.device("cpu")) if shake else None
    scores: dict[str, list[float]] = {f"{r} x {g}": [] for r in refs for g in gains}
    scores["true kernel"] = []
    names = []
    for it in items:
        blurred, sharp = it.blurred, it.sharp
        names.append(it.name)
        n = it.flows.shape[0]
        by_ref = {"dm": it.flows, "gt": rt.animator.flows(blurred, _shift_to(sharp, it.deblurred), n).float()}
        if remover is not None:
            by_ref["shake"] = rt.animator.flows(blurred, remover.tensor(blurred), n).float()
        for ref, flows in by_ref.items():
            for g in gains:
                scores[f"{ref} x {g}"].append(float(aligned_psnr(blurred, reblur(sharp, g * flows))))
        kernel = levin_kernel_file(levin, levin_kernel(it.name))
        true = [aligned_psnr(blurred, kernel_blur(sharp, k)) for k in (kernel, kernel.flip(0, 1))]
        scores["true kernel"].append(float(max(true)))
    out = {}
    for row, v in scores.items():
        per_kernel = {
            k: st.mean(s for s, n in zip(v, names, strict=True) if levin_kernel(n) == k) for k in range(1, 9)
        }
        out[row] = {"mean": st.mean(v), "per_kernel": per_kernel}
    return out


REFINE = ((1.0, 1.0), (1.5, 1.0), (1.5, 0.3))  # (flow gain, weight of the pull towards the DM's output)


def refine(x0: torch.Tensor, blurred: torch.Tensor, flows: torch.Tensor, weight: float) -> torch.Tensor:
    """``x0 (1, C, H, W)`` moved so that :func:`reblur` of it by ``flows`` matches ``blurred``."""
    x = x0.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=3e-3)
    for _ in range(30):
        opt.zero_grad()
        loss = (reblur(x, flows) - blurred).square().mean() + weight * (x - x0).square().mean()
        loss.backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0, 1)
    return x.detach()


def levin_refine(items: list[LevinMotion]) -> dict:
    """Per ``REFINE`` variant: Levin aligned PSNR paired per image with the DM's output."""
    base, moved = [], {f"gain {g}, pull {w}": [] for g, w in REFINE}
    for it in items:
        base.append(float(aligned_psnr(it.deblurred, it.sharp)))
        for (g, w), scores in zip(REFINE, moved.values(), strict=True):
            with torch.enable_grad():
                scores.append(
                    float(aligned_psnr(refine(it.deblurred, it.blurred, g * it.flows, w), it.sharp))
                )
    return {name: compare(v, base) for name, v in moved.items()}


def video(rt: EvalRuntime, seqs: list[ev.Sequence_], gains: list[float]) -> dict:
    """Per gain: :func:`blurvid.evaluate.eval_video`'s means with the flows multiplied by the gain."""
    flows = {}  # flows depend on the sequence only: computed once, reused for every gain

    def runner(g: float) -> Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]:
        def run(blurred: torch.Tensor, center: torch.Tensor, n: int) -> torch.Tensor:
            key = (blurred.data_ptr(), n)
            if key not in flows:
                flows[key] = rt.animator.flows(blurred, center, n)
            return warp(center.expand(n, -1, -1, -1), g * flows[key])[None]

        return run

    return {str(g): ev.eval_video(runner(g), seqs)["mean"] for g in gains}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="the shared data folder")
    ap.add_argument("--gains", type=float, nargs="+", default=[0.0, 1.0, 1.15, 1.3, 1.5, 2.0])
    ap.add_argument("--frames", type=int, default=17, help="instants the Levin reblur averages")
    ap.add_argument("--sections", nargs="+", default=["levin_reblur", "refine", "video"])
    ap.add_argument("--shake", action="store_true", help="levin_reblur: also rows from deblur --shake")
    add_video_options(ap)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rt = evaluation_runtime("video", None, "cpu", "auto")
    if args.bie or args.rvd:
        from blurvid.pipeline import Animator

        rt.animator = Animator(
            rt.deblurrer, *_video_nets(args.bie, args.rvd), device=rt.device, dtype=rt.dtype
        )
    result: dict = {
        "gains": args.gains,
        "models": {**rt.models, "bie": args.bie or rt.models["bie"], "rvd": args.rvd or rt.models["rvd"]},
    }
    levin = args.data / "realblur" / "levin"
    items = levin_motion(rt, levin, args.frames) if {"levin_reblur", "refine"} & set(args.sections) else []
    if "levin_reblur" in args.sections:
        result["levin_reblur"] = levin_reblur(rt, items, levin, args.gains, args.shake)
        for g, r in result["levin_reblur"].items():
            kernels = " ".join(f"{v:.2f}" for v in r["per_kernel"].values())
            print(f"levin reblur  {g:>11}  {r['mean']:.3f} dB   kernels 1-8: {kernels}")
    if "refine" in args.sections:
        result["refine"] = levin_refine(items)
        for name, c in result["refine"].items():
            print(
                f"levin refine  {name:<18} {c['a']:.3f} vs one pass {c['b']:.3f}: {c['diff']:+.3f} "
                f"(se {c['se']:.3f}), better on {c['better']} of {c['n']}"
            )
    if "video" in args.sections:
        video_gains = [g for g in args.gains if g > 0]
        sets = {
            "synthetic": ev.synthetic_sequences(
                [args.data / "sharp" / "kodak24"], ev.eval_synth_config("video"), 24, 1234
            ),
            "clips": ev.clip_sequences([args.data / "video" / "bmx-trees", args.data / "video" / "tennis"]),
        }
        result["video"] = {name: video(rt, seqs, video_gains) for name, seqs in sets.items()}
        for name, rows in result["video"].items():
            for g, m in rows.items():
                print(
                    f"video {name:<9} gain {g:>5}  pPSNR {m['ppsnr']:.3f}  PSNR {m['psnr']:.3f}  OIE {m['oie']:.3f}"
                )
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
