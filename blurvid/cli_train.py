"""``blurvid train ...``, ``blurvid eval`` and ``blurvid synth``: thin wrappers over blurvid.train,
blurvid.evaluate and blurvid.data. Arguments and messages only."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .cli import flag

if TYPE_CHECKING:
    from rich.console import Console

    from .train.export import EvalRuntime

train_app = typer.Typer(
    help="Train the networks (the paper's two-stage protocol, resumable).", no_args_is_help=True
)

DataOpt = Annotated[
    list[str] | None,
    typer.Option("--data", "-d", help="Sharp photo files/folders to synthesise blur from (repeatable)."),
]
ClipsOpt = Annotated[
    list[str] | None, typer.Option("--clips", help="Folders of consecutive video frames (repeatable).")
]
ValOpt = Annotated[list[str] | None, typer.Option("--val", help="Validation photos (fixed synthesised set).")]


def _train(
    stage: str, out: Path | None, resume: bool, config: Path | None, device: str, progress: bool, **kw: object
) -> None:
    from .cli import UserError, err
    from .train.config import TrainConfig, check_keys
    from .train.loop import train

    base: dict = {}
    if config is not None:
        try:
            base = json.loads(config.read_text(encoding="utf-8-sig"))  # UTF-8, a BOM (Notepad) too
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise UserError(f"{config}: cannot read the config: {e}") from None
        if not isinstance(base, dict):
            raise UserError(f"{config}: a config file must hold a JSON object of TrainConfig fields")
        try:
            check_keys(base, base.get("stage", stage), str(config))
        except ValueError as e:
            raise UserError(str(e)) from None
    if resume:
        run = out or Path(base.get("out") or f"runs/{stage}")  # -o, else the config's run folder
        if not (run / "last.pt").exists():
            where = "" if out is not None else "name the run folder with -o, or "
            raise UserError(f"{run}: nothing to resume (no last.pt); {where}start without --resume")
        import torch

        try:
            ckpt = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
            stored, network = ckpt["config"], ckpt.get("video_config")  # a video run's network as built
            del ckpt
        except Exception as e:  # a cut-off or foreign file: unpickling, zip or key errors
            raise UserError(
                f"{run / 'last.pt'}: not a readable blurvid run checkpoint ({type(e).__name__})"
            ) from None
        if stored.get("stage", stage) != stage:
            raise UserError(
                f"{run} is a {stored.get('stage')!r} run: continue it with "
                f"`blurvid train {stored.get('stage')} --resume -o {run}`"
            )
    base = _absolute_inputs(base)  # a stored run's own paths stay as they were saved
    kw = _absolute_inputs(kw)
    given = {**base, **{k: v for k, v in kw.items() if v is not None and v != []}}  # the user's settings
    if resume:
        base = {**stored, **_as_stored(base, stored)}
        base["model"] = stored.get("model") or {}  # the run's network: _check_resume refuses a change
    stored_stage = base.pop("stage", stage)
    if stored_stage != stage:
        from .train.config import STAGES

        hint = (
            f"use `blurvid train {stored_stage}`"
            if stored_stage in STAGES
            else f"stages: {', '.join(STAGES)}"
        )
        raise UserError(f"the config is for stage {stored_stage!r}, not {stage!r}: {hint}")
    overrides = {k: v for k, v in kw.items() if v is not None and v != []}
    if resume:
        overrides = _as_stored(overrides, stored)
    merged = {**base, **overrides}
    # clips beside photos, newly given (a run resumed with --clips too) and no share chosen: half
    newly = "clips" in given if resume else True
    if (
        merged.get("clips")
        and merged.get("data")
        and newly
        and "clip_p" not in given
        and not merged.get("clip_p")
    ):
        from .data.datasets import CLIP_SHARE

        overrides["clip_p"] = CLIP_SHARE  # else the clips would never be drawn (the stage default is 0)
        err.print("--clips with --data: half of the samples come from the clips (--clip-p to change)")
    if "synth" in overrides:  # --crop / --frames change those settings, not the config's whole synthesis
        overrides["synth"] = {**base.get("synth", {}), **overrides["synth"]}
    if out is not None:
        overrides["out"] = str(out)
    if resume:
        _check_resume(stored, given, err, network)
    for option, key, used in (
        ("--autoencoder", "autoencoder", stage == "bie"),
        ("--flow-sup", "flow_sup", stage != "deblur"),
        ("--clip-p", "clip_p", bool(merged.get("clips"))),
    ):
        if key in overrides and not used:  # stored, and taken for a setting that does something
            err.print(
                f"{option} does nothing here ({stage} run{'' if key != 'clip_p' else ' without --clips'})"
            )
    try:
        cfg = TrainConfig.for_stage(stage, **{**base, **overrides})
        if not cfg.data and not cfg.clips:
            raise UserError("no training data: give --data PHOTO_FOLDER (and/or --clips FRAME_FOLDER)")
        summary = train(
            cfg,
            resume=resume,
            progress=progress and err.is_terminal,  # a log file gets a line every log_every iterations
            log=lambda m: err.print(m, markup=False),
            device=device,
        )
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        raise UserError(str(e)) from None
    metrics = ", ".join(f"{k}={v:.4g}" for k, v in summary.items() if isinstance(v, float))
    err.print(f"run folder: {cfg.out}" + (f"  last metrics: {metrics}" if metrics else ""))
    if summary.get("signal"):  # stopped by Ctrl-C / SIGTERM: the checkpoint is saved, the run not done
        raise typer.Exit(128 + int(summary["signal"]))


# what a run reads while it trains, kept absolute in its config: a resume from another folder reads
# the same files (relative ones failed there, or silently read that folder's namesakes)
_INPUTS = ("data", "clips", "val")
_INPUT = ("centre_dm", "teacher")


def _absolute_inputs(settings: dict) -> dict:
    """``settings`` with the paths a run reads while it trains made absolute (patterns stay patterns;
    ``centre_dm`` 'installed' stays a name)."""
    out = dict(settings)
    for key in _INPUTS:
        if isinstance(out.get(key), (list, tuple)):
            out[key] = [os.path.abspath(p) if isinstance(p, str) and p else p for p in out[key]]
    for key in _INPUT:
        if isinstance(out.get(key), str) and out[key] not in ("", "installed"):
            out[key] = os.path.abspath(out[key])
    return out


def _as_stored(settings: dict, stored: dict) -> dict:
    """``settings`` with each input path list that names the same files as the stored run's (once made
    absolute here) given as stored: an older run keeps its relative paths, its validation fingerprint
    and its best score."""
    out = dict(settings)
    for key in (*_INPUTS, *_INPUT):
        old = stored.get(key)
        if key in out and old is not None and _absolute_inputs({key: old})[key] == out[key]:
            out[key] = old
    return out


def _check_resume(stored: dict, given: dict, err: Console, network: dict | None = None) -> None:
    """UserError for settings a resume cannot honour: another network (``model``; ``network``: a video
    run's as its checkpoint records it), new ``init`` weights (a resumed run's weights come from its
    checkpoint) and another frame count for the video stages (their networks were built for the stored
    one). Says when the stored time budget is applied again."""
    from .cli import UserError

    def as_tuple(v: object) -> tuple:
        return tuple(v) if isinstance(v, (list, tuple)) else (() if v is None else (v,))

    if isinstance(given.get("model"), dict) and (changed := _model_changes(stored, given["model"], network)):
        raise UserError(
            f"model {changed}: a resumed run keeps the network it was built with; start a new run (-o) "
            "for another"
        )
    if "init" in given and as_tuple(given["init"]) != as_tuple(stored.get("init")):
        raise UserError(
            "--init: a resumed run continues from its checkpoint's weights; start a new run (-o) to begin "
            "from other weights"
        )
    from .data.synth import SynthConfig

    frames = (given.get("synth") or {}).get("frames")
    before = (stored.get("synth") or {}).get("frames", SynthConfig().frames)  # none stored: the default
    if stored.get("stage") in ("autoencoder", "bie") and frames is not None and frames != before:
        raise UserError(
            f"--frames {frames}: this run's networks were trained on {before} frames; resume with those, "
            "or start a new run"
        )
    if stored.get("minutes") and "minutes" not in given:
        err.print(
            f"the run's budget of {stored['minutes']:g} min applies again, with a new cosine (--minutes to "
            "change it, 0 for none)"
        )


def _model_changes(stored: dict, model: dict, network: dict | None = None) -> str:
    """What the ``model`` settings given for a resume change in the stored run's network (``"res_scale
    0.2 -> 0.5"``; empty when nothing): a setting left out keeps the run's, one given with the value the
    run has (however written: a list for a tuple) changes nothing. The network is the run's ``model``
    for the DM; for the video stages ``network``, the checkpoint's record of what was built (a bie run
    takes most of it from its stage-1 run), and their ``frames`` follow the synthesis (checked apart)."""
    from .cli import UserError
    from .models.deblur import DMConfig
    from .models.encoders import VideoConfig

    built = stored.get("model") or {}
    if stored.get("stage", "deblur") == "deblur":
        arch: type[DMConfig] | type[VideoConfig] = DMConfig
    else:
        arch, built = VideoConfig, network or built
        model = {k: v for k, v in model.items() if k != "frames"}
    try:
        changed = arch.changes(built, model)
    except (TypeError, ValueError) as e:
        raise UserError(str(e)) from None
    return ", ".join(f"{k} {was} -> {now}" for k, (was, now) in changed.items())


def _stage_command(stage: str) -> Callable[..., None]:
    def command(
        data: DataOpt = None,
        clips: ClipsOpt = None,
        val: ValOpt = None,
        out: Annotated[
            Path | None, typer.Option("--out", "-o", help="Run folder (default runs/<stage>).")
        ] = None,
        iters: Annotated[
            int | None,
            typer.Option(
                help="Total iterations (default: the paper's, 450000 for deblur, 50000 for autoencoder and bie)."
            ),
        ] = None,
        minutes: Annotated[
            float | None,
            typer.Option(
                help="Stop each invocation after so many minutes (0 = no limit; a resume keeps the run's "
                "budget unless given); a cosine lr follows the clock, so each resumed invocation with a "
                "budget starts a new cosine (a warm restart) unless the iteration count is further along "
                "the cosine over --iters."
            ),
        ] = None,
        batch: Annotated[
            int | None,
            typer.Option(
                help="Batch size (default: the paper's, 16 for deblur, 10 for autoencoder and bie)."
            ),
        ] = None,
        accum: Annotated[
            int | None,
            typer.Option(help="Micro-batches of --batch per optimizer step (gradient accumulation)."),
        ] = None,
        lr: Annotated[
            float | None, typer.Option(help="Adam learning rate (default 1e-4, the paper's).")
        ] = None,
        clip_p: Annotated[
            float | None,
            typer.Option(
                min=0, max=1, help="Share of samples from --clips when --data is given too (default 0.5)."
            ),
        ] = None,
        clip_holdout: Annotated[
            float | None,
            typer.Option(
                min=0,
                max=0.99,
                help="Never train on the last share of each clip's frames (score them with eval --clips-holdout).",
            ),
        ] = None,
        crop: Annotated[int | None, typer.Option(help="Training crop size (px; default 256).")] = None,
        frames: Annotated[int | None, typer.Option(min=2, help="Frames N per sequence.")] = None,
        init: Annotated[
            list[str] | None,
            typer.Option(help="Start from these weights (.safetensors; repeatable, e.g. bie + rvd)."),
        ] = None,
        autoencoder: Annotated[
            str | None, typer.Option(help="bie: the stage-1 run folder or checkpoint.")
        ] = None,
        flow_sup: Annotated[
            float | None, typer.Option(help="Weight of true-flow supervision (0 = the paper's loss).")
        ] = None,
        workers: Annotated[int | None, typer.Option(help="DataLoader worker processes (default 1).")] = None,
        precision: Annotated[str | None, typer.Option(help="auto | bf16 | fp16 | fp32")] = None,
        config: Annotated[Path | None, typer.Option(help="JSON file with any TrainConfig fields.")] = None,
        resume: Annotated[
            bool, flag("--resume", help="Continue the run in --out from its last checkpoint.")
        ] = False,
        device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
        progress: Annotated[
            bool,
            flag(
                "--progress/--no-progress",
                help="Rich progress bar on a terminal; without one, or with --no-progress, a line every "
                "log_every iterations.",
            ),
        ] = True,
    ) -> None:
        synth: dict = {}
        if crop is not None:
            synth["size"] = crop
        if frames is not None:
            synth["frames"] = frames
        _train(
            stage,
            out,
            resume,
            config,
            device,
            progress,
            data=data,
            clips=clips,
            val=val,
            iters=iters,
            minutes=minutes,
            batch=batch,
            accum=accum,
            lr=lr,
            clip_p=clip_p,
            clip_holdout=clip_holdout,
            init=tuple(init) if init else None,
            autoencoder=autoencoder,
            flow_sup=flow_sup,
            workers=workers,
            precision=precision,
            synth=synth or None,
        )

    command.__doc__ = {
        "deblur": "Train the deblurring module (DM): L1 to the central sharp frame.",
        "autoencoder": "Stage 1: train the video autoencoder (RVE + RVD) on sharp frame sequences.",
        "bie": "Stage 2: train the blurred image encoder with the stage-1 RVD (ordering-invariant loss).",
    }[stage]
    return command


for _stage in ("deblur", "autoencoder", "bie"):
    train_app.command(_stage)(_stage_command(_stage))


@train_app.command("export")
def export_command(
    run: Annotated[
        Path,
        typer.Argument(
            help="Run folder (uses best.safetensors), a run's last.pt (its weight average if kept) or a checkpoint."
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the exported files (e.g. weights/).")
    ] = Path("weights"),
    name: Annotated[
        str, typer.Option(help="Checkpoint name, after the network's: v1 -> dm-v1.safetensors.")
    ] = "v1",
    fp16: Annotated[bool, flag("--fp16/--fp32", help="Store fp16 weights when lossless enough.")] = True,
    default: Annotated[
        bool, flag("--default/--no-default", help="Make these the default checkpoints.")
    ] = True,
    registry: Annotated[
        Path | None, typer.Option(help="Registry file to update (default: OUT/registry.json).")
    ] = None,
    license_: Annotated[str, typer.Option("--license", help="License of the weights.")] = "MIT",
    source: Annotated[str, typer.Option(help="How the weights were made.")] = "",
    overwrite: Annotated[
        bool, flag("--overwrite", help="Replace checkpoint files of the same name.")
    ] = False,
) -> None:
    """Export a run's best weights as inference checkpoints (sha256, registry entry)."""
    from .cli import UserError
    from .cli import out as console
    from .train.export import export

    try:
        specs = export(
            run,
            out,
            name=name,
            fp16=fp16,
            default=default,
            registry=registry,
            license=license_,
            source=source,
            overwrite=overwrite,
        )
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        raise UserError(str(e)) from None
    for spec, note in specs:
        console.print(f"{spec.name}: {out / spec.file} sha256 {spec.sha256[:12]}… {note}")


