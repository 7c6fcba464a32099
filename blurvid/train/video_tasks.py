"""Video stages of the two-stage protocol: 'autoencoder' (RVE + RVD) and 'bie' (BIE + pre-trained RVD)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..data.synth import SynthConfig
from ..metrics import ordering_invariant_error, ppsnr, video_psnr
from ..models.decoder import DecodeResult, RecurrentVideoDecoder
from ..models.encoders import BlurredImageEncoder, RecurrentVideoEncoder, VideoConfig
from ..models.warp import downsample
from ..pipeline import Deblurrer, build_from_checkpoint, load_model, resolve_precision
from .config import TrainConfig
from .losses import ordering_invariant, sequence_l1, tv
from .tasks import AutocastFactory, Exportable


class MotionProbe(nn.Module):
    """Training-only head: embedding ``(B, 2*hidden, h, w)`` -> flows ``(B, N, 2, h, w)`` at 1/8 scale
    (in 1/8-scale pixels). It gives the RVE a direct motion signal; it is not exported."""

    def __init__(self, cfg: VideoConfig, frames: int) -> None:
        super().__init__()
        self.frames = frames
        self.net = nn.Sequential(
            nn.Conv2d(2 * cfg.hidden, 64, 3, padding=1),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(64, 2 * frames, 1),
        )

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        f = self.net(emb)
        return f.view(f.shape[0], self.frames, 2, *f.shape[2:])


class AutoencoderNet(nn.Module):
    """``forward({'frames': (B,N,3,H,W), 'target' centre}) -> DecodeResult`` (RVE -> RVD).

    With ``probe_frames > 0`` a :class:`MotionProbe` reads the embedding; its flows are in
    ``DecodeResult.probe``."""

    def __init__(self, cfg: VideoConfig, probe_frames: int = 0) -> None:
        super().__init__()
        self.rve = RecurrentVideoEncoder(cfg)
        self.rvd = RecurrentVideoDecoder(cfg)
        self.probe = MotionProbe(cfg, probe_frames) if probe_frames else None

    def forward(self, batch: dict) -> DecodeResult:
        frames = batch["frames"]
        emb = self.rve(frames)
        out = self.rvd(emb, batch["target"], frames.shape[1])
        out.embedding = emb
        if self.probe is not None and frames.shape[1] == self.probe.frames:
            out.probe = self.probe(emb)
        return out


class BIENet(nn.Module):
    """``forward({'blurred', 'target' centre, 'frames'[, 'sharp_in']}) -> DecodeResult`` (BIE -> RVD).

    The BIE reads the blurred photo beside ``sharp_in`` (a deblurred estimate of the centre, as at
    inference) when the batch has one, else beside the true centre; the RVD warps the true centre.
    """

    def __init__(self, cfg: VideoConfig) -> None:
        super().__init__()
        self.bie = BlurredImageEncoder(cfg)
        self.rvd = RecurrentVideoDecoder(cfg)

    def forward(self, batch: dict) -> DecodeResult:
        sharp = batch.get("sharp_in", batch["target"])
        return self.rvd(self.bie(batch["blurred"], sharp), batch["target"], batch["frames"].shape[1])


def flows_at_scale(flows: torch.Tensor, s: int) -> torch.Tensor:
    """True flows ``(B, N, 2, H, W)`` in full-scale px -> ``(B, N, 2, H/s, W/s)`` in 1/s-scale px."""
    d = downsample(flows.flatten(0, 1), s) / s
    return d.view(*flows.shape[:3], *d.shape[-2:])


def _targets(frames: torch.Tensor) -> list[torch.Tensor]:
    """Ground-truth videos at scales 1/8, 1/4, 1/2, 1: ``(B, N, 3, H/s, W/s)``."""
    b, n = frames.shape[:2]
    flat = frames.flatten(0, 1)
    out = []
    for j in range(4):
        d = downsample(flat, 2 ** (3 - j))
        out.append(d.view(b, n, *d.shape[1:]))
    return out


class _VideoTask:
    score_name = "val_score"
    invariant = False

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        # the frame count is the synthesis's, recorded with the architecture for inference
        self.vcfg = VideoConfig.from_dict({**cfg.model, "frames": SynthConfig.from_dict(cfg.synth).frames})

    def inputs(self, batch: dict, training: bool = True) -> dict:
        return batch

    def _lambdas(self, it: int) -> list[float]:
        lam = list(self.cfg.lambdas)
        if self.cfg.coarse_warmup > 0 and it < self.cfg.coarse_warmup:
            # curriculum: coarse scales weigh up to 4x more at the start, fading to the configured weights
            boost = 1 + 3 * (1 - it / self.cfg.coarse_warmup)
            lam = [lam[0] * boost, lam[1] * (1 + (boost - 1) / 2), lam[2], lam[3]]
        return lam

    def loss(self, out: DecodeResult, batch: dict, it: int) -> tuple[torch.Tensor, dict[str, float]]:
        targets = _targets(batch["frames"])
        total = out.flows[0].new_zeros((), dtype=torch.float32)
        logs: dict[str, float] = {}
        full_px = targets[-1].shape[-1] * targets[-1].shape[-2]
        for j, lam in enumerate(self._lambdas(it)):
            pred, tgt = out.frames[j].float(), targets[j]
            data = ordering_invariant(pred, tgt) if self.invariant else sequence_l1(pred, tgt)
            px = tgt.shape[-1] * tgt.shape[-2]
            # Eq. 4's |.|_1 is a sum over pixels: scale means by the share of pixels at this scale
            weight = lam * px / full_px * 64
            smooth = sum(tv(out.flows[j][:, n].float()) for n in range(out.flows[j].shape[1]))
            total = total + weight * (data + self.cfg.mu_tv * smooth)
            logs[f"L{j}"] = float(data.detach())
        if self.cfg.flow_sup > 0:
            has = batch["has_flow"]
            if bool(has.any()):
                gt = batch["flows"][has]
                forward = backward = torch.zeros((), device=gt.device)
                for j in range(4):  # per sample: mean error over frames and pixels, summed over scales
                    g = flows_at_scale(gt, 2 ** (3 - j))  # (B, N, 2, h, w)
                    p = out.flows[j][has].float()
                    forward = forward + (p - g).abs().mean(dim=(1, 2, 3, 4))
                    if self.invariant:
                        backward = backward + (p.flip(1) - g).abs().mean(dim=(1, 2, 3, 4))
                # the direction is ambiguous: the better of both orders of each whole video (per frame,
                # a video that was neither order could match, one frame of each pair either way)
                sup = (torch.minimum(forward, backward) if self.invariant else forward).mean()
                total = total + self.cfg.flow_sup * sup
                logs["flow_sup"] = float(sup.detach())
        return total, logs

    @torch.no_grad()
    def validate(
        self, net: nn.Module, items: list[dict], device: torch.device, autocast: AutocastFactory
    ) -> dict[str, float]:
        vp, pp, static, oie = [], [], [], []
        for item in items:
            batch = {k: (v[None].to(device) if isinstance(v, torch.Tensor) else v) for k, v in item.items()}
            with autocast():
                out = net(self.inputs(batch, training=False))
            pred = out.frames[-1].float().clamp(0, 1)
            tgt = batch["frames"]
            vp.append(float(video_psnr(pred, tgt)))
            pp.append(float(ppsnr(pred, tgt)))
            oie.append(float(ordering_invariant_error(pred, tgt)))
            still = batch["target"].unsqueeze(1).expand_as(tgt)
            static.append(float(video_psnr(still, tgt)))
        n = len(items)
        res = {
            "val_psnr": sum(vp) / n,
            "val_ppsnr": sum(pp) / n,
            "val_static_psnr": sum(static) / n,
            "val_oie": sum(oie) / n,
        }
        res["val_score"] = res["val_ppsnr"] if self.invariant else res["val_psnr"]
        return res


class AutoencoderTask(_VideoTask):
    """Stage 1: RVE + RVD reconstruct the N sharp frames (multi-scale L1 + TV; optional flow supervision).

    Optional ``distill`` (with ``teacher``, a trained BIE): an added L1 between the RVE's embedding and
    the frozen BIE's embedding of the same sequence's blurred image and central frame. The paper's aim is
    BIE(x_B) ≈ RVE(x_1..N), but it does not train on the embedding (no ground truth for it); this project
    addition uses a trained BIE as the RVE's target instead, which keeps the RVE from collapsing to the
    constant "no motion" embedding.
    """

    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__(cfg)
        frames = SynthConfig.from_dict(cfg.synth).frames
        self.net = AutoencoderNet(self.vcfg, frames if cfg.probe > 0 else 0)
        self._teacher: BlurredImageEncoder | None = None

    def teacher(self, device: torch.device) -> BlurredImageEncoder:
        if self._teacher is None:
            from ..weights import load_checkpoint

            if not self.cfg.teacher:
                raise ValueError("distill > 0 needs teacher (a trained BIE .safetensors)")
            state, meta = load_checkpoint(self.cfg.teacher)
            bie = build_from_checkpoint("bie", state, meta["config"])  # shipped file or a run's export
            self._teacher = bie.to(device).requires_grad_(False)
        return self._teacher

    def loss(self, out: DecodeResult, batch: dict, it: int) -> tuple[torch.Tensor, dict[str, float]]:
        total, logs = super().loss(out, batch, it)
        if self.cfg.distill > 0 and out.embedding is not None:
            with torch.no_grad():
                target = self.teacher(out.embedding.device)(batch["blurred"], batch["target"]).float()
            d = (out.embedding.float() - target).abs().mean()
            total = total + self.cfg.distill * d
            logs["distill"] = float(d.detach())
        if self.cfg.probe > 0 and out.probe is not None and bool(batch["has_flow"].any()):
            has = batch["has_flow"]
            p = (out.probe[has].float() - flows_at_scale(batch["flows"][has], 8)).abs().mean()
            total = total + self.cfg.probe * p
            logs["probe"] = float(p.detach())
        return total, logs

    def param_groups(self, net: nn.Module) -> list[dict]:
        """RVE at ``lr``; the RVD too, unless it starts from trained weights (``init``): then ``lr_rvd``."""
        rve = list(net.rve.parameters()) + (list(net.probe.parameters()) if net.probe is not None else [])
        return [
            {"params": rve, "lr": self.cfg.lr},
            {"params": list(net.rvd.parameters()), "lr": self.cfg.lr_rvd if self.cfg.init else self.cfg.lr},
        ]

    def exportables(self, net: nn.Module) -> list[Exportable]:
        cfg = self.vcfg.to_dict()
        return [Exportable("rve", net.rve, cfg), Exportable("rvd", net.rvd, cfg)]


def _centre_deblurrer(source: str) -> Deblurrer:
    """The frozen DM of ``centre_dm``: 'installed' (the registered default) or a DM .safetensors, on the
    CPU in the dtype the pipeline's 'auto' precision picks (moved to the training device on first use)."""
    from ..weights import load_checkpoint

    if source == "installed":
        dm = load_model("dm")
    else:
        state, meta = load_checkpoint(source)
        if meta.get("arch", "dm") != "dm":
            raise ValueError(f"centre_dm {source}: a '{meta['arch']}' checkpoint, not a DM")
        dm = build_from_checkpoint("dm", state, meta.get("config") or {})
    cpu = torch.device("cpu")
    return Deblurrer(dm, cpu, resolve_precision("auto", cpu))


