"""One training loop for all stages: data, precision, checkpoints, resume, validation, logging, DDP.

Run folder layout (``cfg.out``)::

    config.json        the TrainConfig of the run
    last.pt            resumable state: model, optimizer, scheduler, RNG, iteration, best score
    best.safetensors   weights of the best validation score so far (what `train export` ships); with no
                       validation set, the latest weights, rewritten each time the run stops
    metrics.jsonl      one JSON object per log / validation event

Checkpoints are written atomically every ``cfg.ckpt_minutes``, at the end and on SIGINT/SIGTERM/SIGHUP
(unless ignored, as under ``nohup``).
Resuming continues exactly: sample ``i`` of the stream is a pure function of ``(seed, i)`` and all RNG
states are restored, so 2 + 2 iterations equal 4 (CPU, ``reuse=1``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import signal
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler

from .. import fsutil
from ..data.datasets import ClipDataset, MixedDataset, PhotoSynthDataset, collate, fixed_set, render_collated
from ..data.synth import SynthConfig
from ..models.deblur import DMConfig
from ..pipeline import select_device
from ..stopping import catchable_stop_signals, stop_signals
from .config import TrainConfig
from .tasks import Task, make_task

if TYPE_CHECKING:  # rich is imported only when a progress bar is shown
    from rich.progress import Progress, TaskID

Log = Callable[[str], None]


class StreamBatches(Sampler[list[int]]):
    """Batches of consecutive indices ``[(it * world + rank) * b, ... + b)`` for ``it >= start``."""

    def __init__(self, start: int, stop: int, batch: int, rank: int = 0, world: int = 1) -> None:
        self.start, self.stop, self.batch, self.rank, self.world = start, stop, batch, rank, world

    def __iter__(self) -> Iterator[list[int]]:
        for it in range(self.start, self.stop):
            base = (it * self.world + self.rank) * self.batch
            yield list(range(base, base + self.batch))

    def __len__(self) -> int:
        return max(self.stop - self.start, 0)


def synth_config(cfg: TrainConfig) -> SynthConfig:
    """The run's synthesis settings (``cfg.synth`` overrides on :class:`SynthConfig` defaults)."""
    return SynthConfig.from_dict(cfg.synth)


def build_dataset(cfg: TrainConfig, scfg: SynthConfig) -> torch.utils.data.Dataset:
    """The (index-deterministic) training stream: synthesised photos, optionally mixed with clips; for the
    deblurring stage, items carry only the central frame."""
    only = cfg.stage == "deblur"  # the DM trains on the central frame alone
    photos = (
        PhotoSynthDataset(
            cfg.data, scfg, seed=cfg.seed, jpeg_p=cfg.jpeg_p, center_only=only, plans=cfg.synth_on_device
        )
        if cfg.data
        else None
    )
    clips = (
        ClipDataset(
            cfg.clips,
            frames=scfg.frames,
            size=scfg.size,
            seed=cfg.seed,
            center_only=only,
            holdout=cfg.clip_holdout,
        )
        if cfg.clips
        else None
    )
    if photos is None and clips is None:
        raise ValueError("no training data: give --data photo folders and/or --clips frame folders")
    if photos is None:
        return clips
    if clips is not None and cfg.clip_p <= 0:  # `blurvid train` sets 0.5 here; a config from Python may not
        warnings.warn(
            "the clips are never drawn: clip_p is 0 beside photo data (set clip_p, e.g. 0.5)", UserWarning, 2
        )
    return MixedDataset(photos, clips, cfg.clip_p if clips is not None else 0.0, seed=cfg.seed)


def make_loader(
    dataset: torch.utils.data.Dataset,
    start: int,
    stop: int,
    fresh: int,
    workers: int,
    rank: int = 0,
    world: int = 1,
    plans: bool = False,
) -> DataLoader:
    """The training stream's loader: batches of ``fresh`` consecutive indices (:class:`StreamBatches`)
    from ``start`` to ``stop`` (in batches), made by ``workers`` processes (one thread each); with
    ``plans`` (a stream of synthesis plans), batches to pass through :func:`render_collated`."""
    return DataLoader(
        dataset,
        batch_sampler=StreamBatches(start, stop, fresh, rank, world),
        collate_fn=collate if plans else None,
        num_workers=workers,
        persistent_workers=False,
        worker_init_fn=_worker_init,
        prefetch_factor=4 if workers > 0 else None,
        # the workers' base seed from a generator of its own: drawn from torch's global one, it moved
        # that stream by one draw at every start, so a resumed bie run (whose centre_dm_p choices come
        # from it) trained on other choices than a run without a stop (the samples are seeded per index)
        generator=torch.Generator().manual_seed(0),
    )


def validation_config(cfg: TrainConfig, scfg: SynthConfig) -> SynthConfig:
    """The fixed validation protocol: synthesis *defaults* (not the run's training settings) at
    ``val_size``, the run's N, no flips; video stages use only moving-camera samples."""
    extra = {} if cfg.stage == "deblur" else {"static_camera_p": 0.0}  # every video sample has motion
    return SynthConfig(frames=scfg.frames, size=cfg.val_size, hflip=False, **extra)


def validation_set(cfg: TrainConfig, scfg: SynthConfig) -> list[dict]:
    """Fixed validation samples: ``val_count`` synthesised from ``cfg.val`` with ``val_seed``."""
    if not cfg.val:
        return []
    ds = PhotoSynthDataset(cfg.val, validation_config(cfg, scfg), seed=cfg.val_seed)
    items = fixed_set(ds, cfg.val_count)
    for it in items:
        it["target"] = it["frames"][it["center"]]
    return items