class Centre(str, Enum):
    """Where `eval video` takes the frame it warps from."""

    gt = "gt"
    dm = "dm"


class Target(str, Enum):
    """`eval deblur --synth`'s sharp target: the central instant or the time-averaged pose."""

    time = "time"
    mean = "mean"


EVAL_TASKS = ("deblur", "video", "autoencoder")
_RUN_FILES = ("best.safetensors", "last.pt", "config.json", "metrics.jsonl")  # what a run folder holds
_JSON_PEEK = 1 << 16  # bytes of an existing --json file read to tell a JSON result from anything else


def _nothing_to_evaluate(task: str) -> str:
    """The error for an `eval` without sets, naming only the options that give ``task`` one."""
    given = "--levin, --pairs, --synth or --clips" if task == "deblur" else "--pairs, --synth or --clips"
    return f"nothing to evaluate: give {given}"


def _check_eval_args(
    task: str, levin: Path | None, pairs: Path | None, synth: list[str] | None, clips: list[str] | None
) -> None:
    """UserError (one line, exit 2) for an `eval` that cannot be run as asked: an unknown task,
    ``--levin`` with a video task (the Levin set has no frames to score a video against), no set."""
    from .cli import UserError

    if task not in EVAL_TASKS:
        raise UserError(f"unknown eval task {task!r}: use {', '.join(EVAL_TASKS)}")
    if levin is not None and task != "deblur":
        raise UserError(
            f"--levin {levin}: the Levin set has no video ground truth (one sharp image per blurred one); "
            "it is for `eval deblur` only"
        )
    if not (levin or pairs or synth or clips):
        raise UserError(_nothing_to_evaluate(task))


