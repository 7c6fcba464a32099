"""Training stages on tiny generated data: the loss drops, resume is exact, export loads for inference."""

import json
import math
import struct
import time
import warnings
import zlib

import numpy as np
import pytest
import torch
from conftest import run_cli as _cli
from PIL import Image

from blurvid.stopping import catchable_stop_signals
from blurvid.train import loop
from blurvid.train.config import TrainConfig
from blurvid.train.loop import train

TINY_DM = {"widths": [8, 8, 12, 16], "growth": [4, 4, 4, 4], "rdbs": [1, 1, 1, 1], "rdb_layers": 2}
TINY_V = {"widths": [4, 8, 8, 16], "hidden": 8, "bie_widths": [4, 4, 8, 8, 8, 8]}
SYNTH = {"size": 32, "subframes": 2, "blur_px": [2.0, 6.0], "zoom": [1.0, 1.0], "objects": [0, 1]}


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(3):
        base = rng.random((12, 12, 3))
        img = np.kron(base, np.ones((8, 8, 1)))  # blocky: strong edges to blur
        Image.fromarray((img * 255).astype(np.uint8)).save(d / f"p{i}.png")
    return d


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """Five random 40x44 frames: a clip folder."""
    d = tmp_path_factory.mktemp("clip")
    rng = np.random.default_rng(1)
    for i in range(5):
        Image.fromarray((rng.random((40, 44, 3)) * 255).astype(np.uint8)).save(d / f"{i:03d}.png")
    return d


def _cfg(stage, out, photos, **kw):
    base = dict(
        out=str(out),
        data=[str(photos)],
        val=[str(photos)],
        val_count=2,
        val_size=32,
        batch=2,
        workers=0,
        log_every=1,
        val_every=0,
        threads=1,
        synth=SYNTH,
        precision="fp32",
        channels_last=False,
        model=TINY_DM if stage == "deblur" else TINY_V,
    )
    base.update(kw)
    return TrainConfig.for_stage(stage, **base)


def _losses(out):
    import json

    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r]


@pytest.mark.parametrize("stage", ["deblur", "autoencoder"])
def test_loss_drops(stage, photos, tmp_path):
    # the same fixed batch again and again (reuse pool of one sample): the loss must fall
    cfg = _cfg(stage, tmp_path / stage, photos, iters=40, lr=5e-3, batch=1)
    torch.manual_seed(0)
    cfg.seed = 1
    from blurvid.train import loop

    orig = loop.StreamBatches.__iter__
    loop.StreamBatches.__iter__ = lambda self: iter([[0]] * (self.stop - self.start))
    try:
        train(cfg, progress=False, log=lambda m: None)
    finally:
        loop.StreamBatches.__iter__ = orig
    losses = _losses(tmp_path / stage)
    assert np.mean(losses[-5:]) < 0.85 * np.mean(losses[:3])


@pytest.mark.parametrize("accum", [1, 2])
def test_resume_two_plus_two_equals_four(photos, tmp_path, accum):
    a = _cfg("deblur", tmp_path / "a", photos, iters=4, accum=accum)
    train(a, progress=False, log=lambda m: None)
    b = _cfg("deblur", tmp_path / "b", photos, iters=2, accum=accum)
    train(b, progress=False, log=lambda m: None)
    b.iters = 4
    train(b, resume=True, progress=False, log=lambda m: None)
    sa = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    sb = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert sa["iteration"] == sb["iteration"] == 4
    for k, v in sa["model"].items():
        assert torch.equal(v, sb["model"][k]), k
    assert _losses(tmp_path / "a") == _losses(tmp_path / "b")


def test_a_killed_saves_hidden_copy_of_last_pt_is_removed_at_the_next_checkpoint(
    photos, tmp_path, monkeypatch
):
    """SIGKILL during a save left a hidden ``.last.pt.<hex>.tmp`` (118 MB for the DM) in the run folder
    for good; a resume's first save removes it once nothing has touched it for RUN_TEMP_STALE_S."""
    a = _cfg("deblur", tmp_path / "a", photos, iters=1)
    train(a, progress=False, log=lambda m: None)
    dead = tmp_path / "a" / ".last.pt.0123abcd.tmp"
    dead.write_bytes(b"half a checkpoint")
    mine = tmp_path / "a" / "notes.txt"
    mine.write_text("the user's")
    monkeypatch.setattr(loop, "RUN_TEMP_STALE_S", 0.2)
    time.sleep(0.4)
    a.iters = 2
    train(a, resume=True, progress=False, log=lambda m: None)
    assert not dead.exists() and mine.read_text() == "the user's"
    assert torch.load(tmp_path / "a" / "last.pt", weights_only=True)["iteration"] == 2


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_resume_with_another_lr_trains_at_it(photos, tmp_path, schedule):
    """`--resume --lr X` (the run's stored config merged with the new value) must train at X on the
    restored schedule, not at the rate stored in the optimizer and scheduler state."""
    import json

    cfg = _cfg("deblur", tmp_path / "r", photos, iters=2, lr=1e-3, schedule=schedule, warmup=0)
    train(cfg, progress=False, log=lambda m: None)
    cfg.iters, cfg.lr = 4, 2.5e-4
    train(cfg, resume=True, progress=False, log=lambda m: None)
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    lrs = {r["it"]: r["lr"] for r in rows if "lr" in r}
    if schedule == "constant":
        assert lrs[1] == pytest.approx(1e-3) and lrs[3] == lrs[4] == pytest.approx(2.5e-4)
    else:  # the cosine position is the run's, the scale the new rate
        m = cfg.min_lr_ratio
        # iteration i is logged with the rate it stepped at, position i - 1 (it was the next one's)
        assert lrs[1] == pytest.approx(1e-3)
        assert lrs[3] == pytest.approx(2.5e-4 * (m + (1 - m) * 0.5 * (1 + math.cos(math.pi * 2 / 4))))


def test_a_loader_whose_worker_failed_is_closed(tmp_path):
    """Workers ignore SIGTERM, so one left alive when an error ends the run would hang Python's exit."""
    from torch.utils.data import DataLoader, Dataset

    from blurvid.train.loop import _close_loader, _worker_init

    class Broken(Dataset):
        def __len__(self) -> int:
            return 8

        def __getitem__(self, i: int) -> int:
            raise ValueError("bad sample")

    batches = iter(DataLoader(Broken(), batch_size=2, num_workers=1, worker_init_fn=_worker_init))
    with pytest.raises(ValueError, match="bad sample"):
        next(batches)
    workers = list(batches._workers)
    assert workers and workers[0].is_alive()
    _close_loader(batches)
    assert not any(w.is_alive() for w in workers)


def test_bie_stage_uses_the_autoencoder_and_exports(photos, tmp_path):
    from blurvid import weights
    from blurvid.pipeline import build_from_checkpoint
    from blurvid.train.export import export

    ae = _cfg("autoencoder", tmp_path / "ae", photos, iters=2, flow_sup=0.1, coarse_warmup=5)
    train(ae, progress=False, log=lambda m: None)
    bie = _cfg("bie", tmp_path / "bie", photos, iters=2, autoencoder=str(tmp_path / "ae"), val_every=2)
    # the BIE run starts from the stage-1 RVD
    from blurvid.train.video_tasks import BIETask

    task = BIETask(bie)
    ae_state, _ = weights.load_checkpoint(tmp_path / "ae" / "best.safetensors")
    assert torch.equal(task.net.rvd.state_dict()["lstm.gates.weight"], ae_state["rvd.lstm.gates.weight"])
    train(bie, progress=False, log=lambda m: None)
    specs = export(tmp_path / "bie", tmp_path / "w", name="t", registry=tmp_path / "w" / "registry.json")
    assert sorted(s.arch for s, _ in specs) == ["bie", "rvd"]
    reg = weights.load_registry(tmp_path / "w" / "registry.json")
    for spec, _ in specs:
        state, meta = weights.load_checkpoint(tmp_path / "w" / spec.file, expected_sha256=spec.sha256)
        model = build_from_checkpoint(spec.arch, state, meta["config"])
        assert reg[spec.name].default
        assert sum(p.numel() for p in model.parameters()) > 0
    # a stage-1 run is no BIE + RVD pair: refused, nothing written
    with pytest.raises(ValueError, match="stage-1"):
        export(tmp_path / "ae", tmp_path / "w1", name="ae")
    assert not (tmp_path / "w1" / "rvd-ae.safetensors").exists()
    # the stage-2 run's last.pt holds every weight: it exports after the stage-1 run is gone
    import shutil

    shutil.rmtree(tmp_path / "ae")
    specs = export(tmp_path / "bie" / "last.pt", tmp_path / "w2", name="u", fp16=False)
    assert sorted(s.arch for s, _ in specs) == ["bie", "rvd"]
    assert all("run bie," in s.source for s, _ in specs)
    # ... and it resumes without it: the network's architecture is recorded in last.pt
    assert torch.load(tmp_path / "bie" / "last.pt", weights_only=True)["video_config"]["hidden"] > 0
    bie.iters = 3
    train(bie, resume=True, progress=False, log=lambda m: None)
    assert torch.load(tmp_path / "bie" / "last.pt", weights_only=True)["iteration"] == 3


def test_export_never_replaces_a_checkpoint_file_unless_asked(photos, tmp_path, capsys):
    cfg = _cfg("deblur", tmp_path / "dm", photos, iters=1, val_every=1)
    train(cfg, progress=False, log=lambda m: None)
    out = str(tmp_path / "w")
    assert _cli("train", "export", str(tmp_path / "dm"), "-o", out, "--name", "a") == 0
    before = (tmp_path / "w" / "dm-a.safetensors").read_bytes()
    capsys.readouterr()
    assert _cli("train", "export", str(tmp_path / "dm" / "last.pt"), "-o", out, "--name", "a", "--fp32") == 2
    assert "dm-a.safetensors: exists already" in capsys.readouterr().err
    assert (tmp_path / "w" / "dm-a.safetensors").read_bytes() == before
    assert (
        _cli(
            "train",
            "export",
            str(tmp_path / "dm" / "last.pt"),
            "-o",
            out,
            "--name",
            "a",
            "--fp32",
            "--overwrite",
        )
        == 0
    )
    assert (tmp_path / "w" / "dm-a.safetensors").read_bytes() != before


def test_export_deblur_round_trip_matches_training_weights(photos, tmp_path):
    from blurvid import weights
    from blurvid.pipeline import build_from_checkpoint
    from blurvid.train.export import export

    cfg = _cfg("deblur", tmp_path / "dm", photos, iters=2, val_every=2)
    train(cfg, progress=False, log=lambda m: None)
    ((spec, note),) = export(tmp_path / "dm", tmp_path / "w", name="t", fp16=False)
    state, meta = weights.load_checkpoint(tmp_path / "w" / spec.file)
    dm = build_from_checkpoint("dm", state, meta["config"])
    trained = torch.load(tmp_path / "dm" / "last.pt", weights_only=True)["model"]
    assert torch.equal(dm.state_dict()["head.weight"], trained["dm.head.weight"])
    assert note == "fp32"


