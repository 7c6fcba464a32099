"""Is the blur one kernel for the whole photo? The measurement an automatic ``--shake`` would rest on.

    python benchmarks/shake_uniformity.py --data $DATA [--window 160] [--json out.json]

For each photo of two sets with known blur kinds, a blur kernel is estimated
(:func:`blurvid.shake.estimate_kernel`, 31 px) in each of its four corner windows of ``--window`` px,
and the four kernels' agreement is scored: the mean over the six pairs of their peak normalised
cross-correlation (1 = the same kernel up to a shift). Levin's 32 photos are uniform camera shake
(one kernel each, by construction); kodak24's synthetic set (``blurvid eval``'s protocol: seed 1234,
256 px) is not (the camera turns and zooms during the exposure, and objects move). If the two
distributions separate, agreement can choose between the deconvolution and the network; if they
overlap, it cannot. Reports each set's scores and the best threshold's accuracy. With ``--gains``
(``blurvid eval --json`` files: the network's, and ``--shake``'s on Levin and on kodak24), also what
choosing ``--shake`` where the agreement reaches a threshold would gain over the network, per set.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics as st
from pathlib import Path

import torch
import torch.nn.functional as F


def agreement(kernels: list[torch.Tensor]) -> float:
    """Mean over pairs of the peak normalised cross-correlation of two ``(k, k)`` kernels."""
    scores = []
    for a, b in itertools.combinations(kernels, 2):
        xc = F.conv2d(a[None, None], b[None, None], padding=b.shape[-1] - 1)  # conv2d correlates
        scores.append(float(xc.max() / (a.norm() * b.norm()).clamp_min(1e-12)))
    return st.mean(scores)


def corner_kernels(grey: torch.Tensor, window: int, size: int = 31) -> list[torch.Tensor]:
    """Kernels estimated in the four corner windows of a grey ``(H, W)`` image."""
    from blurvid.shake import estimate_kernel

    h, w = grey.shape
    win = min(window, h, w)
    corners = [(0, 0), (0, w - win), (h - win, 0), (h - win, w - win)]
    return [estimate_kernel(grey[y : y + win, x : x + win], size) for y, x in corners]


def choose_shake(uni: list[float], non: list[float], dm: Path, levin_shake: Path, kodak_shake: Path) -> list:
    """Per threshold: the mean gain over the network of taking ``--shake`` where the agreement reaches it."""
    nets = json.loads(dm.read_text())["sets"]
    shakes = {
        "levin": (json.loads(levin_shake.read_text())["sets"]["levin"], "psnr_aligned", uni),
        "synthetic": (json.loads(kodak_shake.read_text())["sets"]["synthetic"], "psnr", non),
    }
    gains = {}
    for name, (shake, key, scores) in shakes.items():
        pairs = zip(shake["items"], nets[name]["items"], strict=True)
        gains[name] = [(a, s[key] - n[key]) for a, (s, n) in zip(scores, pairs, strict=True)]
    rows = []
    for t in (0.0, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9):
        row = {"threshold": t}
        for name, items in gains.items():
            row[name] = st.mean(d if a >= t else 0.0 for a, d in items)
            row[f"{name}_shake"] = sum(a >= t for a, _ in items)
        rows.append(row)
        print(
            f"shake where agreement >= {t:.2f}: Levin {row['levin']:+.2f} dB ({row['levin_shake']}/{len(uni)}), "
            f"kodak24 {row['synthetic']:+.2f} dB ({row['synthetic_shake']}/{len(non)}) over the network"
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--window", type=int, default=160)
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--gains",
        nargs=3,
        type=Path,
        metavar=("DM_JSON", "LEVIN_SHAKE_JSON", "KODAK_SHAKE_JSON"),
        help="e.g. results/deblur_s27.json results/eval_levin_shake_s26.json results/eval_shake_judged_s24.json",
    )
    args = ap.parse_args()
    from blurvid import evaluate as ev

    torch.set_num_threads(2)
    sets = {
        "levin (uniform)": [p.blurred for p in ev.levin_pairs(args.data / "realblur" / "levin")],
        "kodak24 synthetic (not uniform)": [
            s.blurred
            for s in ev.synthetic_sequences(
                [args.data / "sharp" / "kodak24"], ev.eval_synth_config(), 24, 1234
            )
        ],
    }
    result: dict = {"window": args.window, "sets": {}}
    for name, images in sets.items():
        scores = [agreement(corner_kernels(im.mean(0), args.window)) for im in images]
        result["sets"][name] = scores
        q = sorted(scores)
        print(
            f"{name:34s} n {len(q)}  min {q[0]:.3f}  median {st.median(q):.3f}  max {q[-1]:.3f}", flush=True
        )
    uni, non = result["sets"].values()
    best = max(
        ((sum(s >= t for s in uni) + sum(s < t for s in non)) / (len(uni) + len(non)), t)
        for t in sorted(uni + non)
    )
    result["best_threshold"] = {"accuracy": best[0], "threshold": best[1]}
    print(f"best threshold {best[1]:.3f}: {best[0]:.0%} of the photos on the right side")
    if args.gains:
        result["choose_shake"] = choose_shake(uni, non, *args.gains)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