def _eval_result(path: Path) -> bool:
    """Whether the file at ``path`` is an earlier ``blurvid eval --json`` result (a small JSON object
    with its ``task`` and ``sets``)."""
    try:
        if path.stat().st_size > _JSON_PEEK * 64:
            return False
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and "task" in doc and "sets" in doc


def _json_refusal(json_out: Path, inputs: list[tuple[str, Path]]) -> str | None:
    """Why the result must not be written to ``json_out``, or None. ``inputs``: ``(option, path)`` of
    everything the evaluation reads (``--run`` among them). Refused: a folder, a place that cannot be
    written, one of the inputs, a file inside an input folder that would be read as one of its images
    or checkpoints or that is not an earlier ``eval`` result (a sample's ``meta.json``), and an existing
    file that is no JSON result (it does not start, after white space, with ``{``): the result never
    replaces a photo, a checkpoint or the data it measured."""
    from .cli import unwritable
    from .data.datasets import IMAGE_EXTS

    if json_out.is_dir():
        return "cannot write there: it is a folder"
    why = unwritable(json_out)
    if why is not None:
        return f"cannot write there: {why}"
    target = json_out.resolve()
    for option, path in inputs:
        where = path.resolve()
        read = target == where
        if option == "--run":  # a run folder, or a checkpoint in one: the run's own files
            folder = where if where.is_dir() else where.parent
            read = read or (target.parent == folder and target.name in _RUN_FILES)
        elif where.is_dir() and target.is_relative_to(where):
            read = (
                read
                or target.suffix.lower() in IMAGE_EXTS
                or (json_out.is_file() and not _eval_result(json_out))
            )
        if read:
            return f"it is an input of this evaluation ({option} {path}); choose another file"
    if json_out.is_file():
        try:
            with json_out.open("rb") as f:
                head = f.read(_JSON_PEEK).lstrip()
        except OSError as e:
            return f"cannot read the file there ({e.strerror or e}); choose another file"
        if not head.startswith(b"{"):
            return "the file there is not a JSON result (it would be replaced); choose another file"
    return None