def _torchrun(photos, tmp_path, target: list[str], iters: int):
    """Run ``blurvid train deblur`` (``target``: ``-m blurvid`` or a script that wraps it) as two CPU
    processes (gloo) under torchrun on a tiny DM; returns the finished process."""
    import json
    import os
    import shutil
    import subprocess

    torchrun = shutil.which("torchrun")
    assert torchrun, "torchrun ships with torch"
    cfg = {
        "model": TINY_DM,
        "synth": SYNTH,
        "val_every": 0,
        "log_every": 1,
        "threads": 1,
        "precision": "fp32",
    }
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    args = ["train", "deblur", "--data", str(photos), "--out", str(tmp_path / "run"), "--iters", str(iters)]
    args += ["--batch", "2", "--workers", "0", "--device", "cpu", "--config", str(tmp_path / "cfg.json")]
    return subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node=2", *target, *args, "--no-progress"],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def test_ddp_two_processes_with_torchrun(photos, tmp_path):
    """Two CPU processes (gloo) through torchrun: the standard DDP engine, rank 0 writes the run."""
    r = _torchrun(photos, tmp_path, ["-m", "blurvid"], iters=3)
    assert r.returncode == 0, r.stderr[-2000:]
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["iteration"] == 3


def test_ddp_stop_on_one_rank_stops_both(photos, tmp_path):
    """A stop that reaches rank 1 alone (at its 2nd step) stops both ranks there: rank 0 saves the
    checkpoint and neither waits forever in the next gradient all-reduce."""
    script = tmp_path / "stop_rank1.py"
    script.write_text(
        "import os\n"
        "from blurvid.cli import main\n"
        "from blurvid.train import loop\n"
        "class Stop(loop._Stop):\n"
        "    steps = 0\n"
        "    def agreed(self, world, dev):\n"
        "        Stop.steps += 1\n"
        "        if os.environ['RANK'] == '1' and Stop.steps == 2:\n"
        "            self(15, None)  # SIGTERM, as the handler records it\n"
        "        return super().agreed(world, dev)\n"
        "loop._Stop = Stop\n"
        "main()\n"
    )
    r = _torchrun(photos, tmp_path, [str(script)], iters=40)
    assert "stopped at iteration 2" in r.stdout + r.stderr, (r.stdout + r.stderr)[-2000:]
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["iteration"] == 2


def test_time_budget_stops_the_run_and_anneals(photos, tmp_path, monkeypatch):
    from blurvid.train import loop

    clock = iter(range(0, 100_000, 5))  # every call to time.time() advances 5 s
    monkeypatch.setattr(loop.time, "time", lambda: float(next(clock)))
    cfg = _cfg("deblur", tmp_path / "t", photos, iters=1000, minutes=2.0, schedule="cosine", lr=1e-3)
    train(cfg, progress=False, log=lambda m: None)
    state = torch.load(tmp_path / "t" / "last.pt", weights_only=True)
    assert 0 < state["iteration"] < 50  # stopped by the 2-minute budget, not by iters
    rows = [json.loads(line) for line in (tmp_path / "t" / "metrics.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in rows if "lr" in r]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] > 0.9e-3
    # the cosine followed the clock to its floor, although it / iters stayed under 5 %
    assert state["scheduler"]["_last_lr"][0] < 0.15e-3
    assert (tmp_path / "t" / "best.safetensors").exists()


def test_init_from_two_shipped_files_fills_bie_and_rvd(photos, tmp_path):
    from blurvid import weights
    from blurvid.models import BlurredImageEncoder, RecurrentVideoDecoder
    from blurvid.models.encoders import VideoConfig

    vcfg = VideoConfig.from_dict(TINY_V)
    torch.manual_seed(3)
    bie, rvd = BlurredImageEncoder(vcfg), RecurrentVideoDecoder(vcfg)
    for arch, m in (("bie", bie), ("rvd", rvd)):
        weights.save_checkpoint(
            tmp_path / f"{arch}.safetensors", m.state_dict(), arch=arch, config=vcfg.to_dict()
        )
    cfg = _cfg(
        "bie",
        tmp_path / "run",
        photos,
        iters=0,
        init=(str(tmp_path / "bie.safetensors"), str(tmp_path / "rvd.safetensors")),
    )
    train(cfg, progress=False, log=lambda m: None)
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["model"]
    for arch, m in (("bie", bie), ("rvd", rvd)):
        for k, v in m.state_dict().items():
            assert torch.equal(state[f"{arch}.{k}"], v), f"{arch}.{k}"


def test_cli_config_file_may_name_its_stage_and_resume_works(photos, tmp_path, capsys):
    """A saved config.json (which names its stage) drives `blurvid train`; a mismatched stage is exit 2."""
    cfg = _cfg("deblur", tmp_path / "run", photos, iters=2)
    path = tmp_path / "cfg.json"
    path.write_text(cfg.to_json())
    run = _cli

    assert run("train", "bie", "--config", str(path), "--no-progress") == 2
    assert "stage 'deblur'" in capsys.readouterr().err
    assert run("train", "deblur", "--config", str(path), "--no-progress") == 0
    path.write_text(json.dumps({"iters": 3}))
    assert (
        run(
            "train",
            "deblur",
            "--config",
            str(path),
            "--out",
            str(tmp_path / "run"),
            "--resume",
            "--no-progress",
        )
        == 0
    )
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["iteration"] == 3
    # --resume without --out continues the run folder the config names (it looked in runs/deblur)
    path.write_text(json.dumps({"iters": 4, "out": str(tmp_path / "run")}))
    assert run("train", "deblur", "--config", str(path), "--resume", "--no-progress") == 0
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["iteration"] == 4
    (tmp_path / "run" / "last.pt").write_bytes(b"cut off")
    capsys.readouterr()
    assert run("train", "deblur", "--config", str(path), "--resume", "--no-progress") == 2
    assert capsys.readouterr().err.strip().endswith("not a readable blurvid run checkpoint (UnpicklingError)")


def test_autoencoder_distills_from_a_teacher_bie(photos, tmp_path):
    from blurvid import weights
    from blurvid.models import BlurredImageEncoder
    from blurvid.models.encoders import VideoConfig

    vcfg = VideoConfig.from_dict(TINY_V)
    torch.manual_seed(5)
    weights.save_checkpoint(
        tmp_path / "bie.safetensors",
        BlurredImageEncoder(vcfg).state_dict(),
        arch="bie",
        config=vcfg.to_dict(),
    )
    cfg = _cfg("autoencoder", tmp_path / "ae", photos, iters=30, lr=3e-3, distill=1.0)
    with pytest.raises(ValueError, match="teacher"):
        train(cfg, progress=False, log=lambda m: None)
    cfg = _cfg(
        "autoencoder",
        tmp_path / "ae2",
        photos,
        iters=30,
        lr=3e-3,
        distill=1.0,
        teacher=str(tmp_path / "bie.safetensors"),
    )
    train(cfg, progress=False, log=lambda m: None)
    rows = [json.loads(line) for line in (tmp_path / "ae2" / "metrics.jsonl").read_text().splitlines()]
    d = [r["distill"] for r in rows if "distill" in r]
    assert len(d) == 30 and np.mean(d[-5:]) < 0.8 * np.mean(d[:3])  # the RVE moves towards the teacher


def test_deeper_dm_grown_from_a_shallower_checkpoint_computes_the_same(photos, tmp_path):
    """Init of a DM with more RDBs per scale: the new blocks start as the identity (function-preserving)."""
    from blurvid import weights
    from blurvid.models.deblur import DeblurNet, DMConfig

    torch.manual_seed(7)
    small = DeblurNet(DMConfig.from_dict(TINY_DM)).eval()
    with torch.no_grad():  # a non-trivial residual, so that an un-grown new block would show
        small.tail[-1].weight.normal_(0, 0.05)
    weights.save_checkpoint(
        tmp_path / "dm.safetensors", small.state_dict(), arch="dm", config=small.config.to_dict()
    )
    deep = {**TINY_DM, "rdbs": [2, 1, 2, 3]}
    cfg = _cfg("deblur", tmp_path / "run", photos, iters=0, model=deep, init=str(tmp_path / "dm.safetensors"))
    logs: list[str] = []
    train(cfg, progress=False, log=logs.append)
    assert any("4 residual blocks" in m for m in logs)
    grown = DeblurNet(DMConfig.from_dict(deep)).eval()
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["model"]
    grown.load_state_dict({k.removeprefix("dm."): v for k, v in state.items()})
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        want, got = small(x), grown(x)
    assert (want - x).abs().max() > 1e-3  # the residual is not zero ...
    assert torch.allclose(got, want, atol=1e-6)  # ... and the deeper net reproduces it


def test_autoencoder_motion_probe_learns_and_is_not_exported(photos, tmp_path):
    from blurvid.weights import load_checkpoint

    cfg = _cfg("autoencoder", tmp_path / "ae", photos, iters=30, lr=3e-3, probe=1.0)
    train(cfg, progress=False, log=lambda m: None)
    rows = [json.loads(line) for line in (tmp_path / "ae" / "metrics.jsonl").read_text().splitlines()]
    p = [r["probe"] for r in rows if "probe" in r]
    assert len(p) == 30 and np.mean(p[-5:]) < 0.8 * np.mean(p[:3])
    state, _ = load_checkpoint(tmp_path / "ae" / "best.safetensors")
    assert state and not any("probe" in k for k in state)


def test_weight_average_follows_the_stated_update():
    from blurvid.train.loop import WeightAverage

    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    avg = WeightAverage(net, 0.75)
    before = net[0].weight.detach().clone()
    with torch.no_grad():
        net[0].weight.add_(1.0)
        net[1].running_mean.fill_(5.0)
    avg.update(net)
    assert torch.allclose(avg.net[0].weight, before + 0.25)  # 0.75 * old + 0.25 * (old + 1)
    assert torch.equal(avg.net[1].running_mean, torch.full((2,), 5.0))  # buffers are copied
    assert not avg.net.training and not any(p.requires_grad for p in avg.net.parameters())
    with pytest.raises(ValueError, match="ema decay"):
        WeightAverage(net, 1.0)


def test_ema_run_scores_and_exports_the_average_and_resumes_exactly(photos, tmp_path):
    from blurvid import weights

    a = _cfg("deblur", tmp_path / "a", photos, iters=4, ema=0.5, lr=1e-2, val_every=4)
    train(a, progress=False, log=lambda m: None)
    b = _cfg("deblur", tmp_path / "b", photos, iters=2, ema=0.5, lr=1e-2, val_every=4)
    train(b, progress=False, log=lambda m: None)
    b.iters = 4
    train(b, resume=True, progress=False, log=lambda m: None)
    sa = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    sb = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    for k, v in sa["ema"].items():
        assert torch.equal(v, sb["ema"][k]), k
    best, _ = weights.load_checkpoint(tmp_path / "a" / "best.safetensors")
    assert torch.equal(best["dm.head.weight"], sa["ema"]["dm.head.weight"])  # the average is exported,
    assert not torch.equal(best["dm.head.weight"], sa["model"]["dm.head.weight"])  # not the last weights


def test_export_last_pt_takes_the_weight_average_else_the_raw_weights(photos, tmp_path):
    from blurvid import weights
    from blurvid.train.export import export

    for name, ema in (("avg", 0.5), ("raw", 0.0)):
        cfg = _cfg("deblur", tmp_path / name, photos, iters=4, ema=ema, lr=1e-2, val_every=2)
        train(cfg, progress=False, log=lambda m: None)
        last = torch.load(tmp_path / name / "last.pt", weights_only=True)
        ((spec, _),) = export(tmp_path / name / "last.pt", tmp_path / "w", name=name, fp16=False)
        state, meta = weights.load_checkpoint(tmp_path / "w" / spec.file)
        want = last["ema"] if ema else last["model"]
        assert torch.equal(state["head.weight"], want["dm.head.weight"])
        assert meta["train"] == {"iteration": 4, "weights": "average" if ema else "raw"}
        if ema:
            assert not torch.equal(state["head.weight"], last["model"]["dm.head.weight"])
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"junk\.pt: not a blurvid training checkpoint"):
        export(tmp_path / "junk.pt", tmp_path / "w")


def test_deblur_fft_loss_is_added_and_logged(photos, tmp_path):
    from blurvid.train.tasks import DeblurTask

    cfg = _cfg("deblur", tmp_path / "f", photos, fft_loss=0.5)
    task = DeblurTask(cfg)
    g = torch.Generator().manual_seed(0)
    out, target = torch.rand(2, 3, 24, 20, generator=g), torch.rand(2, 3, 24, 20, generator=g)
    loss, logs = task.loss(out, {"target": target}, 0)
    assert set(logs) == {"l1", "fft"}
    assert float(loss) == pytest.approx(logs["l1"] + 0.5 * logs["fft"], rel=1e-6)


def test_deblur_align_loss_ignores_placement_but_not_blur(photos, tmp_path):
    from blurvid.train.tasks import DeblurTask

    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 3, 24, 20, generator=g)
    moved = torch.roll(target, (2, -1), (-2, -1))
    plain = DeblurTask(_cfg("deblur", tmp_path / "p", photos, fft_loss=0.5))
    aligned = DeblurTask(_cfg("deblur", tmp_path / "a", photos, fft_loss=0.5, align_loss=2))
    assert float(plain.loss(moved, {"target": target}, 0)[0]) > 0.1
    assert float(aligned.loss(moved, {"target": target}, 0)[0]) == 0.0
    soft = 0.5 * (target + torch.roll(target, 1, -1))  # a blur is still a loss
    assert float(aligned.loss(soft, {"target": target}, 0)[0]) > 0.05
    with pytest.raises(ValueError, match="align_loss 9"):
        _cfg("deblur", tmp_path / "x", photos, align_loss=9)