def _val_fingerprint(cfg: TrainConfig, scfg: SynthConfig) -> str:
    """Identifies the validation set, so a resumed run only compares scores measured on the same one."""
    synth = validation_config(cfg, scfg).to_dict()
    for key, value in _SYNTH_ADDED.items():  # at their default, as fingerprints made before them read
        if synth.get(key) == value:
            del synth[key]
    return json.dumps(
        {"val": cfg.val, "count": cfg.val_count, "seed": cfg.val_seed, "synth": synth}, sort_keys=True
    )


# SynthConfig fields added after runs stored validation fingerprints, with the value that renders as
# before (a run resumed across the change kept its best score only without them)
_SYNTH_ADDED = {"exposure_length": False}


def training_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The autocast dtype of a run: 'auto' = bf16 on the CPU and on GPUs with bf16, fp16 on older GPUs
    (which then needs gradient scaling); 'fp32' / 'bf16' / 'fp16' as named."""
    if precision == "auto":
        precision = "bf16" if device.type == "cpu" or torch.cuda.is_bf16_supported() else "fp16"
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def autocast_factory(precision: str, device: torch.device) -> Callable[[], contextlib.AbstractContextManager]:
    """A zero-arg context factory for the run's precision (:func:`training_dtype`)."""
    dtype = training_dtype(precision, device)
    if dtype is torch.float32:
        return contextlib.nullcontext
    return lambda: torch.autocast(device.type, dtype=dtype)


RUN_TEMP_STALE_S = 600.0  # a run folder's hidden temporary untouched this long is a killed save's


def _atomic_save(obj: object, path: Path) -> None:
    with fsutil.atomic_path(path) as tmp:
        torch.save(obj, tmp)


class _TimeBudget:
    """Wall-clock budget of one invocation (``cfg.minutes``; 0 = none), started when the loop starts."""

    def __init__(self, minutes: float) -> None:
        self.seconds = minutes * 60
        self.t0: float | None = None

    def start(self) -> None:
        self.t0 = time.time()

    def fraction(self) -> float:
        if self.seconds <= 0 or self.t0 is None:
            return 0.0
        return (time.time() - self.t0) / self.seconds

    def expired(self) -> bool:
        return self.fraction() >= 1.0


def _lr_lambda(cfg: TrainConfig, budget: _TimeBudget | None = None) -> Callable[[int], float]:
    """Warm-up, then constant or cosine; with a time budget the cosine follows whichever of the
    iteration count and the elapsed time is further along."""

    def f(step: int) -> float:
        w = min(1.0, (step + 1) / cfg.warmup) if cfg.warmup > 0 else 1.0
        if cfg.schedule == "cosine":
            p = min(max(step / max(cfg.iters, 1), budget.fraction() if budget else 0.0), 1.0)
            return w * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p)))
        return w

    return f


def _dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """One of the 8 flips/rotations of ``(..., H, W)`` (a valid blur sample stays valid)."""
    if k & 4:
        x = x.flip(-1)
    return torch.rot90(x, k & 3, dims=(-2, -1))


def _init_weights(net: nn.Module, path: str, log: Log, load: bool = True) -> set[str]:
    """Copy matching tensors of ``path`` into ``net`` and return their names (``load=False``: only the
    names). A checkpoint that names its ``arch`` (a shipped 'bie' or 'rvd' file) goes into that
    sub-module; otherwise names are matched as they are, then under each sub-module prefix."""
    from ..weights import load_checkpoint

    state, meta = load_checkpoint(path)
    own = net.state_dict()
    arch = meta.get("arch")
    prefixes = (arch,) if arch and any(k.startswith(f"{arch}.") for k in own) else ("dm", "rve", "rvd", "bie")
    mapped = {}
    for k, v in state.items():
        for cand in (*(f"{p}.{k}" for p in prefixes), k):
            if cand in own and own[cand].shape == v.shape:
                mapped[cand] = v.to(own[cand].dtype)
                break
    if not mapped:
        raise ValueError(
            f"{path}: none of its {len(state)} tensors fits this network"
            + (f" (it is a '{arch}' checkpoint)" if arch else "")
        )
    if not load:
        return set(mapped)
    if len(mapped) < len(state):
        log(
            f"warning: {len(state) - len(mapped)} of the {len(state)} tensors in {path} fit no layer of this "
            "network and were ignored (another architecture? see the run's `model` setting)"
        )
    missing = [k for k in own if k not in mapped and not k.endswith("num_batches_tracked")]
    net.load_state_dict(mapped, strict=False)
    log(
        f"initialised {len(mapped)} tensors from {path}"
        + (f" ({len(missing)} left as initialised)" if missing else "")
    )
    return set(mapped)


def _grow(net: nn.Module, loaded: set[str], log: Log) -> None:
    """Residual blocks none of whose tensors were ``loaded`` start as the identity, so a deeper net
    initialised from a shallower checkpoint computes what the checkpoint did (function-preserving)."""
    grown = 0
    for name, mod in net.named_modules():
        keys = [f"{name}.{k}" for k, _ in mod.named_parameters()]
        if hasattr(mod, "make_identity") and keys and not any(k in loaded for k in keys):
            mod.make_identity()
            grown += 1
    if grown:
        log(f"{grown} residual blocks not in the initial weights start as the identity")


