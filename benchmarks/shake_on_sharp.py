"""What ``deblur --shake`` does to photos that have no shake, and how it tells them from shaken ones.

    python benchmarks/shake_on_sharp.py --photos $DATA/sharp/bsd100 $DATA/sharp/urban100 --count 4 \
        [--noise 5] [--blurred examples $DATA/realblur/photos] [--json benchmarks/results/shake_on_sharp.json]

For the first ``--count`` photos of each folder (sharp photos: the right answer is the photo itself;
``--noise N`` adds Gaussian noise of N/255 to them first, seeded, rounded to 8 bits, like a high-ISO
file; ``--upscale F`` enlarges them first, bicubic, like a big photo that is soft at the pixel level)
it prints how much the installed DM changes the photo (:func:`blurvid.pipeline.network_change_db`:
at ``ShakeRemover.min_change_db`` and above, ``--shake`` leaves the photo as it was), the estimated
kernel's core (:func:`blurvid.shake.kernel_core`: 1.0 for a kernel of one pixel; at
``ShakeRemover.min_blur_core`` and above ``--shake`` leaves the photo too), a reblur test of the kernel
(``r / r2``, where ``r`` is the share of the photo's gradient energy left after blurring it with its own
kernel and ``r2`` the same share one blur later: close to 1 for a photo really blurred by the kernel),
and the PSNR against the photo of ``--shake`` as the command runs it (``judged``) and without the
network's check (``unjudged``, what it did before session 24). ``--blurred`` adds shaken photos or folders
(the examples, real blurred photos, Levin's set) for comparison. ``--dm`` also scores the installed
network (``blurvid deblur`` without ``--shake``) on the sharp photos.
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
    ap.add_argument("--photos", nargs="*", type=Path, default=[], help="folders of sharp photos")
    ap.add_argument(
        "--blurred", nargs="*", type=Path, default=[], help="shaken photos or folders, for comparison"
    )
    ap.add_argument("--count", type=int, default=4, help="photos per folder")
    ap.add_argument("--noise", type=float, default=0.0, help="noise added to the sharp photos (/255)")
    ap.add_argument(
        "--upscale",
        type=float,
        default=1.0,
        help="bicubic upscale of the sharp photos first (the pixel-level softness of a big photo)",
    )
    ap.add_argument(
        "--dm", action="store_true", help="also the installed DM's result against each sharp photo"
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from blurvid.io import read_photo
    from blurvid.metrics import psnr
    from blurvid.pipeline import ShakeRemover, network_change_db
    from blurvid.shake import kernel_core
    from blurvid.train.export import evaluation_runtime

    torch.set_num_threads(args.threads)
    dm = evaluation_runtime(
        "deblur", None, "cpu", "auto"
    ).deblurrer  # the registered default, as deblur runs it
    assert dm is not None
    unjudged = ShakeRemover(torch.device("cpu"))
    judged = ShakeRemover(torch.device("cpu"), judge=dm)  # as `deblur --shake` runs it
    gen = torch.Generator().manual_seed(0)

    def files(p: Path) -> list[Path]:
        if p.is_file():
            return [p]
        return sorted(
            f for f in p.iterdir() if f.suffix.lower() in (".png", ".jpg", ".jpeg", ".tif", ".tiff")
        )[: args.count]

    rows = []
    for kind, sources in (("sharp", args.photos), ("blurred", args.blurred)):
        for f in [f for src in sources for f in files(src)]:
            x = torch.from_numpy(read_photo(f).pixels.copy()).permute(2, 0, 1)[None].float()
            if kind == "sharp" and args.upscale != 1:
                size = [round(n * args.upscale) for n in x.shape[-2:]]
                x = F.interpolate(x, size=size, mode="bicubic", align_corners=False).clamp(0, 1)
                x = (x * 255).round() / 255
            if kind == "sharp" and args.noise > 0:
                x = x + torch.randn(x.shape, generator=gen) * (args.noise / 255)
                x = (x.clamp(0, 1) * 255).round() / 255
            k = unjudged.kernel(x)
            row = {
                "kind": kind,
                "photo": str(f),
                "change_db": network_change_db(dm, x, judged.work_side),
                "core": kernel_core(k),
                "reblur": reblur_ratio(x.mean(1, keepdim=True), k),
            }
            row["left_as_it_was"] = (
                row["change_db"] >= judged.min_change_db or row["core"] >= judged.min_blur_core
            )
            if kind == "sharp":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "no camera shake found" is the right answer here
                    row["unjudged_psnr_vs_photo"] = float(psnr(unjudged.tensor(x, kernel=k).clamp(0, 1), x))
                    row["psnr_vs_photo"] = float(psnr(judged.tensor(x).clamp(0, 1), x))
                if args.dm:
                    row["dm_psnr_vs_photo"] = float(psnr(dm.tensor(x).clamp(0, 1), x))
            rows.append(row)
            extra = ""
            if kind == "sharp":
                judged_db, unjudged_db = row["psnr_vs_photo"], row["unjudged_psnr_vs_photo"]
                extra = f"  --shake vs photo {judged_db:.2f} dB (unjudged {unjudged_db:.2f})"
            if "dm_psnr_vs_photo" in row:
                extra += f"  network vs photo {row['dm_psnr_vs_photo']:.2f} dB"
            print(
                f"{kind:7s} {f.parent.name}/{f.name}  change {row['change_db']:.2f} dB  core {row['core']:.2f}"
                f"  reblur {row['reblur']:.3f}  {'left' if row['left_as_it_was'] else 'deconvolved'}{extra}",
                flush=True,
            )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        limits = {"min_blur_core": judged.min_blur_core, "min_change_db": judged.min_change_db}
        extra = {"noise": args.noise, "upscale": args.upscale}
        args.json.write_text(json.dumps({**limits, **extra, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