def test_accum_two_half_batches_step_like_one_full_batch(photos, tmp_path):
    """Gradient accumulation: 2 micro-batches of 2 per optimizer step give the weights, iteration count
    and logged losses of batch 4 (the same samples: the stream is index-deterministic)."""
    full = _cfg("deblur", tmp_path / "full", photos, iters=3, batch=4, reuse=1, grad_clip=0.0, lr=1e-3)
    train(full, progress=False, log=lambda m: None)
    acc = _cfg("deblur", tmp_path / "acc", photos, iters=3, batch=2, accum=2, reuse=1, grad_clip=0.0, lr=1e-3)
    train(acc, progress=False, log=lambda m: None)
    sf = torch.load(tmp_path / "full" / "last.pt", weights_only=True)
    sa = torch.load(tmp_path / "acc" / "last.pt", weights_only=True)
    assert sf["iteration"] == sa["iteration"] == 3
    for k, v in sf["model"].items():
        torch.testing.assert_close(sa["model"][k], v, rtol=1e-4, atol=1e-5, msg=k)
    init = _cfg("deblur", tmp_path / "none", photos, iters=0)
    train(init, progress=False, log=lambda m: None)
    s0 = torch.load(tmp_path / "none" / "last.pt", weights_only=True)
    moved = max(float((v - s0["model"][k]).abs().max()) for k, v in sf["model"].items())
    assert moved > 1e-3  # the steps did change the weights, so equality above is not vacuous
    np.testing.assert_allclose(_losses(tmp_path / "acc"), _losses(tmp_path / "full"), rtol=1e-4)


def test_freeze_loaded_trains_only_the_grown_blocks_and_survives_resume(photos, tmp_path):
    """``freeze_loaded``: the tensors copied from ``init`` stay as they were; grown blocks learn."""
    from blurvid import weights
    from blurvid.models.deblur import DeblurNet, DMConfig

    small = DeblurNet(DMConfig.from_dict(TINY_DM))
    weights.save_checkpoint(
        tmp_path / "dm.safetensors", small.state_dict(), arch="dm", config=small.config.to_dict()
    )
    deep = {**TINY_DM, "rdbs": [1, 1, 1, 3]}
    kw = dict(model=deep, init=str(tmp_path / "dm.safetensors"), freeze_loaded=True, lr=1e-2)
    logs: list[str] = []
    train(_cfg("deblur", tmp_path / "run", photos, iters=3, **kw), progress=False, log=logs.append)
    before = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["model"]
    train(
        _cfg("deblur", tmp_path / "run", photos, iters=6, **kw), resume=True, progress=False, log=logs.append
    )
    assert sum("froze" in m for m in logs) == 2  # the fresh run and the resumed one
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["iteration"] == 6
    after = state["model"]
    loaded = {f"dm.{k}": v for k, v in small.state_dict().items()}
    for k, v in loaded.items():
        assert torch.equal(after[k], v.to(after[k].dtype)), k  # copied from init: unchanged
    moved = [k for k in after if k not in loaded and not torch.equal(after[k], before[k])]
    assert moved  # the grown blocks kept learning after the resume
    with pytest.raises(ValueError, match="freeze_loaded needs init"):
        _cfg("deblur", tmp_path / "r2", photos, freeze_loaded=True)


def test_deblur_stage_stream_carries_only_the_central_frame(photos, clip, tmp_path):
    # the DM's loader renders and ships one target per sample: the same pairs as the full items
    from blurvid.data.datasets import ClipDataset, MixedDataset, PhotoSynthDataset
    from blurvid.train.loop import build_dataset, synth_config

    cfg = _cfg(
        "deblur", tmp_path / "run", photos, clips=[str(clip)], clip_p=0.5, synth={**SYNTH, "frames": 5}
    )
    stream = build_dataset(cfg, synth_config(cfg))
    scfg = synth_config(cfg)
    full = MixedDataset(
        PhotoSynthDataset(cfg.data, scfg, seed=cfg.seed, jpeg_p=cfg.jpeg_p),
        ClipDataset(cfg.clips, frames=5, size=scfg.size, seed=cfg.seed),
        0.5,
        seed=cfg.seed,
    )
    kinds = set()
    for i in range(12):
        a, b = stream[i], full[i]
        kinds.add(bool(b["has_flow"]))
        assert a["frames"].shape == (1, 3, 32, 32) and a["flows"].shape == (1, 2, 32, 32) and a["center"] == 0
        assert b["frames"].shape[0] == 5
        assert torch.equal(a["blurred"], b["blurred"])
        assert torch.equal(a["frames"][0], b["frames"][b["center"]])
    assert kinds == {True, False}  # both photo and clip items were compared
    video = _cfg("autoencoder", tmp_path / "v", photos, synth={**SYNTH, "frames": 5})
    assert build_dataset(video, synth_config(video))[0]["frames"].shape[0] == 5