def _freeze(net: nn.Module, names: set[str], log: Log) -> None:
    """Stop training the parameters named in ``names`` (those copied from ``init``), so that only the
    grown or new ones learn and the initial network's function is kept where they stay the identity."""
    frozen = [p for k, p in net.named_parameters() if k in names]
    for p in frozen:
        p.requires_grad_(False)
    left = sum(p.numel() for p in net.parameters() if p.requires_grad)
    log(f"froze {len(frozen)} initial tensors; {left:,} parameters train")


class WeightAverage:
    """Exponential moving average of a network's weights: ``avg <- decay * avg + (1 - decay) * weights``
    after every step; buffers (e.g. batch-norm statistics) are copied. ``net`` is the averaged copy, kept
    in eval mode; its state dict is saved in checkpoints under ``"ema"``."""

    def __init__(self, source: nn.Module, decay: float) -> None:
        import copy

        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.net = copy.deepcopy(source).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, source: nn.Module) -> None:
        """Move the average ``1 - decay`` of the way to ``source``'s parameters; copy its buffers."""
        avg = [p for p in self.net.parameters() if p.is_floating_point()]
        cur = [p.detach() for p in source.parameters() if p.is_floating_point()]
        torch._foreach_lerp_(avg, cur, 1.0 - self.decay)
        for b_avg, b in zip(self.net.buffers(), source.buffers(), strict=True):
            b_avg.copy_(b)


# Ctrl-C, `kill`, and a closed terminal or dropped ssh session: each stops a run after its step, saved
def _worker_init(_: int) -> None:
    """Data workers: one thread each, and leave the stop signals to the main process (which checkpoints)."""
    torch.set_num_threads(1)
    for s in stop_signals():
        signal.signal(s, signal.SIG_IGN)


class _Stop:
    """SIGINT / SIGTERM / SIGHUP handler: records the request; the loop stops at the end of the step."""

    def __init__(self) -> None:
        self.requested = False
        self.signum = 0

    def __call__(self, signum: int, frame: object) -> None:
        self.requested = True
        self.signum = signum

    def agreed(self, world: int, dev: torch.device) -> bool:
        """Whether the run stops after this step. With several processes every rank must answer the
        same, or the ranks that go on wait forever in their next gradient all-reduce: a stop that any
        rank received (torchrun forwards a signal to all, a scheduler may signal one) stops them all,
        and all take the highest signal number received (the exit status)."""
        if world == 1:
            return self.requested
        import torch.distributed as dist

        flag = torch.tensor([self.signum if self.requested else 0], device=dev)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        self.signum = int(flag.item())
        self.requested = self.signum != 0
        return self.requested


def _architecture_of_init(cfg: TrainConfig, log: Log) -> TrainConfig:
    """A new deblur run with ``init`` and no ``model`` setting takes the architecture stored in the
    first init checkpoint, so that fine-tuning a shipped DM trains that DM (not the default one)."""
    if cfg.stage != "deblur" or cfg.model or not cfg.init:
        return cfg
    from ..weights import load_checkpoint

    path = cfg.init if isinstance(cfg.init, str) else cfg.init[0]
    _, meta = load_checkpoint(path)
    stored = meta.get("config") or {}
    stored = stored.get("dm", stored) if isinstance(stored, dict) else {}
    if meta.get("arch") != "dm" or not isinstance(stored, dict) or not stored:
        return cfg
    stored_cfg, default = DMConfig.from_dict(stored).to_dict(), DMConfig().to_dict()
    model = {k: v for k, v in stored_cfg.items() if v != default[k]}
    log(f"architecture from {path}: {model or 'the default DM'}")
    return dataclasses.replace(cfg, model=model)


