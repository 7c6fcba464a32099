"""What ``deblur --shake`` does to photos that have no shake.

    python benchmarks/shake_on_sharp.py --photos $DATA/sharp/bsd100 $DATA/sharp/urban100 --count 4 \
        [--json benchmarks/results/shake_on_sharp.json]

For the first ``--count`` photos of each folder (sharp photos: the right answer is the photo itself)
it prints the estimated kernel's core (:func:`blurvid.shake.kernel_core`: 1.0 for a kernel of one
pixel; at ``ShakeRemover.min_blur_core`` and above ``--shake`` leaves the photo as it was), the PSNR of
the ``--shake`` result against the photo, and a reblur test of the kernel: ``r / r2``, where ``r`` is the
share of the photo's gradient energy left after blurring it with its own kernel and ``r2`` the same share
one blur later (a photo really blurred by the kernel loses little more: close to 1; a sharp one much
less). ``--blurred`` adds photos that are shaken (the examples, real blurred photos) for comparison.
``--dm`` also scores the installed network (``blurvid deblur`` without ``--shake``) on the sharp photos.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F


def _grad_energy(z: torch.Tensor) -> float:
    return float(
        ((z[..., 1:, :-1] - z[..., :-1, :-1]) ** 2 + (z[..., :-1, 1:] - z[..., :-1, :-1]) ** 2).mean()
    )


def reblur_ratio(grey: torch.Tensor, k: torch.Tensor) -> float:
    """``r / r2`` of a grey ``(1, 1, H, W)`` photo and its kernel ``(k, k)`` (see the module text)."""
    p = k.shape[-1] // 2

    def blur(z: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(z, (p, p, p, p), mode="replicate"), k.flip(0, 1)[None, None])

    y1 = blur(grey)
    y2 = blur(y1)
    m = k.shape[-1]
    inner = min(grey.shape[-2:]) > 3 * m

    def crop(z: torch.Tensor) -> torch.Tensor:
        return z[..., m:-m, m:-m] if inner else z

    r = _grad_energy(crop(y1)) / _grad_energy(crop(grey))
    r2 = _grad_energy(crop(y2)) / _grad_energy(crop(y1))
    return r / r2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", nargs="+", type=Path, required=True, help="folders of sharp photos")
    ap.add_argument(
        "--blurred", nargs="*", type=Path, default=[], help="shaken photos or folders, for comparison"
    )
    ap.add_argument("--count", type=int, default=4, help="photos per folder")
    ap.add_argument(
        "--dm", action="store_true", help="also the installed DM's result against each sharp photo"
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from blurvid.io import read_photo
    from blurvid.metrics import psnr
    from blurvid.pipeline import ShakeRemover
    from blurvid.shake import kernel_core

    torch.set_num_threads(args.threads)
    remover = ShakeRemover(torch.device("cpu"))
    dm = None
    if args.dm:
        from blurvid.train.export import evaluation_runtime

        dm = evaluation_runtime(
            "deblur", None, "cpu", "auto"
        ).deblur  # the registered default, as deblur runs it

    def files(p: Path) -> list[Path]:
        if p.is_file():
            return [p]
        return sorted(f for f in p.iterdir() if f.suffix.lower() in (".png", ".jpg"))[: args.count]

    rows = []
    for kind, sources in (("sharp", args.photos), ("blurred", args.blurred)):
        for f in [f for src in sources for f in files(src)]:
            x = torch.from_numpy(read_photo(f).pixels.copy()).permute(2, 0, 1)[None].float()
            k = remover.kernel(x)
            row = {
                "kind": kind,
                "photo": str(f),
                "core": kernel_core(k),
                "reblur": reblur_ratio(x.mean(1, keepdim=True), k),
            }
            if kind == "sharp":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "no camera shake found" is the right answer here
                    row["psnr_vs_photo"] = float(psnr(remover.tensor(x).clamp(0, 1), x))
                if dm is not None:
                    row["dm_psnr_vs_photo"] = float(psnr(dm(x).clamp(0, 1), x))
            rows.append(row)
            extra = f"  --shake vs photo {row['psnr_vs_photo']:.2f} dB" if kind == "sharp" else ""
            if "dm_psnr_vs_photo" in row:
                extra += f"  network vs photo {row['dm_psnr_vs_photo']:.2f} dB"
            print(
                f"{kind:7s} {f.parent.name}/{f.name}  core {row['core']:.2f}  reblur {row['reblur']:.3f}{extra}",
                flush=True,
            )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"min_blur_core": remover.min_blur_core, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