def test_synth_on_device_stream_plans_in_workers_and_trains(photos, clip, tmp_path):
    # workers hand over plans; the training process renders them (here on the CPU) and mixes in clips
    from blurvid.data.datasets import collate, render_collated
    from blurvid.train.loop import build_dataset, make_loader, synth_config

    cfg = _cfg(
        "deblur",
        tmp_path / "run",
        photos,
        clips=[str(clip)],
        clip_p=0.3,
        jpeg_p=0.5,
        synth={**SYNTH, "frames": 5},
        synth_on_device=True,
        iters=3,
        batch=6,
        workers=1,
    )
    stream = build_dataset(cfg, synth_config(cfg))
    raw = collate([stream[i] for i in range(6)])
    assert set(raw) == {"plans", "rendered"} and len(raw["plans"]) + len(raw["rendered"]["blurred"]) == 6
    assert any(q > 0 for q in raw["plans"].jpeg)
    batch = render_collated(raw, torch.device("cpu"))
    assert batch["blurred"].shape == (6, 3, 32, 32) and batch["frames"].shape == (6, 1, 3, 32, 32)
    assert batch["center"].tolist() == [0] * 6 and batch["has_flow"].sum() == len(raw["plans"])
    again = render_collated(collate([stream[i] for i in range(6)]), torch.device("cpu"))
    assert torch.equal(batch["blurred"], again["blurred"])  # index-deterministic
    loaded = next(iter(make_loader(stream, 0, 1, 6, 1, plans=True)))  # through a worker process
    assert torch.equal(render_collated(loaded, torch.device("cpu"))["blurred"], batch["blurred"])
    train(cfg, progress=False, log=lambda s: None)
    assert len(_losses(tmp_path / "run")) == 3 and (tmp_path / "run" / "best.safetensors").exists()


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"lrr": 1e-4}, "unknown config key 'lrr' (did you mean 'lr'?)"),
        (
            {"synth": {"blur_pix": [1, 4]}},
            "unknown config key 'synth.blur_pix' (did you mean 'synth.blur_px'?)",
        ),
        (
            {"model": {"widht": [8, 8, 8, 8]}},
            "unknown config key 'model.widht' (did you mean 'model.widths'?)",
        ),
        ([1, 2], "must hold a JSON object"),
    ],
)
def test_cli_config_file_with_an_unknown_key_stops_before_training(photos, tmp_path, capsys, doc, message):
    """A misspelt key is one clear line and exit 2, not a run silently trained with the default."""
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(doc))
    out = tmp_path / "run"
    assert _cli("train", "deblur", "--config", str(path), "-d", str(photos), "-o", str(out)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_shipped_training_configs_name_only_known_keys():
    from pathlib import Path

    from blurvid.train.config import check_keys

    paths = sorted((Path(__file__).parents[1] / "weights" / "configs").glob("*.json"))
    assert len(paths) > 10
    for p in paths:
        d = json.loads(p.read_text())
        check_keys(d, d.get("stage", "deblur"), str(p))


def test_cli_crop_and_minutes_change_only_themselves_on_a_config(photos, tmp_path):
    """--crop overrides the synthesis size and keeps the config file's other synthesis settings."""
    cfg = _cfg("deblur", tmp_path / "run", photos, iters=1, val=[])
    path = tmp_path / "cfg.json"
    path.write_text(cfg.to_json())
    assert (
        _cli("train", "deblur", "--config", str(path), "--crop", "64", "--minutes", "3", "--no-progress") == 0
    )
    stored = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["config"]
    assert stored["synth"] == {**SYNTH, "size": 64}
    assert stored["minutes"] == 3.0


# ------------------------------------------------------------------ session 19: training-side audit


def test_fine_tuning_a_dm_takes_its_architecture(photos, tmp_path):
    """`--init dm.safetensors` without a model setting trains that DM, not the default one."""
    from blurvid import weights
    from blurvid.models.deblur import DeblurNet, DMConfig

    other = {**TINY_DM, "rdbs": [1, 2, 1, 1]}
    dm = DeblurNet(DMConfig.from_dict(other))
    weights.save_checkpoint(
        tmp_path / "dm.safetensors", dm.state_dict(), arch="dm", config=dm.config.to_dict()
    )
    logs: list[str] = []
    cfg = _cfg("deblur", tmp_path / "run", photos, iters=0, model={}, init=str(tmp_path / "dm.safetensors"))
    train(cfg, progress=False, log=logs.append)
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert DMConfig.from_dict(ckpt["config"]["model"]) == dm.config
    assert all(torch.equal(ckpt["model"][f"dm.{k}"], v) for k, v in dm.state_dict().items())
    assert not any("warning" in m for m in logs)


def test_init_that_fits_nothing_is_an_error_and_a_partial_fit_warns(photos, tmp_path):
    from blurvid import weights
    from blurvid.models.deblur import DeblurNet, DMConfig

    weights.save_checkpoint(tmp_path / "x.safetensors", {"foo.weight": torch.zeros(3)}, arch="dm", config={})
    with pytest.raises(ValueError, match="none of its 1 tensors fits this network"):
        train(
            _cfg("deblur", tmp_path / "a", photos, iters=0, init=str(tmp_path / "x.safetensors")), log=print
        )
    wide = DeblurNet(DMConfig.from_dict({**TINY_DM, "widths": [8, 8, 12, 24]}))
    weights.save_checkpoint(tmp_path / "w.safetensors", wide.state_dict(), arch="dm", config={})
    logs: list[str] = []
    train(
        _cfg("deblur", tmp_path / "b", photos, iters=0, init=str(tmp_path / "w.safetensors")), log=logs.append
    )
    assert any(m.startswith("warning: ") and "fit no layer" in m for m in logs), logs


def test_resume_hints_and_clips_added_on_resume(photos, tmp_path, capsys):
    clip = tmp_path / "clip"
    clip.mkdir()
    for i in range(9):  # the run's N
        Image.fromarray(np.full((40, 44, 3), 20 * i, np.uint8)).save(clip / f"{i:03d}.png")
    cfg = _cfg("deblur", tmp_path / "run", photos, iters=1)
    path = tmp_path / "cfg.json"
    path.write_text(cfg.to_json())
    assert _cli("train", "deblur", "--config", str(path), "--no-progress") == 0
    capsys.readouterr()
    # another stage's command on this run: which command continues it
    assert _cli("train", "autoencoder", "--resume", "-o", str(tmp_path / "run")) == 2
    assert f"is a 'deblur' run: continue it with `blurvid train deblur --resume -o {tmp_path / 'run'}`" in (
        capsys.readouterr().err
    )
    # --clips given on resume: they get half of the samples (the stored clip_p 0 would never draw them)
    run = str(tmp_path / "run")
    assert (
        _cli("train", "deblur", "--resume", "-o", run, "--clips", str(clip), "--iters", "2", "--no-progress")
        == 0
    )
    assert "half of the samples come from the clips" in capsys.readouterr().err
    stored = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["config"]
    assert stored["clip_p"] == 0.5 and stored["clips"] == [str(clip)]
    # resumed again without --clips: the stored share stays, and nothing is said
    assert _cli("train", "deblur", "--resume", "-o", run, "--iters", "3", "--no-progress") == 0
    assert "half of the samples" not in capsys.readouterr().err
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["config"]["clip_p"] == 0.5


def test_a_resume_that_cannot_start_leaves_the_run_config_alone(photos, tmp_path, capsys):
    cfg = _cfg("deblur", tmp_path / "run", photos, iters=1)
    train(cfg, progress=False, log=lambda m: None)
    before = (tmp_path / "run" / "config.json").read_text()
    run = str(tmp_path / "run")
    assert _cli("train", "deblur", "--resume", "-o", run, "--iters", "5", "-d", str(tmp_path / "gone")) == 2
    assert (tmp_path / "run" / "config.json").read_text() == before
    (tmp_path / "file.png").write_bytes(b"x")
    assert _cli("train", "deblur", "-d", str(photos), "-o", str(tmp_path / "file.png")) == 2
    assert "file.png: is a file; -o names a run folder" in capsys.readouterr().err


def test_a_new_run_never_replaces_an_existing_one(photos, tmp_path, capsys):
    cfg = _cfg("deblur", tmp_path / "run", photos, iters=1)
    train(cfg, progress=False, log=lambda m: None)
    path = tmp_path / "cfg.json"
    path.write_text(cfg.to_json())
    assert _cli("train", "deblur", "--config", str(path), "--no-progress") == 2
    assert f"already holds a run: continue it with `blurvid train deblur --resume -o {tmp_path / 'run'}`" in (
        capsys.readouterr().err
    )
    # another stage's command names the run's own stage, whose --resume works
    assert _cli("train", "autoencoder", "-d", str(photos), "-o", str(tmp_path / "run")) == 2
    assert "continue it with `blurvid train deblur --resume" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"batch": "eight"}, "'batch' must be a whole number, not 'eight'"),
        ({"iters": 2.5}, "'iters' must be a whole number, not 2.5"),
        ({"lr": "fast"}, "'lr' must be a number, not 'fast'"),
        ({"data": "sharp"}, "'data' must be a list, not 'sharp'"),
        ({"model": "big"}, "'model' must be an object, not 'big'"),
        ({"synth": {"size": "big"}}, "'synth.size' must be a whole number"),
        ({"lr": -1.0}, "lr must be positive"),
        ({"precision": "bogus"}, "precision 'bogus': use auto, bf16, fp16 or fp32"),
        ({"synth": {"size": 0}}, "crop size 0: use a multiple of 32"),
        ({"synth": {"size": 100}}, "crop size 100: use a multiple of 32"),  # the DM failed on its first step
        ({"val_size": 250}, "val_size 250: use a multiple of 32"),
        ({"init": 5}, "'init' must be a string or a list of strings, not 5"),
        ({"init": [5]}, "each item of config key 'init' must be a string, not 5"),
        ({"autoencoder": 5}, "'autoencoder' must be a string, not 5"),
        ({"centre_dm": ["a"]}, "'centre_dm' must be a string, not ['a']"),
        ({"data": [3]}, "each item of config key 'data' must be a string, not 3"),
        ({"lambdas": ["a", 1, 1, 1]}, "each item of config key 'lambdas' must be a number, not 'a'"),
        ({"lambdas": []}, "lambdas []: give four weights"),
        ({"workers": -1}, "workers -1: use 0"),
        ({"synth": {"blur_px": ["a", "b"]}}, "each item of config key 'synth.blur_px' must be a number"),
        ({"synth": {"exposure_length": "yes"}}, "'synth.exposure_length' must be true, false or a number"),
        ({"synth": {"exposure_length": 1.5}}, "exposure_length 1.5: use true, false or a probability from 0"),
        # these failed in a data worker's traceback, or were taken as "no limit"
        ({"synth": {"frames": 0}}, "synth frames 0: use a whole number, at least 2"),
        ({"synth": {"frames": 1}}, "synth frames 1: use a whole number, at least 2"),
        ({"synth": {"subframes": 0}}, "synth subframes 0: use a whole number, at least 1"),
        ({"minutes": -1.0}, "minutes -1.0: use a number, 0 or more"),
        ({"flow_sup": float("nan")}, "flow_sup nan: use a number, 0 or more"),
        # these divided by zero after the first step, trained uphill, or failed in a layer's traceback
        ({"log_every": 0}, "log_every 0: use a whole number, at least 1"),
        ({"min_lr_ratio": -2}, "min_lr_ratio -2: use a number from 0 to 1"),
        ({"ema": -0.5}, "ema -0.5: use a number from 0 to under 1"),
        ({"ema": 1.0}, "ema 1.0: use a number from 0 to under 1"),
        ({"warmup": -3}, "warmup -3: use a whole number, at least 0"),
        ({"val_count": -1}, "val_count -1: use a whole number, at least 1"),
        ({"model": {"widths": [8]}}, "model widths (8,): use 4 whole numbers, each at least 1"),
        ({"model": {"widths": [0, 16, 32, 64]}}, "model widths (0, 16, 32, 64): use 4 whole numbers"),
        ({"model": {"rdb_layers": 0}}, "model rdb_layers 0: use a whole number, at least 1"),
    ],
)
def test_cli_config_values_of_the_wrong_kind_are_one_line(photos, tmp_path, capsys, doc, message):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(doc))
    assert _cli("train", "deblur", "--config", str(path), "-d", str(photos), "-o", str(tmp_path / "r")) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"model": {"hidden": -4}}, "model hidden -4: use a whole number, at least 1"),
        ({"model": {"widths": [8, 16]}}, "model widths (8, 16): use 4 whole numbers"),
        ({"model": {"bie_widths": [8]}}, "model bie_widths (8,): use 6 whole numbers"),
    ],
)
def test_cli_video_model_values_are_one_line(photos, tmp_path, capsys, doc, message):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(doc))
    argv = ("train", "autoencoder", "--config", str(path), "-d", str(photos), "-o", str(tmp_path / "r"))
    assert _cli(*argv) == 2  # these were an IndexError and a RuntimeError from a layer (exit 1)
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_photo_whose_data_is_corrupt_is_one_line_from_a_data_worker(tmp_path, capsys):
    import io

    data = tmp_path / "data"  # only the cut photo: every sample reads it
    data.mkdir()
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 96, 3), np.uint8)).save(buf, "JPEG")
    (data / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])  # its header reads
    argv = ("train", "deblur", "-d", str(data), "-o", str(tmp_path / "r"), "--iters", "4", "--batch", "4")
    assert _cli(*argv, "--crop", "64", "--workers", "1", "--no-progress") == 2
    err = capsys.readouterr().err
    # torch raised it again with the worker's traceback as the message
    assert "cut.jpg: cannot decode" in err and "Caught" not in err and "Traceback" not in err