def _distributed(device: str) -> tuple[int, int, torch.device]:
    """``(world, rank, device)`` of this process: torchrun's ``WORLD_SIZE`` / ``RANK`` (1 and 0 without
    it). With several processes it joins the process group, each rank on its ``LOCAL_RANK`` GPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    dev = select_device(device)
    if world > 1:
        import torch.distributed as dist

        nccl = dev.type == "cuda" and dist.is_nccl_available()  # no NCCL on Windows
        dist.init_process_group("nccl" if nccl else "gloo")
        if dev.type == "cuda":
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(dev)
    return world, rank, dev


def _make_run_folder(out: Path, resume: bool, main: bool) -> None:
    """Check that ``out`` can be the run folder and, for a new run, make it (rank 0, ``main``), so that
    its lock can be held before :func:`_open_run` reads what is in it. A file in its place, a folder to
    resume without a checkpoint, or one that cannot be made (a name too long, no permission) is an error
    naming it."""
    try:
        is_file = out.exists() and not out.is_dir()
    except OSError as e:  # a name too long for the file system
        raise ValueError(f"{out}: cannot be the run folder ({e.strerror or e})") from None
    if is_file:
        raise FileExistsError(f"{out}: is a file; -o names a run folder")
    if resume:
        _checkpoint_to_resume(out)
    elif main:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # a file where a parent folder should be, no permission, a read-only disk
            raise ValueError(f"{out}: cannot make the run folder ({e.strerror or e})") from None


def _checkpoint_to_resume(out: Path) -> Path:
    """``out/last.pt``; FileNotFoundError when the run folder holds none."""
    ckpt_path = out / "last.pt"
    if not ckpt_path.exists():
        raise FileNotFoundError(f"{ckpt_path}: nothing to resume (no checkpoint in the run folder)")
    return ckpt_path


def _open_run(cfg: TrainConfig, out: Path, resume: bool, log: Log) -> tuple[TrainConfig, dict | None]:
    """Read the run folder ``out`` (rank 0 holds its lock, so no other run changes it meanwhile) and
    return ``(cfg, state)``: with ``resume`` the state stored in its ``last.pt``, else None and ``cfg``
    with the architecture of its ``init``. A new run never replaces an existing one."""
    if resume:
        return cfg, torch.load(_checkpoint_to_resume(out), map_location="cpu", weights_only=True)
    if (out / "last.pt").exists():
        raise FileExistsError(
            f"{out} already holds a run: continue it with `blurvid train {_stage_of(out, cfg.stage)} --resume "
            f"-o {out}`, or choose another -o"
        )
    return _architecture_of_init(cfg, log), None


def _stage_of(out: Path, default: str) -> str:
    """The stage of the run in folder ``out``, as its ``config.json`` records it (``default`` when it
    cannot be read)."""
    try:
        stage = json.loads((out / "config.json").read_text()).get("stage")
    except (OSError, ValueError, AttributeError):
        return default
    return stage if isinstance(stage, str) else default


@dataclasses.dataclass
class _Run:
    """The objects of one invocation of :func:`train` and what its checkpoint saves. Only rank 0
    (``main``) writes files (checkpoint, ``best.safetensors``, ``metrics.jsonl``) and validates."""

    cfg: TrainConfig
    out: Path  # the run folder
    main: bool
    world: int
    dev: torch.device
    log: Log
    task: Task
    net: nn.Module  # the network itself (with several processes the loop steps it through DDP)
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    budget: _TimeBudget
    pool_gen: torch.Generator  # draws from the reuse pool; checkpointed, so a resume draws on
    start: int = 0  # the iteration this invocation starts at
    best: float = -math.inf  # the best validation score so far
    ema: WeightAverage | None = None  # made after a resume restored `net`: the average copies it
    scaler: torch.amp.GradScaler | None = None  # fp16's loss scale (disabled otherwise), checkpointed
    metrics: TextIO | None = None  # rank 0's metrics.jsonl, open while the loop runs
    last_logs: dict = dataclasses.field(default_factory=dict)  # what train() returns
    step_lr: float = 0.0  # the learning rate the last optimizer step took (the first group's)

    @property
    def scored(self) -> nn.Module:
        """What validation scores and ``best.safetensors`` holds: the weight average if there is one."""
        return self.ema.net if self.ema is not None else self.net

    def record(self, obj: dict) -> None:
        """Append ``obj`` as one line of ``metrics.jsonl`` (rank 0), flushed at once."""
        if self.metrics:
            self.metrics.write(json.dumps(obj) + "\n")
            self.metrics.flush()

    def checkpoint(self, it: int) -> dict:
        """The resumable state after iteration ``it`` (what ``last.pt`` holds)."""
        return {
            "model": self.net.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "iteration": it,
            "best": self.best,
            "config": self.cfg.to_dict(),
            "rng": torch.get_rng_state(),
            "pool_rng": self.pool_gen.get_state(),
            "val_fingerprint": _val_fingerprint(self.cfg, synth_config(self.cfg)),
            **({"ema": self.ema.net.state_dict()} if self.ema is not None else {}),
            # the video network as built (stage bie takes it from the stage-1 run, which may move later)
            **({"video_config": vcfg.to_dict()} if (vcfg := getattr(self.task, "vcfg", None)) else {}),
            **({"grad_scaler": self.scaler.state_dict()} if self.scaler and self.scaler.is_enabled() else {}),
        }

    def save(self, it: int) -> None:
        """Write :meth:`checkpoint` atomically to ``last.pt``; only rank 0 (the ranks hold the same state)."""
        if not self.main:
            return
        _atomic_save(self.checkpoint(it), self.out / "last.pt")
        # what a killed earlier save left (a hidden copy of last.pt, over 100 MB for the DM); a
        # live writer touches its temporary every moment, so ten minutes' quiet means a dead one
        fsutil.sweep_stale(self.out, RUN_TEMP_STALE_S)

    def validate(
        self, it: int, items: list[dict], autocast: Callable[[], contextlib.AbstractContextManager]
    ) -> None:
        """Score :attr:`scored` on the validation ``items`` after iteration ``it``: record and log the
        result, and export ``best.safetensors`` when the score beats the best so far (no items: nothing)."""
        if not items:
            return
        scored = self.scored
        scored.eval()
        res = self.task.validate(scored, items, self.dev, autocast)
        self.net.train()
        score = res[self.task.score_name]
        res["it"] = it
        self.record(res)
        self.last_logs = {**self.last_logs, **res}
        self.log(
            "val " + " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in res.items())
        )
        if score > self.best:
            self.best = score
            _export_best(
                self.task,
                scored,
                self.out / "best.safetensors",
                {"iteration": it, self.task.score_name: score},
            )

    def optimizer_step(self, scaler: torch.amp.GradScaler) -> None:
        """End an iteration: clip the gradients (``grad_clip``), step the optimizer and the schedule, and
        move the weight average."""
        if self.cfg.grad_clip > 0:
            scaler.unscale_(self.opt)
            nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.grad_clip)
        self.step_lr = float(self.opt.param_groups[0]["lr"])  # before the schedule moves on
        scaler.step(self.opt)
        scaler.update()
        self.sched.step()
        if self.ema is not None:
            self.ema.update(self.net)

    def report(
        self, done: int, loss: float, logs: dict, bar: Progress | None, task_id: TaskID | None, t0: float
    ) -> None:
        """After iteration ``done`` (``loss`` and ``logs``: the step's means; ``t0``: when this invocation's
        loop started): every ``log_every`` iterations and at the last, rank 0 records the metrics, and
        logs a line when there is no progress bar; a bar follows every iteration."""
        cfg = self.cfg
        if self.main and (done % cfg.log_every == 0 or done == cfg.iters):
            rate = (done - self.start) / max(time.time() - t0, 1e-9)
            self.last_logs = {
                "it": done,
                "loss": loss,
                "lr": self.step_lr,  # the step's own rate (the schedule's is already the next one's)
                "it_s": rate,
                **logs,
            }
            self.record({**self.last_logs, "time": time.time()})
            if bar is None:
                eta = (cfg.iters - done) / max(rate, 1e-9)
                self.log(f"it {done}/{cfg.iters} loss {loss:.4f} {rate:.2f} it/s eta {eta / 60:.0f} min")
        if bar is not None:
            bar.update(
                task_id,
                completed=done,
                description=f"{cfg.stage} loss {loss:.4f}",
                rate=f"{(done - self.start) / max(time.time() - t0, 1e-9):.2f}",
            )


def _apply_init(net: nn.Module, cfg: TrainConfig, resumed: bool, log: Log) -> None:
    """``cfg.init``: a new run copies the files' matching tensors into ``net`` and grows the blocks they
    lack as the identity; with ``freeze_loaded`` (new or ``resumed``) the copied tensors stop training.
    A new stage-1 run whose init holds no RVD tensors is warned that its RVD, trained from scratch, gets
    ``lr_rvd`` (meant for a trained one)."""
    if cfg.init and (not resumed or cfg.freeze_loaded):  # resume: the names only (weights: state)
        loaded: set[str] = set()
        for path in [cfg.init] if isinstance(cfg.init, str) else cfg.init:
            loaded |= _init_weights(net, path, log, load=not resumed)
        if loaded and not resumed:
            _grow(net, loaded, log)
        if cfg.stage == "autoencoder" and not resumed and not any(k.startswith("rvd.") for k in loaded):
            log(
                f"warning: init holds no RVD tensors, so the RVD trains from scratch at lr_rvd {cfg.lr_rvd:g} "
                f"(meant for a trained RVD); set lr_rvd to lr ({cfg.lr:g}) in a --config to train it at the "
                "encoder's rate"
            )
        if cfg.freeze_loaded:
            _freeze(net, loaded, log)


def _build(
    cfg: TrainConfig, out: Path, main: bool, world: int, dev: torch.device, state: dict | None, log: Log
) -> _Run:
    """The run at iteration 0: the task's network on ``dev`` (seeded with ``cfg.seed``, then
    :func:`_apply_init`), Adam over its parameter groups and the learning-rate schedule on the time
    budget. ``state``: a resumed run's checkpoint, from which the weights will come (:func:`_restore`)
    and the video network's architecture comes now."""
    resumed = state is not None
    torch.manual_seed(cfg.seed)
    task = make_task(cfg, video_config=state.get("video_config") if state else None)
    net = task.net.to(dev)
    if cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)
    _apply_init(net, cfg, resumed, log)
    opt = torch.optim.Adam(task.param_groups(net))
    budget = _TimeBudget(cfg.minutes if world == 1 else 0.0)  # ranks could disagree on the clock
    if cfg.minutes and world > 1:
        log("minutes is ignored with several processes; the run stops at iters")
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg, budget))
    pool_gen = torch.Generator().manual_seed(cfg.seed + 17)
    return _Run(
        cfg=cfg,
        out=out,
        main=main,
        world=world,
        dev=dev,
        log=log,
        task=task,
        net=net,
        opt=opt,
        sched=sched,
        budget=budget,
        pool_gen=pool_gen,
    )