def eval_command(
    task: Annotated[
        str, typer.Argument(help="deblur | video | autoencoder (stage 1, needs --run)")
    ] = "deblur",
    levin: Annotated[
        Path | None, typer.Option(help="Levin et al. folder (imX_kernelY_img.png + gt/).")
    ] = None,
    pairs: Annotated[
        Path | None,
        typer.Option(
            help="Folder with blurred/ + sharp/ (paired by their path below each), or a `blurvid synth` set."
        ),
    ] = None,
    synth: Annotated[
        list[str] | None, typer.Option(help="Photos to synthesise a fixed set from (e.g. kodak24).")
    ] = None,
    clips: ClipsOpt = None,
    clips_holdout: Annotated[
        float,
        typer.Option(
            min=0,
            max=0.99,
            help="--clips: score only the last share of each clip's frames, which a run trained with that "
            "clip_holdout never read (0: all frames).",
        ),
    ] = 0.0,
    count: Annotated[int, typer.Option(min=1, max=10_000, help="Synthesised samples (held in memory).")] = 24,
    seed: Annotated[int, typer.Option(help="Seed of the synthesised set.")] = 1234,
    size: Annotated[int, typer.Option(min=16, help="Synthesised crop size.")] = 256,
    frames: Annotated[int, typer.Option(min=2, help="Frames N of synthesised/clip sequences.")] = 9,
    out_frames: Annotated[
        int | None,
        typer.Option(
            "--out-frames",
            min=2,
            help="video: frames to predict (default N), scored against the true frames at the same moments: "
            "N divided by an odd number (9: 3 or 9).",
        ),
    ] = None,
    center: Annotated[
        Centre, typer.Option(help="video: centre frame from 'gt' or 'dm' (end to end).")
    ] = Centre.gt,
    target: Annotated[
        Target,
        typer.Option(
            help="deblur --synth: the sharp target at the central instant ('time', the default protocol) "
            "or at the time-averaged pose ('mean', where the blur is centred)."
        ),
    ] = Target.time,
    noise: Annotated[
        bool,
        flag(
            "--noise/--no-noise",
            help="--synth: sensor noise as in the synthesis defaults (the default protocol), or none "
            "(clean like a low-ISO photo).",
        ),
    ] = True,
    run: Annotated[
        Path | None,
        typer.Option(
            help="Evaluate a training run (its best.safetensors), a run's last.pt or a checkpoint file "
            "instead of the installed weights."
        ),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the full result as JSON.")] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    precision: Annotated[str, typer.Option(help="auto | fp32 | bf16 | fp16 (fp16: CUDA only)")] = "auto",
    shake: Annotated[
        bool,
        flag("--shake", help="deblur: measure camera-shake mode (deblur --shake) instead of the DM."),
    ] = False,
) -> None:
    """Measure deblurring (PSNR/SSIM), video (PSNR, pPSNR, Eq. 6 error vs static) or a stage-1 run.

    Video: against static baselines; autoencoder: the same video metrics, reconstructed from the true
    frames."""
    from rich.table import Table

    from .cli import UserError
    from .cli import out as console
    from .train.export import evaluation_runtime

    _check_eval_args(task, levin, pairs, synth, clips)
    if json_out is not None:  # before the evaluation, whose results would be lost
        given = [("--levin", levin), ("--pairs", pairs), ("--run", run)]
        given += [("--synth", Path(p)) for p in synth or ()] + [("--clips", Path(p)) for p in clips or ()]
        why = _json_refusal(json_out, [(option, p) for option, p in given if p is not None])
        if why is not None:
            raise UserError(f"--json {json_out}: {why}")
    try:
        rt = evaluation_runtime(task, run, device, precision, shake)
        result = _evaluate(
            task,
            rt,
            levin,
            pairs,
            synth,
            clips,
            count,
            seed,
            size,
            frames,
            out_frames,
            center.value,
            target.value,
            noise,
            clips_holdout,
        )
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None
    result = {
        **result,
        "models": rt.models,
        "device": str(rt.device),
        "precision": str(rt.dtype).removeprefix("torch."),
        **({"synth": {"count": count, "seed": seed, "size": size, "noise": noise}} if synth else {}),
        **({"clips_holdout": clips_holdout} if clips else {}),
        **({"run": {"path": str(run), **rt.train}} if run is not None else {}),
    }
    table = Table()
    for c in ("set", "count", *result["columns"]):
        # the set's name whole (a narrow terminal broke "synthetic" over two lines), numbers folded
        table.add_column(c.replace("_", " "), overflow="fold", no_wrap=c == "set")
    for set_name, r in result["sets"].items():
        means = [r["mean"].get(c, float("nan")) for c in result["columns"]]
        # a metric a set has no value for (aligned PSNR of synthetic blur) is a dash, not nan
        table.add_row(set_name, str(r["count"]), *("-" if m != m else f"{m:.4f}" for m in means))
    console.print(table)
    if json_out:
        from .evaluate import write_json

        write_json(result, json_out)
        console.print(f"wrote {json_out}")


def _evaluate(
    task: str,
    rt: EvalRuntime,
    levin: Path | None,
    pairs: Path | None,
    synth: list[str] | None,
    clips: list[str] | None,
    count: int,
    seed: int,
    size: int,
    frames: int,
    out_frames: int | None,
    center: str,
    target: str = "time",
    noise: bool = True,
    clip_holdout: float = 0.0,
) -> dict:
    """The result of `eval TASK` (before the CLI adds what measured): ``task``, the settings that change
    the numbers (``target`` or ``center`` / ``out_frames``, ``frames`` where sequences are made, the
    inputs as given: ``levin``, ``pairs``, ``synth_sources``, ``clips``), ``columns`` and ``sets``,
    ``{name: summary}``, one per set asked for (a name taken already gets `` (2)``...). The arguments
    are :func:`_check_eval_args`'s, checked before the networks load."""
    from . import evaluate as ev

    sets: dict[str, dict] = {}
    scfg = ev.eval_synth_config(task, size=size, frames=frames, target=target, noise=noise)
    if task == "deblur":
        chosen = ev.deblur_sets(
            levin=levin,
            folder=pairs,
            synth=synth or (),
            synth_cfg=scfg,
            count=count,
            seed=seed,
            clips=clips or (),
            frames=frames,
            clip_holdout=clip_holdout,
        )
        for name, (items, align) in chosen.items():
            sets[name] = ev.eval_deblur(rt.deblur, items, align=align)
        columns = ["psnr", "ssim", "psnr_in", "ssim_in", "psnr_aligned", "psnr_in_aligned"]
    else:  # video, autoencoder
        if task == "autoencoder" and center != "gt":
            raise ValueError("eval autoencoder reconstructs from the true frames: --center must be gt")
        center_fn = rt.deblur if center == "dm" else None
        run_fn, inputs = (rt.autoencode, "frames") if task == "autoencoder" else (rt.video, "blurred")
        groups: dict[str, list[ev.Sequence_]] = {}
        if synth:
            groups["synthetic"] = ev.synthetic_sequences(synth, scfg, count, seed)
        if clips:
            groups[ev.unique_name("clips", groups)] = ev.clip_sequences(clips, frames, holdout=clip_holdout)
        if pairs:
            groups[ev.unique_name(str(pairs), groups)] = ev.folder_sequences(pairs)
        for k, seqs in groups.items():
            sets[k] = ev.eval_video(run_fn, seqs, center_fn, out_frames, inputs)
            sets[k]["blurred_static_baseline"] = ev.static_blur_baseline(
                seqs, frames=out_frames, inputs=inputs
            )
            counts = sorted({int(q.frames.shape[0]) for q in seqs})  # a --pairs set has its own N
            sets[k]["frames"] = counts[0] if len(counts) == 1 else counts
        columns = ["psnr", "ppsnr", "oie", "static_psnr", "static_oie"]
    if not sets:
        raise ValueError(_nothing_to_evaluate(task))
    video = task in ("video", "autoencoder")
    made = synth or clips  # sequences of --frames frames are made (a --pairs set has its own)
    return {
        "task": task,
        **({"center": center, "frames": frames, "out_frames": out_frames} if video else {"target": target}),
        **({"frames": frames} if made and not video else {}),
        **({"levin": str(levin)} if levin else {}),
        **({"pairs": str(pairs)} if pairs else {}),
        **({"synth_sources": list(synth)} if synth else {}),
        **({"clips": list(clips)} if clips else {}),
        "columns": columns,
        "sets": sets,
    }


def synth_command(
    sources: Annotated[list[str], typer.Argument(help="Sharp photo files/folders.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    count: Annotated[
        int, typer.Option(min=1, max=99_999, help="Number of samples (sample_00000 … sample_99998).")
    ] = 100,
    frames: Annotated[int, typer.Option(min=2, help="Sharp frames N per sample.")] = 9,
    size: Annotated[int, typer.Option(min=16, help="Crop size (px).")] = 256,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives byte-identical samples.")] = 0,
    blur: Annotated[
        float | None, typer.Option(help="Longest camera path over the exposure (px; default 30).")
    ] = None,
    clips: ClipsOpt = None,
    clip_p: Annotated[
        float | None,
        typer.Option(min=0, max=1, help="Share of samples made from --clips (default with --clips: 0.5)."),
    ] = None,
    overwrite: Annotated[
        bool, flag("--overwrite", help="Replace the samples of an earlier run in --out.")
    ] = False,
) -> None:
    """Write a synthesised dataset: <out>/sample_NNNNN/{blurred.png, frames/frame_NN.png, flows.npy, meta.json}
    and <out>/synth.json (the count asked for: eval warns when samples are missing)."""
    from rich.progress import track

    from . import fsutil
    from .cli import UserError, err
    from .cli import out as console
    from .data.datasets import CLIP_SHARE, ClipDataset, MixedDataset, PhotoSynthDataset
    from .data.export import write_sample
    from .data.synth import SynthConfig
    from .evaluate import SYNTH_RECORD

    if clip_p is not None and not clips:
        raise UserError("--clip-p needs --clips: the frame folders to draw that share of samples from")
    if out.exists() and not out.is_dir():
        raise UserError(f"-o {out}: is a file, not a folder")
    for source in sources:  # its samples would be read back as sharp photos (or removed by --overwrite)
        where, src = out.resolve(), Path(source).resolve()
        if where.is_relative_to(src) or src.is_relative_to(where):
            raise UserError(
                f"-o {out}: {'lies inside' if where.is_relative_to(src) else 'holds'} the source {source}; "
                "write the samples to a folder apart from the photos they are made from"
            )
    earlier = sorted(out.glob("sample_*")) if out.is_dir() else []
    if earlier and not overwrite:
        raise UserError(
            f"-o {out}: holds {len(earlier)} samples of an earlier run; choose another folder or --overwrite"
        )
    try:
        cfg = SynthConfig(
            frames=frames,
            size=size,
            **({"blur_px": (min(SynthConfig.blur_px[0], blur), blur)} if blur is not None else {}),
            exposure_length=True,  # a new dataset's trails as long as --blur says
        )
        photos = PhotoSynthDataset(sources, cfg, seed=seed)
        cl = ClipDataset(clips, frames=frames, size=size, seed=seed) if clips else None
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None
    share = (CLIP_SHARE if cl else 0.0) if clip_p is None else clip_p
    ds = MixedDataset(photos, cl, share, seed=seed)

    # --overwrite: none of the earlier run's samples stays beside the new ones; and the hidden half-written
    # sample a killed run left (write_sample's .sample_NNNNN.tmp) goes in any case
    for old in [*earlier, *(out.glob(".sample_*.tmp") if out.is_dir() else [])]:
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    meta = {"seed": seed, "synth": cfg.to_dict(), **({"clips": list(clips), "clip_p": share} if cl else {})}

    def record(complete: bool) -> None:  # for eval: a stopped run's set is known as incomplete
        with fsutil.atomic_path(out / SYNTH_RECORD) as tmp:
            tmp.write_text(json.dumps({"count": count, "seed": seed, "complete": complete}) + "\n")

    record(False)
    done = 0
    try:
        for i in track(range(count), description="synth", transient=True, disable=not console.is_terminal):
            write_sample(out / f"sample_{i:05d}", ds[i], {**meta, "index": i})
            done = i + 1
    except (ValueError, OSError) as e:  # a photo that cannot be decoded, a folder that cannot be written
        raise UserError(f"synth stopped at sample {done}: {e} ({done} of {count} samples written)") from None
    except BaseException:  # a stop signal, Ctrl-C: each sample on disk is whole, the set is not
        err.print(f"{out}: {done} of {count} samples written before the stop")
        raise
    record(True)
    console.print(f"wrote {count} sample{'s' if count != 1 else ''} to {out}")