def test_a_run_folder_that_cannot_be_made_is_one_line(photos, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    for out in (tmp_path / "afile" / "sub", tmp_path / ("x" * 300)):  # NotADirectoryError, name too long
        argv = ("train", "deblur", "-d", str(photos), "-o", str(out), "--iters", "1", "--no-progress")
        assert _cli(*argv) == 2
        err = capsys.readouterr().err
        assert "cannot" in err and "run folder" in err and "Traceback" not in err


def test_a_file_that_is_no_image_in_the_data_stops_before_training(photos, tmp_path, capsys):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(photos, data)
    (data / "broken.png").write_bytes(b"not an image")
    cfg = _cfg("deblur", tmp_path / "run", data, iters=1)
    path = tmp_path / "cfg.json"
    path.write_text(cfg.to_json())
    assert _cli("train", "deblur", "--config", str(path), "--no-progress") == 2
    assert f"{data / 'broken.png'}: not a readable image" in capsys.readouterr().err
    assert not (tmp_path / "run" / "last.pt").exists()
    whole = (data / "p0.png").read_bytes()
    (data / "broken.png").write_bytes(whole[: len(whole) // 2])  # a PNG cut short: its header is fine
    assert _cli("train", "deblur", "--config", str(path), "--no-progress") == 2
    assert f"{data / 'broken.png'}: not a readable image" in capsys.readouterr().err
    # a decompression bomb: a 60000 x 60000 header (Pillow's error is no OSError: it was a traceback)
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))
    (data / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk)
    assert _cli("train", "deblur", "--config", str(path), "--no-progress") == 2
    err = capsys.readouterr().err
    assert f"{data / 'broken.png'}: not a readable image" in err and "Traceback" not in err


def test_bie_without_a_stage_1_decoder_is_refused(photos, tmp_path):
    with pytest.raises(ValueError, match="give --autoencoder RUN"):
        train(_cfg("bie", tmp_path / "bie", photos, iters=1), log=print)
    dm = _cfg("deblur", tmp_path / "dm", photos, iters=1, val_every=1)
    train(dm, progress=False, log=lambda m: None)
    with pytest.raises(ValueError, match="holds no stage-1 decoder"):
        train(_cfg("bie", tmp_path / "bie", photos, iters=1, autoencoder=str(tmp_path / "dm")), log=print)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_train_on_cuda_without_a_gpu_is_one_line(photos, tmp_path, capsys):
    path = tmp_path / "cfg.json"
    path.write_text(_cfg("deblur", tmp_path / "run", photos, iters=1).to_json())
    assert _cli("train", "deblur", "--config", str(path), "--device", "cuda", "--no-progress") == 2
    assert "no CUDA GPU is available" in capsys.readouterr().err


def test_a_stopped_run_saves_and_exits_128_plus_the_signal(photos, tmp_path, monkeypatch):
    """Ctrl-C / SIGTERM: the checkpoint is saved and the exit code says the run did not finish, so
    `blurvid train ... && blurvid train export ...` does not export a half-trained run."""
    import signal

    from blurvid.train import loop

    def stopped_at_once(self):
        self.requested, self.signum = True, int(signal.SIGTERM)

    monkeypatch.setattr(loop._Stop, "__init__", stopped_at_once)
    path = tmp_path / "cfg.json"
    path.write_text(_cfg("deblur", tmp_path / "run", photos, iters=50).to_json())
    assert _cli("train", "deblur", "--config", str(path), "--no-progress") == 128 + signal.SIGTERM
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["iteration"] == 1


def test_a_closed_terminal_saves_the_run_like_ctrl_c_unless_nohup_ignores_it(photos, tmp_path, monkeypatch):
    """SIGHUP (a closed terminal, a dropped ssh session) stopped a run without saving what it had done since
    its last periodic checkpoint; under nohup (SIGHUP ignored) the run must go on."""
    import signal

    from blurvid.train import loop

    installed: list[int] = []
    real_signal = signal.signal

    def recording(signum, handler):
        if isinstance(handler, loop._Stop):
            installed.append(signum)
        return real_signal(signum, handler)

    def hung_up(self):
        self.requested, self.signum = True, int(signal.SIGHUP)

    monkeypatch.setattr(signal, "signal", recording)
    monkeypatch.setattr(loop._Stop, "__init__", hung_up)
    path = tmp_path / "cfg.json"
    path.write_text(_cfg("deblur", tmp_path / "run", photos, iters=50).to_json())
    assert _cli("train", "deblur", "--config", str(path), "--no-progress") == 128 + signal.SIGHUP
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["iteration"] == 1
    assert signal.SIGHUP in installed and signal.SIGTERM in installed
    previous = real_signal(signal.SIGHUP, signal.SIG_IGN)  # as nohup starts it
    try:
        installed.clear()
        (tmp_path / "run").rename(tmp_path / "run1")
        assert _cli("train", "deblur", "--config", str(path), "--no-progress") == 128 + signal.SIGHUP
        assert signal.SIGHUP not in installed and signal.SIGHUP not in catchable_stop_signals()
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        real_signal(signal.SIGHUP, previous)


def test_stop_signals_are_taken_over_in_the_main_thread_only():
    """Python lets only the main thread set signal handlers: train() run in a worker thread of the
    caller's must not try (signal.signal raises ValueError there)."""
    import signal
    import threading

    assert {signal.SIGINT, signal.SIGTERM} <= set(catchable_stop_signals())
    seen: list[list[int]] = []
    worker = threading.Thread(target=lambda: seen.append(catchable_stop_signals()))
    worker.start()
    worker.join()
    assert seen == [[]]


def test_resuming_with_another_network_is_one_line(photos, tmp_path, capsys):
    cfg = _cfg("deblur", tmp_path / "run", photos, iters=1)
    train(cfg, progress=False, log=lambda m: None)
    path = tmp_path / "wider.json"
    path.write_text(json.dumps({"model": {**TINY_DM, "widths": [w + 4 for w in TINY_DM["widths"]]}}))
    capsys.readouterr()
    code = _cli(
        "train", "deblur", "--resume", "-o", str(tmp_path / "run"), "--iters", "2", "--config", str(path)
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "Traceback" not in err[0], err
    assert "model widths (8, 8, 12, 16) -> (12, 12, 16, 20): a resumed run keeps the network" in err[0]


def test_clips_with_photos_are_drawn_half_the_time_by_default(photos, clip, tmp_path, capsys):
    doc = _cfg("deblur", tmp_path / "run", photos, iters=1, synth={**SYNTH, "frames": 5}).to_dict()
    del doc["clip_p"]  # not set: --clips with --data must not be ignored
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(doc))
    assert _cli("train", "deblur", "--config", str(path), "--clips", str(clip), "--no-progress") == 0
    assert "half of the samples come from the clips" in capsys.readouterr().err
    assert json.loads((tmp_path / "run" / "config.json").read_text())["clip_p"] == 0.5


def test_eval_video_with_too_short_clips_is_one_line(clip, capsys):
    assert _cli("eval", "video", "--clips", str(clip), "--frames", "9", "--device", "cpu") == 2
    assert "no clip with >= 9 frames" in capsys.readouterr().err


def test_eval_video_of_a_run_without_a_video_model_is_one_line(photos, tmp_path, capsys):
    """It used to score the installed BIE/RVD silently under the run's name."""
    train(_cfg("deblur", tmp_path / "dm", photos, iters=1, val_every=1), progress=False, log=lambda m: None)
    assert _cli("eval", "video", "--run", str(tmp_path / "dm"), "--synth", str(photos), "--count", "1") == 2
    assert "holds no video model (BIE + RVD)" in capsys.readouterr().err


def test_resuming_a_finished_run_says_there_is_nothing_to_train(photos, tmp_path):
    cfg = _cfg("deblur", tmp_path / "run", photos, iters=2)
    train(cfg, progress=False, log=lambda m: None)
    logs: list[str] = []
    train(cfg, resume=True, progress=False, log=logs.append)
    assert any("already at iteration 2 of 2: nothing to train" in m for m in logs), logs


def test_bie_stage_can_read_the_dm_output_as_animate_gives_it(photos, tmp_path):
    """centre_dm: the BIE's sharp input is that DM's output on the blurred photo (as at inference); the
    decoder still warps the true centre. A file that is no DM stops the run before it starts."""
    from blurvid import weights
    from blurvid.models import DeblurNet, DMConfig
    from blurvid.pipeline import Deblurrer
    from blurvid.train.video_tasks import BIETask

    ae = _cfg("autoencoder", tmp_path / "ae", photos, iters=1)
    train(ae, progress=False, log=lambda m: None)
    torch.manual_seed(4)
    dm = DeblurNet(DMConfig.from_dict(TINY_DM))
    with torch.no_grad():
        dm.tail[-1].weight.normal_(0, 0.05)  # a visible residual: the output differs from the input
    weights.save_checkpoint(
        tmp_path / "dm.safetensors", dm.state_dict(), arch="dm", config=dm.config.to_dict()
    )
    cfg = _cfg("bie", tmp_path / "bie", photos, iters=2, autoencoder=str(tmp_path / "ae"), val_every=2)
    cfg.centre_dm = str(tmp_path / "dm.safetensors")
    task = BIETask(cfg)
    blurred, target = torch.rand(2, 3, 32, 48), torch.rand(2, 3, 32, 48)
    batch = task.inputs({"blurred": blurred, "target": target, "frames": torch.rand(2, 5, 3, 32, 48)})
    expected = Deblurrer(dm, torch.device("cpu"), torch.float32).tensor(blurred[1:])
    assert torch.allclose(batch["sharp_in"][1:], expected, atol=0.02)  # the run's (auto) precision
    assert not torch.allclose(batch["sharp_in"], blurred, atol=1e-3)
    assert batch["target"] is target and not batch["sharp_in"].is_inference()
    train(cfg, progress=False, log=lambda m: None)  # trains and validates with it
    assert (tmp_path / "bie" / "best.safetensors").is_file()
    # centre_dm_p: that share of training samples reads the DM's output, the rest the true centre;
    # validation items always read the DM's output
    cfg.centre_dm_p = 0.5
    torch.manual_seed(0)
    many = torch.rand(64, 3, 32, 48)
    picks = BIETask(cfg).inputs({"blurred": many, "target": many * 0, "frames": batch["frames"]})["sharp_in"]
    share = float((picks.flatten(1).abs().sum(1) > 0).float().mean())
    assert 0.3 < share < 0.7, share
    val = BIETask(cfg).inputs(
        {"blurred": many, "target": many * 0, "frames": batch["frames"]}, training=False
    )
    assert bool((val["sharp_in"].flatten(1).abs().sum(1) > 0).all())
    cfg.centre_dm = str(tmp_path / "ae" / "best.safetensors")
    with pytest.raises(ValueError, match="not a DM"):
        BIETask(cfg)


def test_the_bie_reads_the_sharp_input_it_is_given_and_the_rvd_warps_the_true_centre():
    """Else a centre_dm run would train its BIE on the true centre all the same (the DM's output made in
    every step, then left unread), unlike at inference, where it only has the DM's output."""
    from blurvid.models.encoders import VideoConfig
    from blurvid.train.video_tasks import BIENet

    net = BIENet(VideoConfig.from_dict({**TINY_V, "frames": 3})).eval()
    bie_sharp, rvd_image = [], []  # the BIE's sharp input, the image the RVD warps
    net.bie.register_forward_hook(lambda m, args, out: bie_sharp.append(args[1]))
    net.rvd.register_forward_hook(lambda m, args, out: rvd_image.append(args[1]))
    blurred, target, other = (torch.rand(1, 3, 16, 24) for _ in range(3))
    batch = {"blurred": blurred, "target": target, "frames": torch.rand(1, 3, 3, 16, 24)}
    with torch.no_grad():
        out = net({**batch, "sharp_in": other})
        net(batch)
    assert out.frames[-1].shape == (1, 3, 3, 16, 24)
    assert [x is other for x in bie_sharp] == [True, False] and bie_sharp[1] is target
    assert len(rvd_image) == 2 and all(x is target for x in rvd_image)


def test_centre_dm_p_is_the_share_of_training_samples_that_read_the_dms_output(tmp_path):
    """Else a share of 0.2 would give the DM's output to 80 % of the samples (a half hid it)."""
    from blurvid import weights
    from blurvid.models import DeblurNet, DMConfig
    from blurvid.train.video_tasks import BIETask

    dm = DeblurNet(DMConfig.from_dict(TINY_DM))
    weights.save_checkpoint(
        tmp_path / "dm.safetensors", dm.state_dict(), arch="dm", config=dm.config.to_dict()
    )
    cfg = _cfg("bie", tmp_path / "bie", tmp_path, centre_dm=str(tmp_path / "dm.safetensors"), centre_dm_p=0.2)
    task = BIETask(cfg, video_config={**TINY_V, "frames": 3})
    torch.manual_seed(0)
    many = 0.1 + 0.8 * torch.rand(200, 3, 8, 8)
    picks = task.inputs({"blurred": many, "target": many * 0, "frames": None})["sharp_in"]
    share = float((picks.flatten(1).abs().sum(1) > 0).float().mean())
    assert 0.1 < share < 0.3, share


def test_a_stage1_rvd_trains_at_lr_unless_it_starts_from_init_weights():
    """Else lr_rvd (meant for a trained RVD) would slow a from-scratch RVD down 5x, and a trained one
    would be trained at the encoder's full rate."""
    from blurvid.train.video_tasks import AutoencoderTask

    for init, rvd_lr in ((None, 1e-3), ("ae.safetensors", 2e-5)):
        cfg = TrainConfig.for_stage("autoencoder", model=TINY_V, lr=1e-3, lr_rvd=2e-5, init=init)
        task = AutoencoderTask(cfg)
        assert [g["lr"] for g in task.param_groups(task.net)] == [1e-3, rvd_lr]


def test_split_run_reads_a_single_network_file_of_any_arch(tmp_path):
    """An exported stage-1 encoder (arch 'rve', unprefixed keys) is one network, not a dict of configs."""
    from blurvid import weights
    from blurvid.models import RecurrentVideoEncoder
    from blurvid.models.encoders import VideoConfig
    from blurvid.train.export import split_run

    vcfg = VideoConfig.from_dict(TINY_V)
    rve = RecurrentVideoEncoder(vcfg)
    weights.save_checkpoint(tmp_path / "rve.safetensors", rve.state_dict(), arch="rve", config=vcfg.to_dict())
    parts = split_run(tmp_path / "rve.safetensors")
    assert list(parts) == ["rve"] and VideoConfig.from_dict(parts["rve"][1]) == vcfg
    assert parts["rve"][0].keys() == rve.state_dict().keys()


def test_video_exports_record_the_frame_count_they_were_trained_with(photos, tmp_path):
    from blurvid import weights
    from blurvid.train.export import export

    ae = _cfg("autoencoder", tmp_path / "ae", photos, iters=1, synth={**SYNTH, "frames": 5})
    train(ae, progress=False, log=lambda m: None)
    bie = _cfg(
        "bie",
        tmp_path / "bie",
        photos,
        iters=1,
        autoencoder=str(tmp_path / "ae"),
        synth={**SYNTH, "frames": 5},
    )
    train(bie, progress=False, log=lambda m: None)
    specs = export(tmp_path / "bie", tmp_path / "w", name="t", registry=tmp_path / "w" / "registry.json")
    for spec, _ in specs:
        _, meta = weights.load_checkpoint(tmp_path / "w" / spec.file)
        assert meta["config"]["frames"] == 5, spec.arch


def test_an_fp16_run_keeps_its_loss_scale_across_a_resume(photos, tmp_path, monkeypatch):
    """fp16 training scales its loss (GradScaler); the scale it reached is checkpointed and restored, not
    reset to 65536 on every resume. (fp16 itself needs a GPU: here the scaler is switched on over fp32.)"""
    from blurvid.train import loop

    monkeypatch.setattr(loop, "training_dtype", lambda precision, dev: torch.float16)
    cfg = _cfg("deblur", tmp_path / "run", photos, iters=2)
    train(cfg, progress=False, log=lambda m: None)
    saved = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["grad_scaler"]
    assert saved["scale"] > 0 and set(saved) >= {"scale", "_growth_tracker"}
    restored = []
    real = torch.amp.GradScaler.load_state_dict
    monkeypatch.setattr(
        torch.amp.GradScaler, "load_state_dict", lambda self, sd: restored.append(sd) or real(self, sd)
    )
    cfg.iters = 3
    train(cfg, resume=True, progress=False, log=lambda m: None)
    assert restored == [saved]


def test_without_validation_best_is_the_latest_weights_after_a_resume(photos, tmp_path):
    """Without --val, best.safetensors kept the first invocation's weights: a resumed run exported them."""
    from blurvid import weights

    cfg = _cfg("deblur", tmp_path / "r", photos, iters=2, val=[], ema=0.0)
    train(cfg, progress=False, log=lambda m: None)
    cfg.iters = 4
    train(cfg, resume=True, progress=False, log=lambda m: None)
    best, meta = weights.load_checkpoint(tmp_path / "r" / "best.safetensors")
    last = torch.load(tmp_path / "r" / "last.pt", weights_only=True)
    assert last["iteration"] == 4 and meta["train"]["iteration"] == 4
    for k, v in last["model"].items():
        assert torch.equal(v.float(), best[f"dm.{k}"] if f"dm.{k}" in best else best[k]), k


def test_order_invariant_flow_supervision_takes_one_order_per_video():
    """The better order was taken per frame: a video that was neither order (-8, +4, 0, -4, +8 px
    against -8, -4, 0, 4, 8) scored 0."""
    from blurvid.models.decoder import DecodeResult
    from blurvid.train.video_tasks import BIETask, flows_at_scale

    task = object.__new__(BIETask)
    task.cfg = TrainConfig(
        stage="bie", flow_sup=1.0, mu_tv=0.0, lambdas=(0.0,) * 4, synth={"size": 32, "frames": 5}, val_size=32
    )
    assert task.invariant
    truth = torch.zeros(1, 5, 2, 32, 32)
    for n, v in enumerate((-8.0, -4.0, 0.0, 4.0, 8.0)):
        truth[:, n, 0] = v

    def sup(pred: torch.Tensor) -> float:
        out = DecodeResult(
            flows=[flows_at_scale(pred, s) for s in (8, 4, 2, 1)],
            frames=[torch.zeros(1, 5, 3, 32 // s, 32 // s) for s in (8, 4, 2, 1)],
        )
        batch = {"frames": torch.zeros(1, 5, 3, 32, 32), "flows": truth, "has_flow": torch.tensor([True])}
        return task.loss(out, batch, 0)[1]["flow_sup"]

    scrambled = truth.clone()
    scrambled[:, 1, 0], scrambled[:, 3, 0] = 4.0, -4.0
    assert sup(truth) == 0.0 and sup(truth.flip(1)) == 0.0
    assert sup(scrambled) > 1.0


def test_clips_that_would_never_be_drawn_are_warned_about(photos, clip, tmp_path):
    """The CLI sets clip_p 0.5 when clips come beside photos; from Python clip_p stayed 0 in silence."""
    from blurvid.train.loop import build_dataset, synth_config

    five = {**SYNTH, "frames": 5}
    cfg = _cfg("deblur", tmp_path, photos, clips=[str(clip)], synth=five)
    with pytest.warns(UserWarning, match="the clips are never drawn: clip_p is 0"):
        build_dataset(cfg, synth_config(cfg))
    cfg = _cfg("deblur", tmp_path, photos, clips=[str(clip)], clip_p=0.5, synth=five)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_dataset(cfg, synth_config(cfg))


def test_training_runs_in_another_thread(photos, tmp_path):
    """train() set signal handlers from any thread: in a notebook's or a service's worker thread it
    raised ValueError (after writing config.json and opening metrics.jsonl)."""
    import threading

    outcome: dict = {}

    def work() -> None:
        try:
            outcome["logs"] = train(_cfg("deblur", tmp_path / "run", photos, iters=2))
        except BaseException as e:  # reported to the test's thread
            outcome["error"] = e

    t = threading.Thread(target=work)
    t.start()
    t.join(timeout=300)
    assert "error" not in outcome, outcome.get("error")
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["iteration"] == 2


def test_the_fp16_check_refuses_an_architecture_it_does_not_know():
    """It returned 0.0 for an unknown network, which reads as "fp16 is lossless"."""
    from blurvid.models import RecurrentVideoEncoder, VideoConfig
    from blurvid.train import export

    rve = RecurrentVideoEncoder(VideoConfig(**TINY_V))  # loadable for evaluation, never shipped
    with pytest.raises(ValueError, match="no fp16 check for a 'rve' network"):
        export._max_output_diff("rve", rve.state_dict(), TINY_V)
    with pytest.raises(ValueError, match=r"unknown network 'new' \(known: dm, bie, rve, rvd\)"):
        export._max_output_diff("new", {}, {})  # was a KeyError, where the docstrings say ValueError


def test_a_resume_refuses_new_weights_and_names_what_it_changes(photos, tmp_path, capsys, monkeypatch):
    import shutil

    work = tmp_path / "work"
    shutil.copytree(photos, work / "photos")
    monkeypatch.chdir(work)
    small = ("--crop", "64", "--workers", "0", "--no-progress")
    assert _cli("train", "deblur", "-d", "photos", "-o", "r", "--iters", "2", "--batch", "2", *small) == 0
    # the run reads its data wherever it is resumed from (a relative path failed in another folder)
    assert json.loads((work / "r" / "config.json").read_text())["data"] == [str(work / "photos")]
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert (
        _cli("train", "deblur", "--resume", "-o", str(work / "r"), "--iters", "3", "--batch", "3", *small)
        == 0
    )
    err = capsys.readouterr().err
    assert "changed settings, from here on: batch 2 -> 3" in err and "iters" not in err.split("here on:")[1]
    # --init was recorded and changed the learning rates, but no weights were loaded
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"x")
    assert _cli("train", "deblur", "--resume", "-o", str(work / "r"), "--init", str(weights), *small) == 2
    assert "--init: a resumed run continues from its checkpoint's weights" in capsys.readouterr().err


def test_a_video_resume_keeps_its_frames_and_says_when_its_budget_applies_again(photos, tmp_path, capsys):
    run = str(tmp_path / "ae")
    small = ("--crop", "32", "--batch", "2", "--workers", "0", "--no-progress")
    assert (
        _cli("train", "autoencoder", "-d", str(photos), "-o", run, "--iters", "1", "--frames", "3", *small)
        == 0
    )
    assert _cli("train", "autoencoder", "--resume", "-o", run, "--iters", "2", "--frames", "4", *small) == 2
    assert "--frames 4: this run's networks were trained on 3 frames" in capsys.readouterr().err
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"minutes": 5}))
    assert (
        _cli("train", "autoencoder", "--resume", "-o", run, "--config", str(path), "--iters", "2", *small)
        == 0
    )
    capsys.readouterr()
    assert _cli("train", "autoencoder", "--resume", "-o", run, "--iters", "3", *small) == 0
    assert "the run's budget of 5 min applies again" in capsys.readouterr().err