def _restore(run: _Run, state: dict) -> None:
    """Continue ``run`` from ``state`` (its ``last.pt``): weights, optimizer, schedule, iteration, best
    score and RNG states. The best score starts afresh when the validation set changed."""
    cfg, net, opt, sched = run.cfg, run.net, run.opt, run.sched
    try:
        net.load_state_dict(state["model"])
    except RuntimeError as e:  # e.g. --config changed the model's widths: one line, not a traceback
        raise ValueError(
            f"{run.out / 'last.pt'}: its network does not fit the one this run's options build "
            f"({str(e).splitlines()[-1].strip()}); resume without changing the model's options"
        ) from None
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    # the learning rates of this invocation (--lr may have changed), on the restored schedule
    sched.base_lrs = [float(base["lr"]) for base in run.task.param_groups(net)]
    for g, base, f in zip(opt.param_groups, sched.base_lrs, sched.lr_lambdas, strict=True):
        g["initial_lr"] = base
        g["lr"] = base * f(sched.last_epoch)
    run.start, run.best = int(state["iteration"]), float(state["best"])
    if state.get("val_fingerprint") != _val_fingerprint(cfg, synth_config(cfg)):
        run.best = -math.inf  # a different validation set: earlier scores are not comparable
        run.log("validation set changed since the checkpoint: the best score starts afresh")
    torch.set_rng_state(state["rng"])
    run.pool_gen.set_state(state["pool_rng"])
    run.log(f"resumed {run.out} at iteration {run.start}")
    try:  # the stored config as read now (newer fields: their defaults), else as stored
        stored = TrainConfig.from_dict(state["config"]).to_dict() if state.get("config") else {}
    except ValueError:  # a check tightened since
        stored = dict(state.get("config") or {})
    changed = _changed_settings(stored, cfg.to_dict())  # fields newer than the checkpoint: defaults
    if changed:
        run.log(f"changed settings, from here on: {changed}")
    if run.start >= cfg.iters:
        run.log(
            f"the run is already at iteration {run.start} of {cfg.iters}: nothing to train (raise --iters)"
        )


