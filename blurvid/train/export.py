"""Export a training run to inference checkpoints, and build evaluation runtimes from runs or the registry."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import weights
from ..pipeline import (
    Animator,
    Deblurrer,
    ShakeRemover,
    build_from_checkpoint,
    load_model,
    resolve_precision,
    select_device,
)

INFERENCE_ARCHS = ("dm", "bie", "rvd")  # what `deblur` / `animate` need (the RVE is training-only)


def _run_file(run: Path) -> Path:
    p = Path(run)
    if p.is_dir():
        p = p / "best.safetensors"
    if not p.exists():
        last = p.with_name("last.pt")
        if p.name == "best.safetensors" and last.exists():
            hint = f"export its last weights: {last}"
        elif p.name == "best.safetensors" and p.parent.is_dir():
            hint = "the run has saved no checkpoint yet"
        else:
            hint = "train first, or give the run folder"
        raise FileNotFoundError(f"{p}: no such checkpoint ({hint})")
    return p


def _run_name(run: Path) -> str:
    """The run folder's name, also for a file inside it (``runs/x/last.pt`` -> ``x``)."""
    return run.parent.name if run.name in ("last.pt", "best.safetensors") and run.parent.name else run.name


def _load_run(run: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """``(state, metadata)`` of a run folder's best.safetensors, a safetensors checkpoint, or a resumable
    ``last.pt``. From ``last.pt`` the weight average is taken when the run kept one (``ema``), else the
    raw weights; the metadata then says which (``train.weights``) and at what iteration."""
    path = _run_file(run)
    if path.suffix != ".pt":
        return weights.load_checkpoint(path)
    from .config import TrainConfig
    from .loop import exportable_state
    from .tasks import make_task

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any unreadable file is one user-facing error
        raise ValueError(f"{path}: not a blurvid training checkpoint (torch.load cannot read it)") from e
    kind = "ema" if "ema" in ckpt else "model"
    try:
        task = make_task(
            TrainConfig.from_dict(ckpt["config"]), references=False, video_config=ckpt.get("video_config")
        )
        task.net.load_state_dict(ckpt[kind])
    except Exception as e:
        raise ValueError(
            f"{path}: not a usable blurvid training checkpoint ({type(e).__name__}: {weights._one_line(e)})"
        ) from e
    state, configs, arch = exportable_state(task, task.net)
    train = {"iteration": int(ckpt["iteration"]), "weights": "average" if kind == "ema" else "raw"}
    return state, {"config": configs, "arch": arch, "train": train}


def split_run(run: Path) -> dict[str, tuple[dict[str, torch.Tensor], dict]]:
    """``{arch: (state_dict without prefix, config)}`` from a run's best.safetensors, a resumable
    ``last.pt`` (its weight average when kept), or an exported inference checkpoint (one network,
    unprefixed keys, its own config), e.g. ``weights/dm-v5.safetensors``."""
    return _split(*_load_run(run))


def _split(state: dict[str, torch.Tensor], meta: dict) -> dict[str, tuple[dict[str, torch.Tensor], dict]]:
    """:func:`split_run` of an already loaded ``(state, metadata)``."""
    configs = meta["config"]
    arch = meta.get("arch")
    if arch in weights.ARCHS and not any(k.startswith(f"{arch}.") for k in state):  # one network's own file
        return {arch: (state, configs)}
    out = {}
    for arch, cfg in configs.items():
        prefix = f"{arch}."
        out[arch] = ({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}, cfg)
    return out


def _max_output_diff(arch: str, state: dict, cfg: dict) -> float:
    """Largest output change from storing ``state`` in fp16, on a fixed random input (fp32 compute)."""
    ref = build_from_checkpoint(arch, state, cfg)
    half = build_from_checkpoint(
        arch, {k: v.half() if v.is_floating_point() else v for k, v in state.items()}, cfg
    )
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        if arch == "dm":
            x = torch.rand(1, 3, 96, 128, generator=g)
            return float((ref(x) - half(x)).abs().max())
        if arch == "bie":
            x = torch.rand(1, 3, 64, 64, generator=g)
            return float((ref(x, x) - half(x, x)).abs().max())
        if arch == "rvd":
            e = torch.randn(1, 2 * ref.config.hidden, 8, 8, generator=g)
            c = torch.rand(1, 3, 64, 64, generator=g)
            return float((ref(e, c, 5).flows[-1] - half(e, c, 5).flows[-1]).abs().max())
    raise ValueError(f"no fp16 check for a {arch!r} network")  # 0.0 would read as "fp16 is lossless"


def export(
    run: Path,
    out: Path,
    *,
    name: str = "v1",
    fp16: bool = True,
    default: bool = True,
    registry: Path | None = None,
    license: str = "MIT",
    source: str = "",
    tolerance: float = 2e-3,
    overwrite: bool = False,
) -> list[tuple[weights.CheckpointSpec, str]]:
    """Write ``<arch>-<name>.safetensors`` for every inference arch in the run and register them.

    Raises FileExistsError when one of those files exists already (a shipped checkpoint, say), unless
    ``overwrite``; ValueError for a run that holds no inference networks or only a stage-1 pair.

    fp16 is used when it changes outputs by at most ``tolerance`` (max abs on [0,1] images or px of flow),
    else fp32. Returns ``[(spec, note)]``.
    """
    out = Path(out)
    registry = Path(registry or out / "registry.json")
    loaded = _load_run(run)  # first: a run that cannot be exported leaves no folder behind
    meta = loaded[1]
    parts = _split(*loaded)
    if "rve" in parts:  # its decoder was trained with the RVE, not a BIE: no pair for `animate`
        raise ValueError(
            f"{run}: a stage-1 (autoencoder) run; its RVD decodes the RVE's embedding, not a BIE's: "
            "train stage bie from it (--autoencoder) and export that run"
        )
    taken = [out / f"{arch}-{name}.safetensors" for arch in parts if arch in INFERENCE_ARCHS]
    if not overwrite and (clash := [f for f in taken if f.exists()]):
        raise FileExistsError(f"{clash[0]}: exists already; choose another --name, or --overwrite")
    if registry.exists():  # before any file is written: a retry after mending it is not refused
        weights.load_registry(registry)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: is a file; -o names a folder for the checkpoints")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file where a parent folder should be, no permission, a read-only disk
        raise ValueError(f"{out}: cannot make the folder ({e.strerror or e})") from None
    results = []
    for arch, (state, cfg) in parts.items():
        if arch not in INFERENCE_ARCHS:
            continue
        note = "fp32"
        if fp16:
            diff = _max_output_diff(arch, state, cfg)
            if diff <= tolerance:
                state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
                note = f"fp16 (max output change {diff:.1e})"
            else:
                note = f"fp32 (fp16 would change outputs by {diff:.1e})"
        file = f"{arch}-{name}.safetensors"
        sha = weights.save_checkpoint(
            out / file, state, arch=arch, config=cfg, extra={"train": meta.get("train", {})}
        )
        spec = weights.CheckpointSpec(
            name=f"{arch}-{name}",
            arch=arch,
            file=file,
            sha256=sha,
            config=cfg,
            license=license,
            source=source or f"blurvid train, run {_run_name(Path(run))}, {meta.get('train', {})}",
            default=default,
        )
        weights.register_checkpoint(spec, registry)
        results.append((spec, note))
    if not results:
        raise ValueError(f"{run}: holds none of {', '.join(INFERENCE_ARCHS)}")
    return results


@dataclass
class EvalRuntime:
    """Callables used by :mod:`blurvid.evaluate`: ``deblur(x) -> y``, ``video(blurred, centre, n)`` and,
    for a stage-1 run, ``autoencode(frames, centre, n)``."""

    deblurrer: Deblurrer | ShakeRemover | None
    animator: Animator | None
    rve: torch.nn.Module | None = None
    rvd: torch.nn.Module | None = None
    device: torch.device | None = None
    dtype: torch.dtype = torch.float32
    models: dict[str, str] = field(default_factory=dict)
    """What measured: ``{arch: registry name, or 'run <path>'}``; for --shake ``{"dm": "shake"}``, with
    ``"judge"``: the installed DM that checked each photo for blur (absent when none is installed)."""
    train: dict = field(default_factory=dict)
    """What the ``run`` checkpoint records of its training (``{"iteration": N, "weights": "average" |
    "raw"}``, as far as it records it); empty for installed weights or a checkpoint that records none."""

    @torch.no_grad()
    def autoencode(self, frames: torch.Tensor, center: torch.Tensor, n: int) -> torch.Tensor:
        """Stage 1: ``frames (1, N, 3, H, W)`` and their centre ``(1, 3, H, W)`` -> the RVD's
        reconstruction ``(1, n, 3, H, W)`` (RVE -> RVD at full size; sides padded to multiples of 8)."""
        from ..pipeline import autocast
        from ..tiling import crop_to, pad_to_multiple

        assert self.rve is not None and self.rvd is not None and self.device is not None
        fr, size = pad_to_multiple(frames.flatten(0, 1), 8, "replicate")
        c, _ = pad_to_multiple(center, 8, "replicate")
        with autocast(self.device, self.dtype):
            emb = self.rve(fr.view(*frames.shape[:3], *fr.shape[-2:]).to(self.device))
            out = self.rvd(emb, c.to(self.device), n).frames[-1]
        return crop_to(out, size).float().cpu()

    def deblur(self, x: torch.Tensor) -> torch.Tensor:
        """Blurred ``(1, 3, H, W)`` in [0, 1] -> sharp ``(1, 3, H, W)``; ValueError without a DM."""
        if self.deblurrer is None:
            raise ValueError("no deblurring network available (train or install a 'dm' checkpoint)")
        return self.deblurrer.tensor(x)

    def video(self, blurred: torch.Tensor, center: torch.Tensor, n: int) -> torch.Tensor:
        """``n`` frames ``(1, n, 3, H, W)``: ``center`` ``(1, 3, H, W)`` warped by the flows the BIE and
        RVD read from ``blurred`` ``(1, 3, H, W)``."""
        from ..models.warp import warp

        assert self.animator is not None
        flows = self.animator.flows(blurred, center, n)  # (N, 2, H, W)
        return warp(center.expand(n, -1, -1, -1), flows)[None]


def evaluation_runtime(
    task: str, run: Path | None, device: str, precision: str, shake: bool = False
) -> EvalRuntime:
    """Networks from a training run (``run``) or the installed registry, on ``device``; ``shake``:
    deblurring by camera-shake deconvolution (:class:`ShakeRemover`, no network) instead."""
    dev = select_device(device)
    dtype = resolve_precision(precision, dev)
    if shake:
        if task != "deblur" or run is not None:
            raise ValueError("--shake measures `deblur --shake`: use it with eval deblur and without --run")
        models = {"dm": "shake"}
        judge = None
        try:  # as `deblur --shake` runs it: the installed DM checks each photo for blur first
            judge = Deblurrer(load_model("dm"), dev, dtype)
            models["judge"] = weights.default_spec("dm").name
        except weights.WeightsError as e:  # measured unjudged, and the JSON's models say so (no "judge")
            logging.getLogger("blurvid").warning(
                "%s; --shake is measured without the network's check for blur (it deconvolves sharp photos too)",
                e,
            )
        return EvalRuntime(ShakeRemover(dev, judge=judge), None, device=dev, dtype=dtype, models=models)
    if task == "autoencoder":
        if run is None:
            raise ValueError("eval autoencoder needs --run (a stage-1 run folder or its best.safetensors)")
        parts, train = _run_parts(run)
        if not {"rve", "rvd"} <= parts.keys():
            raise ValueError(f"{run}: not a stage-1 (autoencoder) run: it holds no RVE and RVD")
        rve, rvd = (build_from_checkpoint(a, *parts[a]).to(dev) for a in ("rve", "rvd"))
        made = {"rve": f"run {run}", "rvd": f"run {run}"}
        return EvalRuntime(None, None, rve, rvd, dev, dtype, made, train)
    nets: dict[str, torch.nn.Module] = {}
    models: dict[str, str] = {}
    train: dict = {}
    if run is not None:
        parts, train = _run_parts(run)
        for arch, (state, cfg) in parts.items():
            if arch in INFERENCE_ARCHS:
                nets[arch] = build_from_checkpoint(arch, state, cfg)
                models[arch] = f"run {run}"

    def installed(arch: str) -> torch.nn.Module:
        models[arch] = weights.default_spec(arch).name
        return load_model(arch)

    dm = nets.get("dm")
    if dm is None and task == "deblur" and run is not None:
        raise ValueError(f"{run}: holds no deblurring network (DM) to evaluate")
    if task == "video" and run is not None and not {"bie", "rvd"} <= nets.keys():
        raise ValueError(f"{run}: holds no video model (BIE + RVD) to evaluate")
    if dm is None and (run is None or task == "video"):  # a video run's centre: the installed DM
        try:
            dm = installed("dm")
        except weights.WeightsError:
            if task == "deblur":
                raise
    deblurrer = Deblurrer(dm, dev, dtype) if dm is not None else None
    animator = None
    if task == "video":
        bie = nets.get("bie") or installed("bie")
        rvd = nets.get("rvd") or installed("rvd")
        # video metrics with the ground-truth centre need no DM
        animator = Animator(deblurrer, bie, rvd, device=dev, dtype=dtype)
    if deblurrer is None:
        models.pop("dm", None)
    return EvalRuntime(deblurrer, animator, device=dev, dtype=dtype, models=models, train=train)


def _run_parts(run: Path) -> tuple[dict[str, tuple[dict[str, torch.Tensor], dict]], dict]:
    """:func:`split_run` of ``run``, and what it records of its training (its metadata's ``train``
    record, ``{}`` where it has none), from one read of the file."""
    state, meta = _load_run(run)
    train = meta.get("train")
    return _split(state, meta), dict(train) if isinstance(train, dict) else {}