def test_a_run_that_cannot_start_leaves_no_empty_run_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "runs" / "r"
    assert _cli("train", "deblur", "-d", str(tmp_path / "empty"), "-o", str(out), "--no-progress") == 2
    assert "no images found" in capsys.readouterr().err
    assert not out.exists()  # it was left behind, empty
    assert not (tmp_path / "runs").exists()  # and the parent folder made for it


def test_options_that_do_nothing_in_a_stage_are_said_to(photos, tmp_path, capsys):
    argv = ("train", "deblur", "-d", str(photos), "-o", str(tmp_path / "r"), "--iters", "1", "--crop", "64")
    assert _cli(*argv, "--batch", "2", "--flow-sup", "0.5", "--clip-p", "0.3", "--no-progress") == 0
    err = capsys.readouterr().err
    assert "--flow-sup does nothing here (deblur run)" in err
    assert "--clip-p does nothing here (deblur run without --clips)" in err


def test_an_older_run_resumed_with_its_config_keeps_its_paths_and_best_score(
    photos, tmp_path, capsys, monkeypatch
):
    """Runs made before input paths were stored absolute: the same config's paths, made absolute, read
    the same files, so the validation set did not change (its best score was reset)."""
    import shutil

    work = tmp_path / "work"
    shutil.copytree(photos, work / "photos")
    monkeypatch.chdir(work)
    cfg = _cfg("deblur", "r", "photos", iters=1)  # relative paths, as older runs stored them
    path = work / "cfg.json"
    path.write_text(cfg.to_json())
    train(cfg, progress=False, log=lambda m: None)
    capsys.readouterr()
    path.write_text(json.dumps({**json.loads(cfg.to_json()), "iters": 2}))
    assert _cli("train", "deblur", "--config", str(path), "--resume", "--no-progress") == 0
    err = capsys.readouterr().err
    assert "validation set changed" not in err and "changed settings" not in err
    assert json.loads((work / "r" / "config.json").read_text())["data"] == ["photos"]