def _changed_settings(stored: dict, now: dict) -> str:
    """The settings of ``now`` that differ from a checkpoint's ``stored`` config, as ``key old -> new``
    joined by ``; `` (empty when none): a resume applies them silently otherwise. Leaves out what a
    resume routinely changes (``iters``, ``minutes``, ``out``)."""

    def text(v: object) -> str:
        return json.dumps(v, sort_keys=True)

    return "; ".join(
        f"{k} {text(stored.get(k))} -> {text(v)}"
        for k, v in now.items()
        if k not in ("iters", "minutes", "out") and text(stored.get(k)) != text(v)
    )


def _weight_average(net: nn.Module, cfg: TrainConfig, state: dict | None) -> WeightAverage | None:
    """The run's weight average (``cfg.ema`` > 0; else None): a copy of ``net`` as built or restored,
    then the average stored in a resumed run's ``state`` when it holds one."""
    ema = WeightAverage(net, cfg.ema) if cfg.ema > 0 else None
    if ema is not None and state is not None and "ema" in state:
        ema.net.load_state_dict(state["ema"])
    return ema


def train(
    cfg: TrainConfig, *, resume: bool = False, progress: bool = True, log: Log = print, device: str = "auto"
) -> dict:
    """Run (or resume) the training described by ``cfg``; returns the last logged metrics, with
    ``"signal"`` (its number) when SIGINT / SIGTERM / SIGHUP stopped the run (after saving its checkpoint).

    With ``resume`` the state in ``cfg.out/last.pt`` is restored and training continues until
    ``cfg.iters`` (which may be larger than the stored run's).
    """
    world, rank, dev = _distributed(device)
    main = rank == 0
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    made = _first_missing(out) if main and not resume else None  # removed again if the run cannot start
    _make_run_folder(out, resume, main)
    lock = contextlib.ExitStack()  # rank 0 holds the run folder's lock until the run ends
    try:
        if main:  # before the folder is read: what it holds cannot change between the look and the run
            lock.enter_context(_run_lock(out))
        cfg, state = _open_run(cfg, out, resume, log)
        run = _build(cfg, out, main, world, dev, state, log)
        if state is not None:
            _restore(run, state)
        run.ema = _weight_average(run.net, cfg, state)
        model = run.net
        if world > 1:
            model = nn.parallel.DistributedDataParallel(
                run.net, device_ids=[dev.index] if dev.type == "cuda" else None
            )
        autocast = autocast_factory(cfg.precision, dev)
        # fp16 (asked for, or 'auto' on a GPU without bf16) needs gradient scaling, or small gradients vanish
        scaler = torch.amp.GradScaler(dev.type, enabled=training_dtype(cfg.precision, dev) is torch.float16)
        if state is not None and "grad_scaler" in state and scaler.is_enabled():
            scaler.load_state_dict(state["grad_scaler"])  # the loss scale it had reached, not 65536 again
        run.scaler = scaler

        scfg = synth_config(cfg)
        dataset = build_dataset(cfg, scfg)
        reuse = max(cfg.reuse, 1) if cfg.stage == "deblur" else 1
        fresh = math.ceil(cfg.batch / reuse)
        accum = cfg.accum  # an iteration is one optimizer step over `accum` micro-batches
        loader = make_loader(
            dataset,
            run.start * accum,
            cfg.iters * accum,
            fresh,
            cfg.workers,
            rank,
            world,
            cfg.synth_on_device,
        )
        val_items = validation_set(cfg, scfg) if main else []
    except BaseException:
        lock.close()
        if made is not None:
            _remove_if_empty(out, made)
        raise
    with lock:
        _run_loop(run, model, scaler, autocast, loader, val_items, reuse, progress, resume)
    if world > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
    return run.last_logs


@contextlib.contextmanager
def _run_lock(out: Path) -> Iterator[None]:
    """Hold the lock of the run folder ``out`` (``out/.lock``, gone when the run ends), so that two
    processes never train in one folder at once: a FileExistsError naming it when another process
    trains there now (a new run before the first checkpoint, or a second ``--resume``)."""
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(fsutil.exclusive(out / ".lock"))
        except fsutil.Busy:
            raise FileExistsError(
                f"{out}: another blurvid run is training in this folder now; wait for it to end, "
                "or choose another -o"
            ) from None
        except OSError as e:
            raise ValueError(f"{out}: cannot lock the run folder ({e.strerror or e})") from None
        yield


def _run_loop(
    run: _Run,
    model: nn.Module,
    scaler: torch.amp.GradScaler,
    autocast: Callable[[], contextlib.AbstractContextManager],
    loader: Iterable,
    val_items: list[dict],
    reuse: int,
    progress: bool,
    resume: bool,
) -> None:
    """Write the run's config, then train through :func:`_train_steps` with the stop signals caught,
    appending to ``metrics.jsonl`` (:func:`_open_metrics`)."""
    if run.main:  # only now: a run that fails to start (say, a resume from elsewhere) keeps its config
        (run.out / "config.json").write_text(run.cfg.to_json())
    stop = _Stop()
    batches: Iterator | None = None
    # not from another thread (a notebook's, a service's), and an ignored signal stays ignored
    old_handlers = {s: signal.signal(s, stop) for s in catchable_stop_signals()}
    try:
        run.metrics = (
            _open_metrics(run.out / "metrics.jsonl", run.start if resume else None) if run.main else None
        )
        batches = iter(loader)
        try:
            _train_steps(run, batches, model, scaler, autocast, val_items, stop, reuse, progress)
        except Exception as e:
            plain = _as_raised_in_worker(e)
            if plain is e:
                raise
            raise plain from None
    finally:  # also when the loop raises: the caller's handlers come back
        _close_loader(batches)
        for s, h in old_handlers.items():
            signal.signal(s, h)
        if run.metrics:
            run.metrics.close()


