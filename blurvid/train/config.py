"""One dataclass config per training run (nanoGPT style), saved inside every checkpoint."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

from ..config import Config, check_counts, check_number

STAGES = ("deblur", "autoencoder", "bie")

# The paper's defaults per stage (Sec. 3.1): batch 16 / 4.5e5 iterations for the DM, batch 10 / 5e4
# iterations for the video autoencoder and the BIE, Adam 1e-4, RVD fine-tuned at 2e-5 during BIE training.
PAPER_DEFAULTS: dict[str, dict] = {
    "deblur": {"batch": 16, "iters": 450_000, "lr": 1e-4},
    "autoencoder": {"batch": 10, "iters": 50_000, "lr": 1e-4},
    "bie": {"batch": 10, "iters": 50_000, "lr": 1e-4, "lr_rvd": 2e-5},
}


@dataclass
class TrainConfig(Config):
    """Everything a run needs; ``TrainConfig.from_dict(ckpt['config'])`` rebuilds it exactly."""

    stage: str = "deblur"
    out: str = "runs/deblur"  # run folder: config.json, last.pt, best.safetensors, metrics.jsonl
    data: list[str] = field(default_factory=list)  # sharp photo files/folders for synthesis
    clips: list[str] = field(default_factory=list)  # folders of consecutive video frames (GoPro-style)
    clip_p: float = 0.0  # share of samples drawn from clips
    # the last share of each clip's frames is never trained on (`blurvid eval --clips-holdout` scores it)
    clip_holdout: float = 0.0
    val: list[str] = field(default_factory=list)  # photos of the fixed validation set (e.g. kodak24)
    val_count: int = 24
    val_seed: int = 1234
    val_size: int = 256
    iters: int = 450_000
    batch: int = 16
    accum: int = 1  # micro-batches of `batch` per optimizer step (effective batch = batch * accum)
    lr: float = 1e-4
    lr_rvd: float = 2e-5  # learning rate of a pre-trained RVD (stage 'bie'; 'autoencoder' with init)
    schedule: str = "constant"  # 'constant' | 'cosine' (to lr * min_lr_ratio at `iters`)
    min_lr_ratio: float = 0.1
    warmup: int = 0
    grad_clip: float = 0.0  # 0 = off
    ema: float = 0.0  # decay of an exponential moving average of the weights (0 = off); when on, the
    # average is what validation scores and best.safetensors holds (0.999 averages ~1,000 iterations)
    synth: dict = field(default_factory=dict)  # SynthConfig overrides; size = crop
    jpeg_p: float = 0.0
    model: dict = field(default_factory=dict)  # architecture overrides (DMConfig / VideoConfig)
    precision: str = "auto"  # 'auto' (bf16 autocast where supported) | 'bf16' | 'fp16' | 'fp32'
    channels_last: bool = True
    workers: int = 1
    reuse: int = 1  # deblur: each synthesised sample serves this many batches (random dihedral views)
    # the data workers only draw each photo sample's randomness; the training device renders the blur,
    # a batch at a time (a GPU then is not bound by the CPU's synthesis). Another stream than the CPU's
    # (the noise is drawn on the device), as deterministic per index on one device
    synth_on_device: bool = False
    seed: int = 0
    threads: int = 0  # torch intra-op threads (0 = torch default)
    ckpt_minutes: float = 5.0
    minutes: float = 0.0  # stop this invocation after this many minutes (0 = no limit); cosine follows it
    val_every: int = 1000
    log_every: int = 20
    # initial weights (.safetensors), e.g. shipped ones; several allowed
    init: str | tuple[str, ...] | None = None
    freeze_loaded: bool = False  # train only the parameters that `init` did not fill (grown blocks)
    autoencoder: str | None = None  # stage 'bie': autoencoder run folder or checkpoint
    # stage 'bie': the BIE reads the blurred photo beside this DM's output on it (a .safetensors DM, or
    # 'installed' for the registered default), which is what `animate` gives it, instead of the true
    # centre frame; the decoder still warps the true centre, so the loss judges the motion alone
    centre_dm: str | None = None
    # stage 'bie' with centre_dm: the share of training samples that get the DM's output (the rest get the
    # true centre, a sharp reference like `animate --shake`'s); validation always uses the DM's output
    centre_dm_p: float = 1.0
    mu_tv: float = 0.02  # TV weight (paper)
    lambdas: tuple[float, ...] = (0.32, 0.08, 0.02, 0.005)  # per-scale weights, coarse (1/8) -> fine (1)
    flow_sup: float = 0.0  # weight of the optional true-flow supervision (synthetic samples only)
    coarse_warmup: int = 0  # iterations over which coarse scales are boosted (curriculum)
    edge_loss: float = 0.0  # deblur: weight of an added gradient-L1 term
    fft_loss: float = 0.0  # deblur: weight of an added spectrum-L1 term (losses.fft_l1)
    # deblur: each sample's losses are taken at the integer shift (up to this many px) where the output
    # best matches the target (losses.align_to_target): sharpness counts, placement does not (0 = off)
    align_loss: int = 0
    distill: float = 0.0  # autoencoder: weight of L1(RVE embedding, frozen teacher BIE embedding)
    teacher: str | None = None  # autoencoder: the teacher BIE (.safetensors) for `distill`
    # autoencoder: weight of an auxiliary loss on the RVE alone: a small training-only head reads the
    # embedding and must predict the true 1/8-scale flows of all N frames (synthetic samples only)
    probe: float = 0.0

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"unknown stage {self.stage!r}; choose one of {', '.join(STAGES)}")
        if self.batch < 1 or self.accum < 1:
            raise ValueError(f"batch and accum must be at least 1 (got {self.batch} and {self.accum})")
        if self.workers < 0:
            raise ValueError(f"workers {self.workers}: use 0 (load in the main process) or more")
        if self.freeze_loaded and not self.init:
            raise ValueError("freeze_loaded needs init: the weights to keep fixed")
        if not self.lr > 0 or self.iters < 0:
            raise ValueError(
                f"lr must be positive and iters not negative (got lr {self.lr}, iters {self.iters})"
            )
        for what, value in (
            ("minutes", self.minutes),
            ("ckpt_minutes", self.ckpt_minutes),
            ("flow_sup", self.flow_sup),
        ):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{what} {value!r}: use a number, 0 or more")
        synth = self.synth if isinstance(self.synth, dict) else {}
        for what in ("frames", "subframes"):  # checked here, not in a data worker's traceback
            least = 2 if what == "frames" else 1  # a sequence of one frame holds no motion
            value = synth.get(what, least)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"synth {what} {value!r}: use a whole number, at least {least}")
        if not (isinstance(self.clip_holdout, (int, float)) and 0 <= self.clip_holdout < 1):
            raise ValueError(f"clip_holdout {self.clip_holdout!r}: use a share from 0 to under 1")
        # a 0 here divided by zero after the first step; a negative lr ratio trained uphill
        for name in ("log_every", "val_count"):
            check_counts(name, getattr(self, name))
        for name in ("reuse", "warmup", "threads", "coarse_warmup"):  # reuse 0 reads as 1
            check_counts(name, getattr(self, name), least=0)
        if isinstance(self.val_every, bool) or not isinstance(self.val_every, int):  # 0 or less: never
            raise ValueError(f"val_every {self.val_every!r}: use a whole number (0: never)")
        for name in ("min_lr_ratio", "clip_p", "jpeg_p", "centre_dm_p"):
            check_number(name, getattr(self, name), high=1.0)
        check_number("ema", self.ema, high=1.0, high_open=True)
        check_number("lr_rvd", self.lr_rvd)
        for name in ("grad_clip", "mu_tv", "edge_loss", "fft_loss", "distill", "probe"):
            check_number(name, getattr(self, name))
        for weight in self.lambdas:
            check_number("lambdas", weight)
        if not 0 <= self.align_loss <= 8:
            raise ValueError(f"align_loss {self.align_loss}: use 0 (off) to 8 px")
        if self.precision not in ("auto", "bf16", "fp16", "fp32"):
            raise ValueError(f"precision {self.precision!r}: use auto, bf16, fp16 or fp32")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule {self.schedule!r}: use constant or cosine")
        if len(self.lambdas) != 4:  # the flow losses' four scales, 1/8 to 1
            raise ValueError(f"lambdas {list(self.lambdas)!r}: give four weights, coarse (1/8) to fine (1)")
        size = self.synth.get("size", 32) if isinstance(self.synth, dict) else 32
        step = 32 if self.stage == "deblur" else 8  # DeblurNet.multiple; the video nets work down to 1/8
        for what, side in (("crop size", size), ("val_size", self.val_size)):
            if not isinstance(side, int) or side < 32 or side % step:
                raise ValueError(f"{what} {side!r}: use a multiple of {step}, at least 32")

    def to_json(self) -> str:
        """The config as indented, key-sorted JSON (what a run folder's config.json holds)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def for_stage(cls, stage: str, **overrides: object) -> TrainConfig:
        """The paper's defaults for ``stage`` with ``overrides`` applied (None values ignored)."""
        base = {"stage": stage, "out": f"runs/{stage}", **PAPER_DEFAULTS[stage]}
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(base)


def check_keys(d: dict, stage: str, source: str) -> None:
    """Raise ``ValueError`` if ``d`` (a user's config file for ``stage``) names a field that no config has.

    Checks the top level against :class:`TrainConfig`, ``synth`` against
    :class:`~blurvid.data.synth.SynthConfig` and ``model`` against the stage's architecture config, so
    that a misspelt key stops the run instead of silently training with the default. ``source`` names
    the file in the message.
    """
    import difflib

    from ..data.synth import SynthConfig
    from ..models.deblur import DMConfig
    from ..models.encoders import VideoConfig

    parts: list[tuple[str, type[Config], object]] = [("", TrainConfig, d)]
    arch = DMConfig if stage == "deblur" else VideoConfig
    parts += [("synth.", SynthConfig, d.get("synth")), ("model.", arch, d.get("model"))]
    for prefix, cls, sub in parts:
        if not isinstance(sub, dict):
            continue
        fields = cls.__dataclass_fields__
        for k in cls.unknown_keys(sub):
            near = difflib.get_close_matches(k, list(fields), n=1)
            hint = f" (did you mean '{prefix}{near[0]}'?)" if near else ""
            raise ValueError(f"{source}: unknown config key '{prefix}{k}'{hint}")
        for k, v in sub.items():
            f = fields[k]
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]
            kind = _ANNOTATED_KINDS.get(str(f.type)) or (_kind(default) if default is not None else None)
            if v is None and default is None:
                continue
            if kind is not None and not _same_kind(v, kind[1]):
                raise ValueError(f"{source}: config key '{prefix}{k}' must be {kind[0]}, not {v!r}")
            # the items of a list: as the default's (numbers for lambdas, strings for data / init)
            item = _kind(default[0]) if isinstance(default, (list, tuple)) and default else None
            if isinstance(v, (list, tuple)) and not default and "str" in str(f.type):
                item = ("a string", str)  # init's list, or data / clips / val
            bad = (
                [x for x in v if not _same_kind(x, item[1])] if item and isinstance(v, (list, tuple)) else []
            )
            if bad:
                raise ValueError(
                    f"{source}: each item of config key '{prefix}{k}' must be {item[0]}, not {bad[0]!r}"
                )