def test_a_video_resume_takes_the_default_frames_given_again(photos, tmp_path):
    run = str(tmp_path / "ae")
    small = ("--crop", "32", "--batch", "2", "--workers", "0", "--no-progress")
    assert _cli("train", "autoencoder", "-d", str(photos), "-o", run, "--iters", "1", *small) == 0
    assert _cli("train", "autoencoder", "--resume", "-o", run, "--iters", "2", "--frames", "9", *small) == 0


def test_the_validation_fingerprint_reads_as_runs_before_exposure_length_stored_it():
    """Every run made before SynthConfig.exposure_length lost its best score on resume: its stored
    fingerprint lacks the key, though its validation samples are the same."""
    from blurvid.train.loop import _val_fingerprint, synth_config, validation_config

    cfg = TrainConfig(val=["v"], val_count=3)
    scfg = synth_config(cfg)
    before = validation_config(cfg, scfg).to_dict()
    del before["exposure_length"]
    want = json.dumps({"val": ["v"], "count": 3, "seed": cfg.val_seed, "synth": before}, sort_keys=True)
    assert _val_fingerprint(cfg, scfg) == want


def test_a_stage1_init_without_an_rvd_warns_that_lr_rvd_applies(photos, tmp_path):
    """lr_rvd (2e-5, meant for a trained RVD) applies whenever init is set: an init of the RVE alone
    left a from-scratch RVD learning 5x slower without a word."""
    from blurvid import weights

    ae = _cfg("autoencoder", tmp_path / "ae", photos, iters=1)
    train(ae, progress=False, log=lambda m: None)
    state, meta = weights.load_checkpoint(tmp_path / "ae" / "best.safetensors")
    rve_only = {k: v for k, v in state.items() if k.startswith("rve.")}
    assert rve_only and len(rve_only) < len(state)
    weights.save_checkpoint(tmp_path / "rve.safetensors", rve_only, arch="rve", config=meta["config"])
    for init, warned in ((tmp_path / "rve.safetensors", True), (tmp_path / "ae" / "best.safetensors", False)):
        logs: list[str] = []
        cfg = _cfg("autoencoder", tmp_path / f"run-{init.stem}", photos, iters=1, init=str(init))
        train(cfg, progress=False, log=logs.append)
        assert any("initialised" in m for m in logs)
        assert any("init holds no RVD tensors, so the RVD trains from scratch" in m for m in logs) is warned


