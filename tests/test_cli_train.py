"""`blurvid train ...` option handling (:mod:`blurvid.cli_train`) with the training itself replaced: which
settings reach the run, what is refused and what is said, in milliseconds instead of training runs."""

from pathlib import Path

import pytest
import torch
from conftest import run_cli as _cli

from blurvid.train.config import TrainConfig


@pytest.fixture
def trained(monkeypatch):
    """Replaces :func:`blurvid.train.loop.train`: records each config the CLI would train, trains nothing."""
    from blurvid.train import loop

    seen: list[TrainConfig] = []

    def fake(cfg, **kw):  # type: ignore[no-untyped-def]
        seen.append(cfg)
        return {}

    monkeypatch.setattr(loop, "train", fake)
    return seen


def _folder(path: Path) -> str:
    path.mkdir()
    return str(path)


def _stored_run(folder: Path, **config: object) -> str:
    """A run folder whose last.pt holds ``config``: all that a resume reads before it trains."""
    folder.mkdir()
    torch.save({"config": config}, folder / "last.pt")
    return str(folder)


def test_clips_alone_are_training_data(tmp_path, trained, capsys):
    """Frame folders without photos are enough to train on (only neither is 'no training data')."""
    clips = _folder(tmp_path / "clip")
    assert _cli("train", "deblur", "--clips", clips, "-o", str(tmp_path / "r"), "--no-progress") == 0
    assert len(trained) == 1 and trained[0].clips == [clips] and not trained[0].data
    assert "no training data" not in capsys.readouterr().err


def test_a_clip_share_given_as_zero_is_kept(tmp_path, trained, capsys):
    """--clips with --data draws half from the clips unless a share is chosen: --clip-p 0 is a choice."""
    data, clips = _folder(tmp_path / "photos"), _folder(tmp_path / "clip")
    argv = ("train", "deblur", "-d", data, "--clips", clips, "-o", str(tmp_path / "r"), "--no-progress")
    assert _cli(*argv, "--clip-p", "0") == 0
    assert trained[-1].clip_p == 0 and "half of the samples" not in capsys.readouterr().err
    assert _cli(*argv) == 0
    assert trained[-1].clip_p == 0.5 and "half of the samples come from the clips" in capsys.readouterr().err


def test_a_bie_resume_keeps_its_frame_count_too(tmp_path, trained, capsys):
    """Both video stages' networks are built for the stored N: stage bie refused another --frames too."""
    run = _stored_run(tmp_path / "r", stage="bie", data=[str(tmp_path)], synth={"frames": 5})
    assert _cli("train", "bie", "--resume", "-o", run, "--frames", "7", "--no-progress") == 2
    assert "--frames 7: this run's networks were trained on 5 frames" in capsys.readouterr().err
    assert trained == []
    assert _cli("train", "bie", "--resume", "-o", run, "--frames", "5", "--no-progress") == 0


def test_the_stored_budget_is_announced_only_when_it_applies_again(tmp_path, trained, capsys):
    run = _stored_run(tmp_path / "r", stage="autoencoder", data=[str(tmp_path)], minutes=5.0)
    assert _cli("train", "autoencoder", "--resume", "-o", run, "--minutes", "2", "--no-progress") == 0
    assert "applies again" not in capsys.readouterr().err and trained[-1].minutes == 2
    assert _cli("train", "autoencoder", "--resume", "-o", run, "--no-progress") == 0
    assert "the run's budget of 5 min applies again" in capsys.readouterr().err and trained[-1].minutes == 5


def test_flow_supervision_is_not_called_useless_in_the_autoencoder_stage(tmp_path, trained, capsys):
    """--flow-sup does nothing only for deblur: stage 1 (autoencoder) trains with it too."""
    data = _folder(tmp_path / "photos")
    argv = (
        "train",
        "autoencoder",
        "-d",
        data,
        "-o",
        str(tmp_path / "r"),
        "--flow-sup",
        "0.5",
        "--no-progress",
    )
    assert _cli(*argv) == 0
    assert trained[-1].flow_sup == 0.5 and "does nothing" not in capsys.readouterr().err


def test_the_installed_centre_dm_stays_a_name_while_a_file_is_made_absolute(tmp_path, trained, monkeypatch):
    """Else centre_dm 'installed' (the registered DM) would become the path of a file named
    'installed' in the folder the run was started from, and the run would fail to load it."""
    import json

    monkeypatch.chdir(tmp_path)
    data = _folder(tmp_path / "photos")
    config = tmp_path / "bie.json"
    for given, used in (("installed", "installed"), ("dm.safetensors", str(tmp_path / "dm.safetensors"))):
        config.write_text(json.dumps({"stage": "bie", "centre_dm": given}))
        argv = ("train", "bie", "--config", str(config), "-d", data, "-o", str(tmp_path / "r"))
        assert _cli(*argv, "--no-progress") == 0
        assert trained[-1].centre_dm == used
