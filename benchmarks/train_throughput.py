"""Where a DM training step's time goes: the network step alone vs the data loader alone.

Times, for one training config, (a) optimizer steps on random tensors of the config's batch and crop
(same loss, precision, channels-last and weight average as ``blurvid train``), and (b) batches of fresh
synthesised samples from the config's data loader (``batch / reuse`` samples each, ``workers``
processes; ``--on-device yes|both``: the workers only plan the samples and the device renders them, as
``synth_on_device`` trains). Whichever rate is lower bounds ``blurvid train``'s iterations per second::

    python benchmarks/train_throughput.py --config weights/configs/dm-v8.json \
        --data ../shared/data/sharp/bsd100 --clips ../shared/data/video/tennis --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

from blurvid.data.datasets import render_collated
from blurvid.train.config import TrainConfig
from blurvid.train.loop import WeightAverage, autocast_factory, build_dataset, make_loader, synth_config
from blurvid.train.tasks import make_task


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def load_config(
    path: str, data: list[str] | None = None, clips: list[str] | None = None, device: str = "auto"
) -> tuple[dict, TrainConfig, torch.device]:
    """A training config file with its photo (and clip) folders overridden when given, as a dict and as
    a :class:`TrainConfig`, and the device to time on (``auto``: CUDA when available)."""
    raw = json.loads(open(path).read())
    if data:
        raw["data"] = data
    if clips is not None:
        raw["clips"] = clips
    dev = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)
    return raw, TrainConfig.from_dict(raw), dev


def step_rate(cfg: TrainConfig, dev: torch.device, steps: int, warm: int = 5, compile: bool = False) -> float:
    """Optimizer steps per second on random inputs (no data loading); ``compile``: through
    ``torch.compile`` (its compile time is in the warm-up steps, not the rate)."""
    task = make_task(cfg)
    net = task.net.to(dev)
    if cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)
    fwd = torch.compile(net) if compile else net
    opt = torch.optim.Adam(task.param_groups(net))
    ema = WeightAverage(net, cfg.ema) if cfg.ema > 0 else None
    autocast = autocast_factory(cfg.precision, dev)
    s = synth_config(cfg).size
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    x = torch.rand(cfg.batch, 3, s, s, device=dev).contiguous(memory_format=fmt)
    batch = {"blurred": x, "target": (x + 0.05 * torch.randn_like(x)).clamp(0, 1)}
    t0 = 0.0
    for i in range(warm + steps):
        if i == warm:
            sync(dev)
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with autocast():
            out = fwd(task.inputs(batch))
        loss, _ = task.loss(out, batch, i)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        if ema is not None:
            ema.update(net)
    sync(dev)
    return steps / (time.perf_counter() - t0)


def loader_rate(cfg: TrainConfig, batches: int, dev: torch.device, warm: int = 10) -> tuple[float, int]:
    """Fresh batches per second from the config's data loader, and the samples in each; with
    ``synth_on_device`` the plans are rendered on ``dev`` too (a batch counts once it is there)."""
    scfg = synth_config(cfg)
    fresh = math.ceil(cfg.batch / max(cfg.reuse, 1))
    loader = make_loader(
        build_dataset(cfg, scfg), 0, warm + batches, fresh, cfg.workers, plans=cfg.synth_on_device
    )
    t0 = time.perf_counter()
    for k, batch in enumerate(loader):
        if cfg.synth_on_device:
            render_collated(batch, dev)
            sync(dev)
        if k + 1 == warm:
            t0 = time.perf_counter()
    return batches / (time.perf_counter() - t0), fresh


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--data", action="append", default=None, help="overrides the config's photo folders")
    ap.add_argument("--clips", action="append", default=None, help="overrides the config's clip folders")
    ap.add_argument(
        "--workers",
        type=int,
        nargs="*",
        default=None,
        help="loader worker counts to time (not given: the config's; given with no value: skip)",
    )
    ap.add_argument(
        "--batch",
        type=int,
        nargs="*",
        default=None,
        help="batch sizes to time the step at (not given: the config's; given with no value: skip)",
    )
    ap.add_argument("--compile", action="store_true", help="also time the step through torch.compile")
    ap.add_argument(
        "--on-device",
        choices=("no", "yes", "both"),
        default="no",
        help="loader: render the blur on the device (synth_on_device), on the CPU workers, or time both",
    )
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batches", type=int, default=60)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    raw, cfg, dev = load_config(a.config, a.data, a.clips, a.device)
    if dev.type == "cpu":
        torch.set_num_threads(cfg.threads)
    res: dict = {
        "config": a.config,
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
    }
    res["step_it_s"] = {}
    for b in a.batch if a.batch is not None else [cfg.batch]:
        r = step_rate(TrainConfig.from_dict({**raw, "batch": b}), dev, a.steps)
        res["step_it_s"][b] = r
        print(f"network step, batch {b}: {r:.2f} it/s ({r * b:.0f} samples/s)", flush=True)
        if a.compile:
            r = step_rate(TrainConfig.from_dict({**raw, "batch": b}), dev, a.steps, compile=True)
            res["step_it_s"][f"{b}_compiled"] = r
            print(f"compiled network step, batch {b}: {r:.2f} it/s", flush=True)
    res["loader"] = {}
    modes = {"no": [False], "yes": [True], "both": [False, True]}[a.on_device]
    for w in a.workers if a.workers is not None else [cfg.workers]:
        for on_dev in modes:
            r, fresh = loader_rate(
                TrainConfig.from_dict({**raw, "workers": w, "synth_on_device": on_dev}), a.batches, dev
            )
            key = f"{w}_on_device" if on_dev else w
            res["loader"][key] = {"batches_s": r, "samples_s": r * fresh}
            where = f"rendered on {dev.type}" if on_dev else "rendered by the workers"
            print(
                f"loader, {w} workers, {where}: {r:.2f} batches/s of {fresh} samples ({r * fresh:.0f} samples/s)",
                flush=True,
            )
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