def _open_metrics(path: Path, resumed_at: int | None) -> TextIO:
    """``metrics.jsonl``, open for appending. A new run (``resumed_at`` None) starts it afresh: a folder
    without a checkpoint may hold the log of a run that died before its first one, which nothing can
    continue. A resumed run first drops the lines logged after its checkpoint's iteration ``resumed_at``
    (a run killed without saving logged past it, and those iterations are logged again) and a last
    line cut short by the kill."""
    if resumed_at is None:
        return path.open("w")
    with contextlib.suppress(FileNotFoundError):
        lines = path.read_text().splitlines(keepends=True)
        kept = [line for line in lines if _logged_at(line) <= resumed_at]
        if kept != lines:
            with fsutil.atomic_path(path) as tmp:
                tmp.write_text("".join(kept))
    return path.open("a")


def _logged_at(line: str) -> float:
    """The iteration a ``metrics.jsonl`` line was logged at (0 without one; infinite for a line that is
    not whole JSON, such as the last one of a killed run)."""
    try:
        rec = json.loads(line)
    except json.JSONDecodeError:
        return math.inf
    return rec.get("it", 0) if isinstance(rec, dict) else math.inf


def _micro_step(
    run: _Run,
    model: nn.Module,
    batch: dict,
    it: int,
    stepping: bool,
    scaler: torch.amp.GradScaler,
    autocast: Callable[[], contextlib.AbstractContextManager],
) -> tuple[float, dict]:
    """Forward and backward one micro-batch of iteration ``it`` (the loss scaled by ``1 / accum``);
    returns its loss and logs. ``stepping``: the micro-batch that ends the iteration."""
    # DDP averages gradients across ranks only on the micro-batch that ends the step
    sync = model.no_sync() if run.world > 1 and not stepping else contextlib.nullcontext()
    with sync:
        with autocast():
            out_t = model(run.task.inputs(batch))
        loss, logs = run.task.loss(out_t, batch, it)
        scaler.scale(loss / run.cfg.accum).backward()
    return float(loss.detach()), logs


def _train_steps(
    run: _Run,
    batches: Iterator,
    model: nn.Module,
    scaler: torch.amp.GradScaler,
    autocast: Callable[[], contextlib.AbstractContextManager],
    val_items: list[dict],
    stop: _Stop,
    reuse: int,
    progress: bool,
) -> None:
    """The loop: iterations ``run.start`` .. ``cfg.iters`` over ``batches`` (``accum`` micro-batches
    each, through ``model``: ``run.net`` or its DDP wrapper), with validation and checkpoints on their
    schedules; a stop signal or the time budget ends it early after saving. ``reuse`` > 1: each
    micro-batch is drawn from a replay pool of the fresh samples."""
    cfg, start, accum = run.cfg, run.start, run.cfg.accum
    resume_hint = f"blurvid train {cfg.stage} --resume -o {run.out}"
    bar_ctx = _progress(progress and run.main)
    pool: list[dict] = []
    t_last_ckpt = time.time()
    t0 = time.time()
    run.budget.start()
    run.net.train()
    if run.main and start == cfg.iters == 0:  # a resume says so itself (_restore)
        run.log("nothing to train (iters 0): the weights are saved as they are")
    with bar_ctx as bar:
        task_id = bar.add_task(cfg.stage, total=cfg.iters, completed=start, rate="-") if bar else None
        for k, batch in enumerate(batches):
            it, micro = start + k // accum, k % accum
            batch = _prepare(batch, run.dev, cfg.channels_last)
            if reuse > 1:
                batch = _from_pool(pool, batch, cfg.batch, reuse, run.pool_gen)
            if micro == 0:
                run.opt.zero_grad(set_to_none=True)
                loss_sum, logs_sum = 0.0, {}
            stepping = micro == accum - 1
            loss, logs = _micro_step(run, model, batch, it, stepping, scaler, autocast)
            loss_sum += loss
            for name, value in logs.items():
                logs_sum[name] = logs_sum.get(name, 0.0) + value
            if not stepping:
                continue
            # the step's means over its micro-batches, for the log
            step_loss, logs = loss_sum / accum, {n: v / accum for n, v in logs_sum.items()}
            run.optimizer_step(scaler)
            done = it + 1
            run.report(done, step_loss, logs, bar, task_id, t0)
            if run.main and cfg.val_every > 0 and done % cfg.val_every == 0:
                run.validate(done, val_items, autocast)
            if run.main and (time.time() - t_last_ckpt) > cfg.ckpt_minutes * 60:
                run.save(done)
                t_last_ckpt = time.time()
            if stop.agreed(run.world, run.dev):
                run.save(done)
                _latest_as_best(run, done, val_items)
                if run.main:
                    run.log(f"stopped at iteration {done}; checkpoint saved, continue with: {resume_hint}")
                run.last_logs["signal"] = stop.signum
                break
            if run.budget.expired():
                if run.main and (cfg.val_every <= 0 or done % cfg.val_every != 0):
                    run.validate(done, val_items, autocast)
                run.save(done)
                _latest_as_best(run, done, val_items)
                run.log(
                    f"time budget of {cfg.minutes:g} min reached at iteration {done}; checkpoint saved "
                    f"(continue with: {resume_hint} --minutes M)"
                )
                break
        else:
            done = cfg.iters
            if run.main and done > start and (cfg.val_every <= 0 or done % cfg.val_every != 0):
                run.validate(done, val_items, autocast)
            run.save(max(done, start))
            if run.main and not (run.out / "best.safetensors").exists():
                _export_best(run.task, run.scored, run.out / "best.safetensors", {"iteration": done})
            else:
                _latest_as_best(run, max(done, start), val_items)


