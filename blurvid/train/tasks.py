"""What each training stage optimises: the network container, its loss and its validation.

A task owns ``net`` (an ``nn.Module`` whose ``forward(batch) -> outputs`` is what DDP wraps), turns
outputs into a loss, validates on a fixed set and names the modules that get exported.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from ..metrics import psnr, ssim
from ..models.deblur import DeblurNet, DMConfig
from .config import TrainConfig
from .losses import align_to_target, fft_l1, gradient_l1, l1

AutocastFactory = Callable[[], contextlib.AbstractContextManager]
"""A zero-argument factory of the run's mixed-precision context (``with autocast(): ...``)."""


class Task(Protocol):
    """What the training loop needs of a stage (:class:`DeblurTask`, the video tasks)."""

    net: nn.Module
    score_name: str  # the validation number that picks best.safetensors (higher is better)

    def inputs(self, batch: dict, training: bool = True) -> object:
        """What ``net`` is called with for a batch (``training=False``: a validation item)."""
        ...

    def loss(self, out: object, batch: dict, it: int) -> tuple[torch.Tensor, dict[str, float]]:
        """``(scalar loss to minimise, {name: value} to log)`` for ``net``'s output on ``batch``."""
        ...

    def validate(
        self, net: nn.Module, items: list[dict], device: torch.device, autocast: AutocastFactory
    ) -> dict[str, float]:
        """Validation numbers (``score_name`` among them) over the fixed items."""
        ...

    def param_groups(self, net: nn.Module) -> list[dict]:
        """The optimiser's parameter groups (each with its ``lr``)."""
        ...

    def exportables(self, net: nn.Module) -> list[Exportable]:
        """The modules that a checkpoint export writes, with their architecture configs."""
        ...


@dataclass
class Exportable:
    """A module to export: registry ``arch`` and the architecture config that rebuilds it."""

    arch: str
    module: nn.Module
    config: dict


class DeblurNetTrainer(nn.Module):
    """Container for stage 'deblur': ``forward(blurred (B,3,H,W)) -> sharp (B,3,H,W)``."""

    def __init__(self, cfg: DMConfig) -> None:
        super().__init__()
        self.dm = DeblurNet(cfg)

    def forward(self, blurred: torch.Tensor) -> torch.Tensor:
        return self.dm(blurred)


class DeblurTask:
    """Stage 'deblur': L1 (plus optional gradient and spectrum terms) between DM output and the central frame."""

    score_name = "val_psnr"

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.dm_config = DMConfig.from_dict(cfg.model)
        self.net = DeblurNetTrainer(self.dm_config)

    def param_groups(self, net: nn.Module) -> list[dict]:
        return [{"params": [p for p in net.parameters() if p.requires_grad], "lr": self.cfg.lr}]

    def inputs(self, batch: dict, training: bool = True) -> torch.Tensor:
        return batch["blurred"]

    def loss(self, out: torch.Tensor, batch: dict, it: int) -> tuple[torch.Tensor, dict[str, float]]:
        out, target = align_to_target(out, batch["target"], self.cfg.align_loss)
        loss = l1(out, target)
        logs = {"l1": float(loss.detach())}
        if self.cfg.edge_loss > 0:
            e = gradient_l1(out, target)
            loss = loss + self.cfg.edge_loss * e
            logs["edge"] = float(e.detach())
        if self.cfg.fft_loss > 0:
            f = fft_l1(out, target)
            loss = loss + self.cfg.fft_loss * f
            logs["fft"] = float(f.detach())
        return loss, logs

    @torch.no_grad()
    def validate(
        self, net: nn.Module, items: list[dict], device: torch.device, autocast: AutocastFactory
    ) -> dict[str, float]:
        ps, ss, pb = [], [], []
        for it in items:
            x = it["blurred"][None].to(device)
            t = it["target"][None].to(device)
            with autocast():
                y = net(x).float().clamp(0, 1)
            ps.append(float(psnr(y, t)))
            ss.append(float(ssim(y, t)))
            pb.append(float(psnr(x, t)))
        n = len(items)
        return {"val_psnr": sum(ps) / n, "val_ssim": sum(ss) / n, "val_psnr_blurred": sum(pb) / n}

    def exportables(self, net: nn.Module) -> list[Exportable]:
        return [Exportable("dm", net.dm, self.dm_config.to_dict())]


def make_task(cfg: TrainConfig, references: bool = True, video_config: dict | None = None) -> Task:
    """The task object for ``cfg.stage``; ``references=False`` builds it only to hold a finished run's
    weights, without the files training reads beside them (stage bie's autoencoder and ``centre_dm``).
    ``video_config``: stage bie's network as a checkpoint recorded it (``last.pt``'s ``video_config``):
    then the stage-1 run, which only gave its architecture and starting weights, is not read."""
    if cfg.stage == "deblur":
        return DeblurTask(cfg)
    from .video_tasks import AutoencoderTask, BIETask

    if cfg.stage == "autoencoder":
        return AutoencoderTask(cfg)
    return BIETask(cfg, references, video_config)