def test_the_video_loss_weighs_each_scale_and_adds_mu_tv_times_the_flows_tv(tmp_path):
    """Eq. 4-5: sum over scales of lambda_j (L_j + mu TV(flows_j)), each L_j a sum over frames and over
    pixels (a mean times the scale's share of the pixels, x64): the default lambdas weigh the four
    scales alike. Nothing else checked the TV term or the weights."""
    from blurvid.models.decoder import DecodeResult
    from blurvid.train.losses import tv
    from blurvid.train.video_tasks import AutoencoderTask, _targets

    g = torch.Generator().manual_seed(0)
    frames = 0.2 + 0.6 * torch.rand(2, 3, 3, 32, 32, generator=g)
    targets = _targets(frames)
    flows = [torch.randn(2, 3, 2, 32 // s, 32 // s, generator=g) for s in (8, 4, 2, 1)]
    out = DecodeResult(flows=flows, frames=[t + 0.1 for t in targets])
    totals = {}
    for mu in (0.0, 0.1):
        cfg = _cfg(
            "autoencoder", tmp_path / "ae", tmp_path, mu_tv=mu, flow_sup=0.0, probe=0.0, coarse_warmup=0
        )
        assert list(cfg.lambdas) == [0.32, 0.08, 0.02, 0.005]
        total, logs = AutoencoderTask(cfg).loss(out, {"frames": frames}, it=0)
        assert all(math.isclose(logs[f"L{j}"], 0.3, rel_tol=1e-5) for j in range(4))  # 3 frames x 0.1
        totals[mu] = float(total)
    assert math.isclose(totals[0.0], 4 * 0.32 * 0.3, rel_tol=1e-5)
    smooth = sum(0.32 * sum(float(tv(f[:, n])) for n in range(3)) for f in flows)
    assert smooth > 1 and math.isclose(totals[0.1] - totals[0.0], 0.1 * smooth, rel_tol=1e-4)


def test_the_warm_up_rises_linearly_to_the_learning_rate():
    """The first step of a warm-up of 4 trains at a quarter of the rate (not at 0), the fourth at all
    of it; the cosine then starts from there."""
    from blurvid.train.loop import _lr_lambda

    constant = _lr_lambda(TrainConfig.for_stage("deblur", warmup=4, schedule="constant"))
    assert [constant(s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    cosine = _lr_lambda(
        TrainConfig.for_stage("deblur", warmup=4, schedule="cosine", iters=100, min_lr_ratio=0.0)
    )
    assert math.isclose(cosine(0), 0.25) and math.isclose(cosine(50), 0.5) and cosine(100) < 1e-12


def test_a_bie_run_resumed_trains_as_one_without_a_stop(photos, tmp_path):
    """Stage 2 draws from torch's global generator (which samples give the BIE the DM's output,
    centre_dm_p): a resume must restore it, or the continued run trains on other draws."""
    from blurvid import weights
    from blurvid.models.deblur import DeblurNet, DMConfig

    train(_cfg("autoencoder", tmp_path / "ae", photos, iters=1), progress=False, log=lambda m: None)
    torch.manual_seed(4)
    dm = DeblurNet(DMConfig.from_dict(TINY_DM))
    weights.save_checkpoint(
        tmp_path / "dm.safetensors", dm.state_dict(), arch="dm", config=dm.config.to_dict()
    )

    def bie(out: str, iters: int) -> TrainConfig:
        return _cfg(
            "bie", tmp_path / out, photos, iters=iters, autoencoder=str(tmp_path / "ae"),
            centre_dm=str(tmp_path / "dm.safetensors"), centre_dm_p=0.5, batch=4,
        )  # fmt: skip

    train(bie("a", 4), progress=False, log=lambda m: None)
    b = bie("b", 2)
    train(b, progress=False, log=lambda m: None)
    b.iters = 4
    train(b, resume=True, progress=False, log=lambda m: None)
    sa, sb = (torch.load(tmp_path / r / "last.pt", weights_only=True) for r in ("a", "b"))
    assert sa["iteration"] == sb["iteration"] == 4
    for k, v in sa["model"].items():
        assert torch.equal(v, sb["model"][k]), k
    assert _losses(tmp_path / "a") == _losses(tmp_path / "b")


def test_export_keeps_its_options_and_names_the_last_weights_when_best_is_missing(photos, tmp_path):
    """default=False registers without taking the default; a tolerance of 0 keeps fp32; a run folder
    with only last.pt is an error that names it (not a silent export of other weights)."""
    from blurvid import weights
    from blurvid.train.export import export

    train(_cfg("deblur", tmp_path / "r", photos, iters=1), progress=False, log=lambda m: None)
    reg = tmp_path / "w" / "registry.json"
    specs = export(tmp_path / "r", tmp_path / "w", name="t", registry=reg, default=False, tolerance=0.0)
    entries = json.loads(reg.read_text())
    rows = entries if isinstance(entries, list) else entries.get("checkpoints", entries)
    text = json.dumps(rows)
    assert '"default": false' in text and '"default": true' not in text
    state, _ = weights.load_checkpoint(tmp_path / "w" / "dm-t.safetensors")
    assert all(v.dtype == torch.float32 for v in state.values()) and len(specs) == 1
    (tmp_path / "r" / "best.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"export its last weights: .*last\.pt"):
        export(tmp_path / "r", tmp_path / "w2", name="t", registry=tmp_path / "w2" / "registry.json")


def _step_clock(monkeypatch, seconds_per_step=60.0):
    """``time.time()`` stands still except that each optimizer step moves it ``seconds_per_step`` on;
    returns the list of the iterations whose ``last.pt`` was written (read back from the file)."""
    from blurvid.train import loop

    now = [1000.0]
    step, save = loop._Run.optimizer_step, loop._Run.save
    saved: list[int] = []

    def stepped(self, scaler):  # type: ignore[no-untyped-def]
        step(self, scaler)
        now[0] += seconds_per_step

    def saving(self, it):  # type: ignore[no-untyped-def]
        save(self, it)
        saved.append(int(torch.load(self.out / "last.pt", weights_only=True)["iteration"]))

    monkeypatch.setattr(loop.time, "time", lambda: now[0])
    monkeypatch.setattr(loop._Run, "optimizer_step", stepped)
    monkeypatch.setattr(loop._Run, "save", saving)
    return saved


def test_best_is_kept_at_the_best_validation_score(photos, tmp_path, monkeypatch):
    """A later, worse (or only equal) validation leaves best.safetensors at the best one's weights."""
    from blurvid import weights
    from blurvid.train import loop, tasks

    scores = iter([1.0, 3.0, 2.0, 3.0, 2.5])
    seen: list[dict] = []

    def scripted(self, net, items, device, autocast):  # type: ignore[no-untyped-def]
        seen.append({k: v.detach().clone() for k, v in net.state_dict().items()})
        return {"val_psnr": next(scores)}

    monkeypatch.setattr(tasks.DeblurTask, "validate", scripted)
    monkeypatch.setattr(loop, "validation_set", lambda cfg, scfg: [{}])  # scored by the script alone
    cfg = _cfg("deblur", tmp_path / "r", photos, iters=5, val_every=1, lr=1e-2)
    train(cfg, progress=False, log=lambda m: None)
    assert len(seen) == 5  # one validation per iteration, none added at the end
    best, meta = weights.load_checkpoint(tmp_path / "r" / "best.safetensors")
    assert meta["train"] == {"iteration": 2, "val_psnr": 3.0}
    for k, v in seen[1].items():  # the weights validated after iteration 2
        assert torch.equal(best[k], v.float()), k
    assert not torch.equal(best["dm.head.weight"], seen[-1]["dm.head.weight"])  # the weights did move
    last = torch.load(tmp_path / "r" / "last.pt", weights_only=True)
    assert last["iteration"] == 5 and last["best"] == 3.0


def test_a_checkpoint_is_written_each_time_ckpt_minutes_elapse(photos, tmp_path, monkeypatch):
    """60 s a step, ckpt_minutes 2.01 (120.6 s, just more than 2 steps): last.pt after iterations 3 and 6,
    then at the end."""
    saved = _step_clock(monkeypatch)
    cfg = _cfg("deblur", tmp_path / "r", photos, iters=7, val=[], ckpt_minutes=2.01)
    train(cfg, progress=False, log=lambda m: None)
    assert saved == [3, 6, 7]


@pytest.mark.parametrize("minutes", [2.01, 3.0])
def test_the_time_budget_stops_at_the_first_step_that_reaches_it(photos, tmp_path, monkeypatch, minutes):
    """60 s a step: 2.01 minutes (just missed after iteration 2) and 3 (reached exactly) both stop after
    iteration 3, with its checkpoint."""
    saved = _step_clock(monkeypatch)
    logs: list[str] = []
    cfg = _cfg("deblur", tmp_path / "r", photos, iters=20, val=[], minutes=minutes)
    train(cfg, progress=False, log=logs.append)
    assert saved == [3]
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [r["it"] for r in rows] == [1, 2, 3]
    assert any("min reached at iteration 3;" in m for m in logs)


def test_without_validation_a_budget_stop_refreshes_best(photos, tmp_path, monkeypatch):
    """No validation set: a run resumed at 2 and stopped by its time budget at 5 exports iteration 5."""
    from blurvid import weights

    _step_clock(monkeypatch)
    cfg = _cfg("deblur", tmp_path / "r", photos, iters=2, val=[], lr=1e-2)
    train(cfg, progress=False, log=lambda m: None)
    _, meta = weights.load_checkpoint(tmp_path / "r" / "best.safetensors")
    assert meta["train"]["iteration"] == 2
    cfg.iters, cfg.minutes = 20, 2.5
    train(cfg, resume=True, progress=False, log=lambda m: None)
    best, meta = weights.load_checkpoint(tmp_path / "r" / "best.safetensors")
    last = torch.load(tmp_path / "r" / "last.pt", weights_only=True)
    assert last["iteration"] == 5 and meta["train"]["iteration"] == 5
    for k, v in last["model"].items():
        assert torch.equal(best[k], v.float()), k


def test_two_processes_never_train_in_one_run_folder(photos, tmp_path, capsys):
    """A run holds its folder's lock while it trains (before its first checkpoint, too): a second new run
    or a second --resume there is refused with one line, and the lock goes when the run ends."""
    from blurvid import fsutil

    out = tmp_path / "run"
    out.mkdir()
    with fsutil.exclusive(out / ".lock"):  # what a live run in another process holds
        with pytest.raises(FileExistsError, match="another blurvid run is training in this folder now"):
            train(_cfg("deblur", out, photos, iters=1), progress=False, log=lambda m: None)
        assert _cli("train", "deblur", "-d", str(photos), "-o", str(out), "--iters", "1") == 2
        assert "another blurvid run is training in this folder now" in capsys.readouterr().err
        assert sorted(p.name for p in out.iterdir()) == [".lock"]  # nothing of the refused run's
    train(_cfg("deblur", out, photos, iters=1), progress=False, log=lambda m: None)
    assert (out / "last.pt").exists() and not (out / ".lock").exists()
    with fsutil.exclusive(out / ".lock"):
        with pytest.raises(FileExistsError, match="another blurvid run"):
            train(_cfg("deblur", out, photos, iters=2), resume=True, progress=False, log=lambda m: None)
    train(_cfg("deblur", out, photos, iters=2), resume=True, progress=False, log=lambda m: None)
    assert torch.load(out / "last.pt", weights_only=True)["iteration"] == 2


def test_metrics_log_holds_each_iteration_once_after_a_kill_and_a_resume(photos, tmp_path):
    out = tmp_path / "run"
    # a folder where a run died before its first checkpoint: a new run's log starts afresh
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"it": 7, "loss": 1.0}\n{"it": 8, "lo')
    train(_cfg("deblur", out, photos, iters=3), progress=False, log=lambda m: None)
    assert [
        r["it"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "loss" in r
    ] == [
        1,
        2,
        3,
    ]
    # killed (SIGKILL) after logging past its checkpoint at 3, the last line cut short
    with (out / "metrics.jsonl").open("a") as f:
        f.write('{"it": 4, "loss": 9.0}\n{"it": 5, "loss": 9.0}\n{"it": 6, "lo')
    train(_cfg("deblur", out, photos, iters=5), resume=True, progress=False, log=lambda m: None)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["it"] for r in rows if "loss" in r] == [1, 2, 3, 4, 5]
    assert 9.0 not in [r["loss"] for r in rows if "loss" in r]
    assert [r["it"] for r in rows if "loss" not in r] == [3, 5]  # each invocation's last validation


def test_resume_refuses_a_change_to_the_network_and_keeps_the_runs_own(photos, tmp_path, capsys):
    out = tmp_path / "run"
    train(_cfg("deblur", out, photos, iters=1), progress=False, log=lambda m: None)
    changed, same = tmp_path / "changed.json", tmp_path / "same.json"
    changed.write_text(json.dumps({"model": {**TINY_DM, "res_scale": 0.5}}))
    assert _cli("train", "deblur", "--resume", "-o", str(out), "--config", str(changed), "--iters", "2") == 2
    assert "model res_scale 0.2 -> 0.5: a resumed run keeps the network" in capsys.readouterr().err
    # the run's own settings restated (lists for tuples), or none at all: the run goes on as it was built
    same.write_text(json.dumps({"model": {"rdb_layers": 2}}))
    assert _cli("train", "deblur", "--resume", "-o", str(out), "--config", str(same), "--iters", "2") == 0
    same.write_text(json.dumps({"model": {}}))
    assert _cli("train", "deblur", "--resume", "-o", str(out), "--config", str(same), "--iters", "3") == 0
    stored = torch.load(out / "last.pt", weights_only=True)
    assert stored["iteration"] == 3 and stored["config"]["model"] == TINY_DM


def test_a_bie_run_builds_its_own_bie_widths_on_the_stage1_decoder(photos, tmp_path):
    from blurvid.train.video_tasks import BIETask

    train(_cfg("autoencoder", tmp_path / "ae", photos, iters=1), progress=False, log=lambda m: None)

    def stage2(**model: object) -> BIETask:
        ae = str(tmp_path / "ae")
        return BIETask(
            _cfg("bie", tmp_path / "bie", photos, iters=1, autoencoder=ae, model={**TINY_V, **model})
        )

    task = stage2(bie_widths=[4, 4, 4, 4, 4, 4])
    assert task.vcfg.bie_widths == (4, 4, 4, 4, 4, 4)
    convs = [p.shape[0] for p in task.net.bie.parameters() if p.ndim == 4]  # out channels, in order
    assert convs == [4, 4, 4, 4, 4, 4, 2 * TINY_V["hidden"]]
    assert task.vcfg.hidden == TINY_V["hidden"]
    with pytest.raises(ValueError, match=r"model hidden 16 \(stage 1: 8\).*stage-1 network"):
        stage2(hidden=16)


def test_export_checks_the_registry_and_the_run_before_it_writes_anything(photos, tmp_path, capsys):
    train(_cfg("deblur", tmp_path / "dm", photos, iters=1), progress=False, log=lambda m: None)
    w = tmp_path / "w"
    w.mkdir()
    (w / "registry.json").write_text("not json")
    assert _cli("train", "export", str(tmp_path / "dm"), "-o", str(w), "--name", "r") == 2
    assert "registry" in capsys.readouterr().err
    assert sorted(p.name for p in w.iterdir()) == ["registry.json"]
    (w / "registry.json").unlink()  # mended: the same command now works
    assert _cli("train", "export", str(tmp_path / "dm"), "-o", str(w), "--name", "r") == 0
    assert (w / "dm-r.safetensors").exists()
    # a run that holds no checkpoint, or none at all: one line, and no empty folder left behind
    (tmp_path / "empty").mkdir()
    assert _cli("train", "export", str(tmp_path / "empty"), "-o", str(tmp_path / "e1")) == 2
    assert "the run has saved no checkpoint yet" in capsys.readouterr().err
    assert _cli("train", "export", str(tmp_path / "nothere"), "-o", str(tmp_path / "e2")) == 2
    assert not (tmp_path / "e1").exists() and not (tmp_path / "e2").exists()
    (tmp_path / "afile").write_text("x")
    assert _cli("train", "export", str(tmp_path / "dm"), "-o", str(tmp_path / "afile"), "--name", "f") == 2
    assert "afile: is a file; -o names a folder" in capsys.readouterr().err


def test_training_logs_lines_when_its_output_is_not_a_terminal(photos, tmp_path, capsys):
    """With the output redirected (nohup, a log file) the bar would print nothing until the end."""
    out = tmp_path / "run"
    args = [
        "train",
        "deblur",
        "-d",
        str(photos),
        "-o",
        str(out),
        "--iters",
        "2",
        "--batch",
        "2",
        "--crop",
        "32",
    ]
    assert _cli(*args, "--workers", "0") == 0
    assert "it 2/2 loss" in capsys.readouterr().err
    assert _cli("train", "deblur", "-d", str(photos), "-o", str(tmp_path / "z"), "--iters", "0") == 0
    assert "nothing to train (iters 0)" in capsys.readouterr().err


def test_a_bie_resume_is_checked_against_the_network_it_built(photos, tmp_path, capsys):
    """A bie run's network is mostly its stage-1 run's: a resume restating it is accepted, another
    value refused, though the run's own config never named them; its model's frames follow the synthesis."""
    from blurvid.train.video_tasks import _bie_own

    train(_cfg("autoencoder", tmp_path / "ae", photos, iters=1), progress=False, log=lambda m: None)
    narrow = {"bie_widths": [4, 4, 4, 4, 4, 4]}
    bie = _cfg("bie", tmp_path / "bie", photos, iters=1, autoencoder=str(tmp_path / "ae"), model=narrow)
    train(bie, progress=False, log=lambda m: None)
    path = tmp_path / "c.json"
    resume = ["train", "bie", "--resume", "-o", str(tmp_path / "bie"), "--config", str(path), "--no-progress"]
    path.write_text(json.dumps({"model": {**narrow, "hidden": 8, "frames": 5}}))
    assert _cli(*resume, "--iters", "2") == 0
    path.write_text(json.dumps({"model": {**narrow, "hidden": 128}}))
    assert _cli(*resume, "--iters", "3") == 2
    assert "model hidden 8 -> 128: a resumed run keeps the network" in capsys.readouterr().err
    assert torch.load(tmp_path / "bie" / "last.pt", weights_only=True)["iteration"] == 2
    stage1 = {"frames": 9, "hidden": 8, "bie_widths": (4, 4, 8, 8, 8, 8)}
    assert _bie_own({"frames": 5, "hidden": 8}, stage1, tmp_path) == {}


def test_a_run_reads_its_folder_only_while_holding_its_lock(photos, tmp_path, monkeypatch):
    """Otherwise a run that ended between the look and the lock could be replaced, or resumed from an
    older checkpoint."""
    seen: list[bool] = []
    real = loop._open_run

    def spy(cfg, out, resume, log):  # type: ignore[no-untyped-def]
        seen.append((out / ".lock").exists())
        return real(cfg, out, resume, log)

    monkeypatch.setattr(loop, "_open_run", spy)
    out = tmp_path / "run"
    train(_cfg("deblur", out, photos, iters=1), progress=False, log=lambda m: None)
    train(_cfg("deblur", out, photos, iters=2), resume=True, progress=False, log=lambda m: None)
    assert seen == [True, True]