def _latest_as_best(run: _Run, done: int, val_items: list[dict]) -> None:
    """With no validation set there is no best score: ``best.safetensors`` (what ``train export``
    ships) is the latest weights, rewritten whenever the run stops (it kept the first invocation's:
    a resumed run exported its old weights)."""
    if run.main and not val_items:
        _export_best(run.task, run.scored, run.out / "best.safetensors", {"iteration": done})


def _first_missing(folder: Path) -> Path | None:
    """The outermost of ``folder`` and its parents that does not exist yet (what ``mkdir(parents=True)``
    makes), or None when ``folder`` exists (or its name cannot be looked up: :func:`_make_run_folder` says why)."""
    try:
        if folder.exists():
            return None
        first = folder
        while not first.parent.exists() and first.parent != first:
            first = first.parent
        return first
    except OSError:
        return None


def _remove_if_empty(folder: Path, up_to: Path) -> None:
    """Remove ``folder`` and its parents up to ``up_to`` while they hold nothing (the folders made for a
    run that could not start)."""
    while True:
        try:
            folder.rmdir()  # fails, as it should, when anything is in it
        except OSError:
            return
        if folder == up_to:
            return
        folder = folder.parent


def _as_raised_in_worker(e: Exception) -> Exception:
    """A data worker's error as the worker raised it. Torch raises it again in the main process with the
    worker's whole traceback as the message ("Caught ValueError in DataLoader worker process 0.
    Original Traceback ..."), which a one-line error message would print whole; other errors: ``e``."""
    text = str(e)
    if not text.startswith("Caught ") or "Original Traceback" not in text:
        return e
    last = text.rstrip().splitlines()[-1]
    prefix = f"{type(e).__name__}: "
    try:
        return type(e)(last[len(prefix) :] if last.startswith(prefix) else last)
    except Exception:  # an error type that takes other arguments
        return e


def _close_loader(batches: Iterator | None) -> None:
    """Stop a loader's worker processes now. They ignore SIGTERM (the main process checkpoints on it),
    so the terminate-then-join that Python's exit gives leftover children would wait for ever when an
    error ends the run while they still live."""
    shutdown = getattr(batches, "_shutdown_workers", None)
    if callable(shutdown):
        shutdown()


def _prepare(batch: dict, dev: torch.device, channels_last: bool) -> dict:
    """A loader batch on ``dev`` (plans rendered there), images channels-last, with its ``target``."""
    if "plans" in batch or "rendered" in batch:
        batch = render_collated(batch, dev)
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            v = v.to(dev, non_blocking=True)
            if channels_last and v.dim() == 4:
                v = v.contiguous(memory_format=torch.channels_last)
        out[k] = v
    idx = torch.arange(out["frames"].shape[0], device=dev)
    out["target"] = out["frames"][idx, out["center"]]
    return out


def _from_pool(pool: list[dict], batch: dict, size: int, reuse: int, g: torch.Generator) -> dict:
    """Add the fresh (blurred, target) pairs to a replay pool and draw ``size`` random dihedral views."""
    for i in range(batch["blurred"].shape[0]):
        pool.append({"blurred": batch["blurred"][i], "target": batch["target"][i]})
    del pool[: max(len(pool) - size * reuse, 0)]
    picks = torch.randint(len(pool), (size,), generator=g).tolist()
    views = torch.randint(8, (size,), generator=g).tolist()
    blurred = torch.stack([_dihedral(pool[p]["blurred"], v) for p, v in zip(picks, views, strict=True)])
    target = torch.stack([_dihedral(pool[p]["target"], v) for p, v in zip(picks, views, strict=True)])
    return {"blurred": blurred, "target": target}


def exportable_state(task: Task, net: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, dict], str]:
    """``(state, configs, arch)`` of the task's exportable modules: fp32 tensors keyed ``"<arch>.<name>"``,
    ``{arch: architecture config}``, and the checkpoint's arch (the single module's, else ``"rvd"``)."""
    mods = task.exportables(net)
    state = {}
    configs = {}
    for m in mods:
        for k, v in m.module.state_dict().items():
            state[f"{m.arch}.{k}"] = v.float() if v.is_floating_point() else v
        configs[m.arch] = m.config
    return state, configs, mods[0].arch if len(mods) == 1 else "rvd"


def _export_best(task: Task, net: nn.Module, path: Path, extra: dict) -> None:
    """Write the task's modules (fp32) to one safetensors file with their configs in the metadata."""
    from ..weights import save_checkpoint

    state, configs, arch = exportable_state(task, net)
    save_checkpoint(path, state, arch=arch, config=configs, extra={"train": extra})  # atomic


class _NoBar:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: object) -> None:
        return None


def _progress(enabled: bool) -> contextlib.AbstractContextManager:
    if not enabled:
        return _NoBar()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} it/s"),  # this invocation's mean ("-" before its first step)
        TimeRemainingColumn(),
    )