def _bie_own(model: dict, stage1: dict, path: Path) -> dict:
    """The settings of a bie run's ``model`` that stage 2 may choose for itself (``bie_widths``: the BIE
    is new in stage 2); ValueError for one that differs from the stage-1 network's (``stage1``, read from
    ``path``), whose decoder stage 2 trains on."""
    fixed = {k: v for k, v in model.items() if k not in ("bie_widths", "frames")}  # frames: its synthesis'
    clash = [f"{k} {now} (stage 1: {was})" for k, (was, now) in VideoConfig.changes(stage1, fixed).items()]
    if clash:
        raise ValueError(
            f"model {'; '.join(clash)}: the stage-1 network of {path} fixes these; leave them out of the bie "
            "run's model (bie_widths is its own)"
        )
    return {k: v for k, v in model.items() if k == "bie_widths"}


class BIETask(_VideoTask):
    """Stage 2: BIE + the stage-1 RVD (fine-tuned at ``lr_rvd``) with the ordering-invariant loss (Eq. 6)."""

    invariant = True

    def __init__(self, cfg: TrainConfig, references: bool = True, video_config: dict | None = None) -> None:
        """``references=False`` (to read a finished run's weights): the stage-1 run is not needed (its
        architecture is read from it when it is still there) and no ``centre_dm`` is loaded.
        ``video_config`` (a resumed or exported run's own record of its network): the stage-1 run is
        not read at all; its weights come from the checkpoint."""
        super().__init__(cfg)
        stage1_file = Path(cfg.autoencoder or "")
        if stage1_file.is_dir():
            stage1_file = stage1_file / "best.safetensors"
        if video_config is not None:
            self.vcfg = VideoConfig.from_dict(video_config)
            self.net = BIENet(self.vcfg)
        elif cfg.autoencoder and (references or stage1_file.is_file()):
            from ..weights import load_checkpoint

            path = stage1_file
            if not Path(cfg.autoencoder).exists():  # "checkpoint file ... does not exist" read as a file
                raise ValueError(
                    f"--autoencoder {cfg.autoencoder}: no such run folder or checkpoint (the stage-1 run)"
                )
            state, meta = load_checkpoint(path)
            rvd = {k[4:]: v for k, v in state.items() if k.startswith("rvd.")}
            if not rvd:
                raise ValueError(
                    f"{path}: holds no stage-1 decoder (rvd.* tensors): give the autoencoder run folder or "
                    "its best.safetensors"
                )
            stage1 = VideoConfig.from_dict(meta["config"].get("rvd", meta["config"])).to_dict()
            self.vcfg = VideoConfig.from_dict(
                {**stage1, **_bie_own(cfg.model, stage1, path), "frames": self.vcfg.frames}
            )
            self.net = BIENet(self.vcfg)
            try:
                self.net.rvd.load_state_dict(rvd)
            except RuntimeError as e:
                raise ValueError(f"{path}: its decoder does not fit ({str(e).splitlines()[0]})") from None
        elif references and not cfg.init:
            raise ValueError(
                "stage bie trains against the stage-1 decoder: give --autoencoder RUN (or --init bie + rvd files)"
            )
        else:
            self.net = BIENet(self.vcfg)
        self._centre: Deblurrer | None = None
        if cfg.centre_dm and references:  # loaded now, so that a wrong file stops the run before it starts
            self._centre = _centre_deblurrer(cfg.centre_dm)

    def inputs(self, batch: dict, training: bool = True) -> dict:
        """The batch, with ``sharp_in`` = the ``centre_dm`` DM's output on the blurred photo if one is set
        (in training, for a ``centre_dm_p`` share of the samples; the others keep the true centre)."""
        if self._centre is None:
            return batch
        device = batch["blurred"].device
        if self._centre.device != device:
            self._centre = Deblurrer(self._centre.dm, device, self._centre.dtype)
        # the whole (small, untiled) batch in one pass; the clone leaves inference mode, so the BIE's
        # first layer can keep its input for the backward pass
        sharp = self._centre.batch(batch["blurred"].float()).clone().to(batch["blurred"].dtype)
        if training and self.cfg.centre_dm_p < 1:
            use_dm = torch.rand(sharp.shape[0], device=device) < self.cfg.centre_dm_p
            sharp = torch.where(use_dm[:, None, None, None], sharp, batch["target"].to(sharp.dtype))
        return {**batch, "sharp_in": sharp}

    def param_groups(self, net: nn.Module) -> list[dict]:
        return [
            {"params": list(net.bie.parameters()), "lr": self.cfg.lr},
            {"params": list(net.rvd.parameters()), "lr": self.cfg.lr_rvd},
        ]

    def exportables(self, net: nn.Module) -> list[Exportable]:
        cfg = self.vcfg.to_dict()
        return [Exportable("bie", net.bie, cfg), Exportable("rvd", net.rvd, cfg)]