# JSON kinds by a field's default: (default's type, the kind in words, the JSON types accepted); bool
# comes before int, as True is an int to Python but not a number to a config
_KINDS: list[tuple[type | tuple[type, ...], str, type | tuple[type, ...]]] = [
    (bool, "true or false", bool),
    (int, "a whole number", int),
    (float, "a number", (int, float)),
    (str, "a string", str),
    ((tuple, list), "a list", (list, tuple)),
    (dict, "an object", dict),
]


# fields whose annotation names more than their default's type (a None default takes what it names
# besides null; exposure_length takes a probability as well as true / false), by that annotation
_ANNOTATED_KINDS: dict[str, tuple[str, type | tuple[type, ...]]] = {
    "str | None": ("a string", str),
    "str | tuple[str, ...] | None": ("a string or a list of strings", (str, list, tuple)),
    "bool | float": ("true, false or a number", (bool, int, float)),
}


def _kind(default: object) -> tuple[str, type | tuple[type, ...]] | None:
    """What a JSON value for a field whose default is ``default`` must be (words, accepted types); None:
    anything (a None default, as ``init``'s, which may be a string or a list)."""
    for of, words, accepted in _KINDS:
        if isinstance(default, of):
            return words, accepted
    return None


def _same_kind(value: object, accepted: type | tuple[type, ...]) -> bool:
    takes_bool = accepted is bool or (isinstance(accepted, tuple) and bool in accepted)
    return isinstance(value, accepted) and (takes_bool or not isinstance(value, bool))
