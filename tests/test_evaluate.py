"""Evaluation and dataset commands on hand-made cases."""

import json
import math
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from blurvid import evaluate as ev


def _pair(name, sharp, offset):
    return ev.Pair(name, (sharp + offset).clamp(0, 1), sharp)


def test_eval_deblur_hand_case():
    sharp = torch.full((3, 16, 16), 0.5)
    pairs = [_pair("a", sharp, 0.1), _pair("b", sharp, -0.1)]
    r = ev.eval_deblur(lambda x: x, pairs)
    assert r["count"] == 2
    assert math.isclose(r["mean"]["psnr"], 20.0, abs_tol=1e-3)  # identity: output = input
    perfect = ev.eval_deblur(lambda x: torch.full_like(x, 0.5), pairs)
    assert perfect["mean"]["psnr"] == 100.0 and perfect["mean"]["psnr_in"] < 21
    # the mean over pairs (20, 20 and 13.98 dB), not the middle one
    three = ev.eval_deblur(lambda x: x, [*pairs, _pair("c", sharp, 0.2)])
    assert math.isclose(three["mean"]["psnr"], (40 + 10 * math.log10(25)) / 3, abs_tol=1e-3)
    # what is scored is the output as written, clipped to [0, 1]: a white photo 0.3 too bright is white
    white = torch.ones(3, 5, 7)
    assert ev.eval_deblur(lambda x: x + 0.3, [ev.Pair("w", white, white)])["mean"]["psnr"] == 100.0


def test_eval_deblur_scores_grey_pairs_on_one_channel_and_colour_pairs_on_three():
    """Only pairs whose three channels are all equal count as grey (R == G with another B did too)."""
    sharp = torch.full((3, 8, 8), 0.5)
    grey = ev.eval_deblur(lambda x: x, [_pair("g", sharp, 0.1)])
    colour_sharp = sharp.clone()
    colour_sharp[2] = 0.2  # red == green, blue differs
    errs = torch.zeros(3, 8, 8)
    errs[2] = 0.1  # the output errs in blue only
    colour = ev.eval_deblur(lambda x: colour_sharp[None] + errs, [ev.Pair("c", colour_sharp, colour_sharp)])
    assert math.isclose(grey["mean"]["psnr"], 20.0, abs_tol=1e-3)
    # all three channels scored: MSE 0.01 / 3 -> 24.77 dB (one channel: red, perfect, 100 dB)
    assert math.isclose(colour["mean"]["psnr"], 10 * math.log10(3 / 0.01), abs_tol=1e-3)


def test_a_grey_pair_scores_the_mean_of_the_output_channels():
    """A network may return slightly unequal channels for a grey photo: the score is of their mean
    (what the photo shows in black and white), not of one channel."""
    sharp = torch.full((3, 8, 8), 0.5)

    def fn(x: torch.Tensor) -> torch.Tensor:  # red right, green and blue 0.15 too bright
        return torch.cat([x[:, :1] * 0 + 0.5, x[:, 1:] * 0 + 0.65], 1)

    r = ev.eval_deblur(fn, [_pair("g", sharp, 0.1)])
    assert math.isclose(r["mean"]["psnr"], -10 * math.log10(0.1**2), abs_tol=1e-3)  # mean 0.6: 20 dB


def test_aligned_scores_search_shifts_for_the_input_too():
    """The Levin protocol's ``psnr_in_aligned``: an input that is the sharp photo shifted by (2, -1)
    scores 100 dB aligned within 4 px, while its plain PSNR is low."""
    sharp = torch.rand(3, 24, 24, generator=torch.Generator().manual_seed(1))
    shifted = torch.roll(sharp, (2, -1), (1, 2))
    r = ev.eval_deblur(lambda x: x, [ev.Pair("s", shifted, sharp)], align=4)["mean"]
    assert r["psnr_in_aligned"] == 100.0 and r["psnr_aligned"] == 100.0
    assert r["psnr_in"] < 15 and r["psnr"] < 15
    flat = ev.eval_deblur(lambda x: torch.full_like(x, 0.5), [ev.Pair("s", shifted, sharp)], align=4)["mean"]
    assert flat["psnr_in_aligned"] == 100.0 and flat["psnr_aligned"] < 15  # each scores its own image


def test_the_static_baseline_takes_the_best_blur():
    """Frames that are (all but the centre itself) the centre frame blurred by sigma 1.5 are best
    matched at 1.5, and its score is the maximum over the sigmas tried."""
    from blurvid.metrics import gaussian_blur, video_psnr

    centre = torch.rand(3, 20, 20, generator=torch.Generator().manual_seed(2))
    frames = gaussian_blur(centre[None], 1.5)[0].expand(15, -1, -1, -1).clone()
    frames[7] = centre
    best = ev.static_blur_baseline([ev.Sequence_("s", frames.mean(0), frames)])
    assert best["sigma"] == 1.5
    for sigma in (0.5, 1.0, 2.0, 3.0):
        assert (
            best["psnr"]
            > ev.static_blur_baseline([ev.Sequence_("s", frames.mean(0), frames)], [sigma])["psnr"]
        )
    # the autoencoder's 4 of 15 frames are frames 0, 5, 9 and 14, as eval_video scores them
    four = ev.static_blur_baseline([ev.Sequence_("s", frames.mean(0), frames)], [1.5], 4, "frames")
    still = gaussian_blur(centre[None], 1.5)[:, None].expand(1, 4, -1, -1, -1)
    assert math.isclose(four["psnr"], float(video_psnr(still, frames[[0, 5, 9, 14]][None])), abs_tol=1e-4)


def test_eval_video_hand_case():
    frames = torch.rand(5, 3, 8, 8)
    seq = ev.Sequence_("s", frames.mean(0), frames)
    truth = ev.eval_video(lambda b, c, n: frames[None], [seq])
    reverse = ev.eval_video(lambda b, c, n: frames.flip(0)[None], [seq])
    assert truth["mean"]["ppsnr"] == 100.0 and truth["mean"]["oie"] < 1e-6
    assert reverse["mean"]["ppsnr"] == 100.0 and reverse["mean"]["psnr"] < 30  # order-invariant metric
    assert truth["mean"]["static_psnr"] < 30
    # with a centre from center_fn (the DM: end to end), the static baseline repeats that centre
    grey = ev.eval_video(
        lambda b, c, n: c[:, None].expand(1, n, -1, -1, -1),
        [seq],
        center_fn=lambda b: torch.full_like(b, 0.5),
    )
    assert grey["mean"]["static_psnr"] == grey["mean"]["psnr"] != truth["mean"]["static_psnr"]
    # fewer output frames than ground truth: the true frames at the same moments (slice centres)
    nine = torch.rand(9, 3, 8, 8)
    seq9 = ev.Sequence_("s", nine.mean(0), nine)
    sub = ev.eval_video(lambda b, c, n: nine[[1, 4, 7]][None], [seq9], frames=3)
    assert sub["mean"]["psnr"] == 100.0
    # the autoencoder reads the frames it is scored on: evenly spread
    auto = ev.eval_video(lambda b, c, n: b, [seq], frames=3, inputs="frames")
    assert auto["mean"]["psnr"] == 100.0


def test_levin_layout(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "gt").mkdir()
    gt = (rng.random((20, 20)) * 255).astype(np.uint8)
    Image.fromarray(gt).save(tmp_path / "gt" / "im1.png")
    Image.fromarray(gt).save(tmp_path / "im1_kernel1_img.png")
    pairs = ev.levin_pairs(tmp_path)
    assert [p.name for p in pairs] == ["im1_kernel1_img"]
    r = ev.eval_deblur(lambda x: x, pairs, align=2)
    assert r["mean"]["psnr"] == 100.0 and r["mean"]["psnr_aligned"] == 100.0


def _photo_folder(tmp_path, seed: int, side: int):
    """``tmp_path/src`` holding one random ``side`` x ``side`` RGB photo, ``a.png``."""
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(seed)
    Image.fromarray((rng.random((side, side, 3)) * 255).astype(np.uint8)).save(src / "a.png")
    return src


def _run(args):
    from blurvid.cli import main

    with pytest.raises(SystemExit) as e:
        main(args)
    return e.value.code


def test_synth_command_is_reproducible_and_eval_reads_it(tmp_path, tiny_weights):
    src = _photo_folder(tmp_path, seed=1, side=90)
    for out in ("s1", "s2"):
        assert _run(
            [
                "synth",
                str(src),
                "-o",
                str(tmp_path / out),
                "--count",
                "2",
                "--frames",
                "5",
                "--size",
                "32",
                "--seed",
                "3",
            ]
        ) in (0, None)
    a = sorted((tmp_path / "s1").rglob("*.png"))
    b = sorted((tmp_path / "s2").rglob("*.png"))
    assert len(a) == 2 * (1 + 5)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    meta = json.loads((tmp_path / "s1" / "sample_00000" / "meta.json").read_text())
    assert meta["center"] == 2
    assert np.load(tmp_path / "s1" / "sample_00000" / "flows.npy").shape == (5, 2, 32, 32)
    out_json = tmp_path / "r.json"
    assert _run(
        ["eval", "deblur", "--pairs", str(tmp_path / "s1"), "--json", str(out_json), "--precision", "fp32"]
    ) in (0, None)
    res = json.loads(out_json.read_text())
    (only,) = res["sets"].values()
    assert only["count"] == 2 and 0 < only["mean"]["psnr"] < 100


def test_eval_without_anything_is_a_clear_error(tiny_weights, capsys):
    capsys.readouterr()
    assert _run(["eval", "deblur"]) == 2
    assert "nothing to evaluate: give --levin, --pairs, --synth or --clips" in capsys.readouterr().err


def test_eval_deblur_synth_target_time_or_mean(tmp_path, tiny_weights, capsys):
    src = _photo_folder(tmp_path, seed=2, side=120)
    res = {}
    for target in ("time", "mean"):
        out = tmp_path / f"{target}.json"
        args = ["eval", "deblur", "--synth", str(src), "--count", "2", "--size", "32", "--target", target]
        assert _run([*args, "--json", str(out), "--precision", "fp32"]) in (0, None)
        res[target] = json.loads(out.read_text())
        # synthetic blur has no aligned PSNR: its table cells are dashes, not nan
        assert "nan" not in capsys.readouterr().out.lower()
    assert res["mean"]["target"] == "mean"
    # the same seed, another reference pose: the blurred inputs (and so their scores) differ
    assert (
        res["time"]["sets"]["synthetic"]["mean"]["psnr_in"]
        != res["mean"]["sets"]["synthetic"]["mean"]["psnr_in"]
    )


def test_eval_deblur_synth_without_noise_scores_the_same_scenes_clean(tmp_path, tiny_weights):
    src = _photo_folder(tmp_path, seed=2, side=120)
    res = {}
    for flag in ("--noise", "--no-noise"):
        out = tmp_path / f"{flag}.json"
        args = ["eval", "deblur", "--synth", str(src), "--count", "3", "--size", "32", flag]
        assert _run([*args, "--json", str(out), "--precision", "fp32"]) in (0, None)
        res[flag] = json.loads(out.read_text())
    assert res["--noise"]["synth"]["noise"] is True and res["--no-noise"]["synth"]["noise"] is False
    # same seed, same scenes (scores within a fraction of a dB); without noise the inputs score higher
    noisy, clean = (res[f]["sets"]["synthetic"]["items"] for f in ("--noise", "--no-noise"))
    diffs = [c["psnr_in"] - n["psnr_in"] for n, c in zip(noisy, clean, strict=True)]
    assert all(abs(d) < 0.5 for d in diffs) and sum(diffs) > 0 and any(d != 0 for d in diffs)


def _ae_checkpoint(path, zero_rvd: bool):
    """A stage-1 run's best.safetensors (rve.* + rvd.*, both configs), tiny and random."""
    from blurvid import weights
    from blurvid.models import RecurrentVideoDecoder
    from blurvid.models.encoders import RecurrentVideoEncoder, VideoConfig

    vcfg = VideoConfig(widths=(4, 8, 8, 16), hidden=8, rve_input="frame+diff", rve_norm=True)
    torch.manual_seed(0)
    rve, rvd = RecurrentVideoEncoder(vcfg), RecurrentVideoDecoder(vcfg)
    if zero_rvd:  # every flow is 0: each frame is the centre
        for p in rvd.parameters():
            p.data.zero_()
    state = {f"rve.{k}": v for k, v in rve.state_dict().items()}
    state |= {f"rvd.{k}": v for k, v in rvd.state_dict().items()}
    cfg = vcfg.to_dict()
    weights.save_checkpoint(path, state, arch="rvd", config={"rve": cfg, "rvd": cfg})


@pytest.mark.parametrize("zero_rvd", [True, False])
def test_eval_autoencoder_run_on_odd_sized_sequences(tmp_path, tiny_weights, zero_rvd):
    src = _photo_folder(tmp_path, seed=3, side=120)
    run = tmp_path / "ae.safetensors"
    _ae_checkpoint(run, zero_rvd)
    out = tmp_path / "ae.json"
    args = ["eval", "autoencoder", "--run", str(run), "--synth", str(src), "--count", "2", "--size", "36"]
    assert _run([*args, "--json", str(out), "--precision", "fp32"]) in (0, None)
    res = json.loads(out.read_text())["sets"]["synthetic"]
    assert res["count"] == 2 and res["blurred_static_baseline"]["psnr"] > 0
    m = res["mean"]
    if zero_rvd:  # no motion decoded: exactly the static baseline
        assert m["psnr"] == pytest.approx(m["static_psnr"], abs=1e-4)
    else:
        assert m["psnr"] != pytest.approx(m["static_psnr"], abs=1e-4)


def test_eval_autoencoder_needs_a_stage_one_run(tmp_path, tiny_weights, capsys):
    assert _run(["eval", "autoencoder", "--synth", str(tmp_path)]) == 2
    assert "--run" in capsys.readouterr().err


def test_eval_deblur_clips_scores_each_window_against_its_centre_frame(tmp_path, tiny_weights):
    clip = tmp_path / "clip"
    clip.mkdir()
    rng = np.random.default_rng(5)
    for i in range(6):  # two windows of 3 frames
        Image.fromarray((rng.random((40, 36, 3)) * 255).astype(np.uint8)).save(clip / f"{i:03d}.png")
    out = tmp_path / "clips.json"
    args = [
        "eval",
        "deblur",
        "--clips",
        str(clip),
        "--frames",
        "3",
        "--json",
        str(out),
        "--precision",
        "fp32",
    ]
    assert _run(args) in (0, None)
    clips = json.loads(out.read_text())["sets"]["clips"]
    assert [r["name"] for r in clips["items"]] == ["clip_0000", "clip_0003"]
    # the input's score is the average of three random frames against the middle one: far from sharp
    assert all(5 < r["psnr_in"] < 20 for r in clips["items"])


def test_eval_run_accepts_an_exported_checkpoint_and_never_falls_back_silently(tmp_path, tiny_weights):
    from blurvid import weights
    from blurvid.models import DeblurNet, DMConfig

    src = _photo_folder(tmp_path, seed=4, side=64)
    base = ["eval", "deblur", "--synth", str(src), "--count", "2", "--size", "32", "--precision", "fp32"]
    assert _run([*base, "--json", str(tmp_path / "installed.json")]) in (0, None)
    # an inference checkpoint (unprefixed keys, its own config) whose DM adds a constant: scores change
    dm = DeblurNet(DMConfig(widths=(8, 8, 8, 8), growth=(4, 4, 4, 4), rdbs=(1, 1, 1, 1)))
    with torch.no_grad():
        dm.tail[-1].weight.zero_()
        dm.tail[-1].bias.fill_(0.2)
    other = tmp_path / "dm-other.safetensors"
    weights.save_checkpoint(other, dm.state_dict(), arch="dm", config=dm.config.to_dict())
    assert _run([*base, "--run", str(other), "--json", str(tmp_path / "other.json")]) in (0, None)
    scores = [
        json.loads((tmp_path / f).read_text())["sets"]["synthetic"]["mean"]["psnr"]
        for f in ("installed.json", "other.json")
    ]
    assert abs(scores[0] - scores[1]) > 1.0, scores
    # a checkpoint without a DM is an error for `eval deblur`, not the installed DM in disguise
    bie = tiny_weights["cache"] / "tiny-bie.safetensors"
    assert _run([*base, "--run", str(bie)]) == 2


def test_synth_with_clips_draws_from_them_by_default(tmp_path):
    """--clips without --clip-p gives half of the samples from the clips (it gave none: clip_p was 0)."""
    from PIL import Image

    src = _photo_folder(tmp_path, seed=1, side=90)
    clip = tmp_path / "clip"
    clip.mkdir()
    rng = np.random.default_rng(2)
    for i in range(6):
        Image.fromarray((rng.random((40, 44, 3)) * 255).astype(np.uint8)).save(clip / f"{i:03d}.png")
    args = ["synth", str(src), "-o", str(tmp_path / "s"), "--count", "8", "--frames", "3", "--size", "32"]
    assert _run([*args, "--clips", str(clip)]) in (0, None)
    unknown = [np.isnan(np.load(f)).all() for f in sorted((tmp_path / "s").rglob("flows.npy"))]
    assert len(unknown) == 8 and 0 < sum(unknown) < 8  # clips have no true flows


def test_evaluation_reads_photos_as_deblur_does(tmp_path):
    """Upright by EXIF orientation and with 16 bits kept (evaluation read them raw, in 8 bits)."""
    exif = Image.Exif()
    exif[274] = 6
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "turned.jpg", exif=exif)
    assert ev._img(tmp_path / "turned.jpg").shape == (3, 30, 20)
    ramp = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    assert len(torch.unique(ev._img(tmp_path / "deep.png"))) == 64 * 64
    (tmp_path / "bad.png").write_bytes(b"nope")
    with pytest.raises(ValueError, match=r"bad\.png"):
        ev._img(tmp_path / "bad.png")


def _pairs_folder(root, names, sizes=None):
    """``root/blurred/NAME.png`` and ``root/sharp/NAME.png`` for each name (the sharp side ``sizes``)."""
    rng = np.random.default_rng(3)
    for sub in ("blurred", "sharp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name in names:
        h, w = (sizes or {}).get(name, (24, 32))
        for sub in ("blurred", "sharp"):
            (root / sub / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((rng.random((24, 32, 3)) * 255).astype(np.uint8)).save(
            root / "blurred" / f"{name}.png"
        )
        Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(root / "sharp" / f"{name}.png")
    return root


def test_folder_pairs_match_names_literally_and_refuse_what_cannot_be_scored(tmp_path):
    pairs = ev.folder_pairs(_pairs_folder(tmp_path / "ok", ["img[1]", "a*b", "plain"]))
    assert sorted(p.name for p in pairs) == ["a*b", "img[1]", "plain"]  # glob characters are names here
    root = _pairs_folder(tmp_path / "odd", ["x"], sizes={"x": (20, 32)})
    with pytest.raises(ValueError, match=r"x.png is 32x24 but .*x.png is 32x20"):
        ev.folder_pairs(root)
    root = _pairs_folder(tmp_path / "nomatch", ["x"])
    (root / "sharp" / "x.png").rename(root / "sharp" / "y.png")
    with pytest.raises(FileNotFoundError, match=r"no pairs .*none of x\.png has a target"):
        ev.folder_pairs(root)
    root = _pairs_folder(tmp_path / "nosharp", ["x"])
    for f in (root / "sharp").iterdir():
        f.unlink()
    (root / "sharp").rmdir()
    with pytest.raises(FileNotFoundError, match="no sharp/ folder"):
        ev.folder_pairs(root)


def test_left_out_files_are_named_up_to_three(tmp_path):
    root = _pairs_folder(tmp_path / "p", ["a"])
    for name in ("t1", "t2", "t3"):
        Image.open(root / "sharp" / "a.png").save(root / "sharp" / f"{name}.png")
    with pytest.warns(
        UserWarning, match=r"3 target\(s\) without a blurred image left out \(t1\.png, t2\.png, t3\.png\)$"
    ):
        ev.folder_pairs(root)
    Image.open(root / "sharp" / "a.png").save(root / "sharp" / "t4.png")
    with pytest.warns(UserWarning, match=r"4 target\(s\) .* \(t1\.png, t2\.png, t3\.png\.\.\.\)$"):
        ev.folder_pairs(root)


def test_folder_pairs_match_by_path_below_the_folders_and_say_what_they_leave_out(tmp_path):
    """Files of one name in two subfolders were paired across them (the last one won), a second target
    of one name was picked silently, and blurred images without a target were dropped without a word."""
    root = _pairs_folder(tmp_path / "tree", ["s1/f", "s2/f"])
    by_name = {p.name: p for p in ev.folder_pairs(root)}
    assert sorted(by_name) == ["s1/f", "s2/f"]
    for name, p in by_name.items():
        assert torch.equal(p.sharp, ev._img(root / "sharp" / f"{name}.png"))
    Image.open(root / "blurred" / "s1" / "f.png").save(root / "blurred" / "lonely.png")
    with pytest.warns(UserWarning, match=r"1 blurred image\(s\) without a target left out \(lonely\.png\)"):
        assert len(ev.folder_pairs(root)) == 2
    Image.open(root / "sharp" / "s1" / "f.png").save(root / "sharp" / "s1" / "f.tif")
    with pytest.raises(ValueError, match=r"f\.png and .*f\.tif: two targets for one name"):
        ev.folder_pairs(root)


def test_levin_and_synth_sets_of_mismatched_sizes_are_one_line(tmp_path):
    levin = tmp_path / "levin"
    (levin / "gt").mkdir(parents=True)
    Image.fromarray(np.zeros((80, 80), np.uint8)).save(levin / "gt" / "im1.png")
    Image.fromarray(np.zeros((80, 96), np.uint8)).save(levin / "im1_kernel1_img.png")
    with pytest.raises(ValueError, match=r"im1_kernel1_img\.png is 96x80 but .*im1\.png is 80x80"):
        ev.levin_pairs(levin)
    sample = tmp_path / "synth" / "sample_00000"
    (sample / "frames").mkdir(parents=True)
    Image.fromarray(np.zeros((64, 72, 3), np.uint8)).save(sample / "blurred.png")
    for i in range(3):
        Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(sample / "frames" / f"{i:03d}.png")
    with pytest.raises(ValueError, match=r"blurred\.png is 72x64 but .*000\.png is 64x64"):
        ev.folder_sequences(tmp_path / "synth")


@pytest.mark.parametrize(
    "extra",
    [["--count", "0"], ["--size", "0"], ["--frames", "1"], ["--center", "nope"], ["--out-frames", "0"]],
)
def test_eval_options_out_of_range_are_set_up_errors(tmp_path, tiny_weights, capsys, extra):
    src = _photo_folder(tmp_path, seed=2, side=64)
    capsys.readouterr()
    assert _run(["eval", "video", "--synth", str(src), "--size", "32", *extra]) == 2
    assert f"Invalid value for '{extra[0]}'" in capsys.readouterr().err  # that option, not another error


def test_eval_json_records_what_measured_and_an_unwritable_path_fails_first(tmp_path, tiny_weights, capsys):
    from blurvid import weights

    src = _photo_folder(tmp_path, seed=2, side=64)
    (tmp_path / "file").write_text("x")
    args = ["eval", "deblur", "--synth", str(src), "--count", "1", "--size", "32", "--precision", "fp32"]
    assert _run([*args, "--json", str(tmp_path / "file" / "r.json")]) == 2
    assert "--json" in capsys.readouterr().err
    assert _run([*args, "--json", str(tmp_path / "r.json")]) in (0, None)
    res = json.loads((tmp_path / "r.json").read_text())
    assert (
        res["models"] == {"dm": weights.default_spec("dm").name}
        and res["device"] == "cpu"
        and res["precision"] == "float32"
    )
    assert res["synth"] == {"count": 1, "seed": 1234, "size": 32, "noise": True} and res["target"] == "time"
    assert "center" not in res


def test_eval_video_json_records_the_frames_each_set_has_and_out_frames(tmp_path, tiny_weights):
    """The JSON said "frames": 9 (the --frames default) for a --pairs set of 5-frame samples, and a run
    scored at --out-frames 3 did not say so."""
    src = _photo_folder(tmp_path, seed=2, side=64)
    assert _run(
        ["synth", str(src), "-o", str(tmp_path / "s"), "--size", "32", "--count", "1", "--frames", "9"]
    ) in (
        0,
        None,
    )
    args = ["eval", "video", "--pairs", str(tmp_path / "s"), "--precision", "fp32", "--out-frames", "3"]
    assert _run([*args, "--json", str(tmp_path / "v.json")]) in (0, None)
    res = json.loads((tmp_path / "v.json").read_text())
    assert res["out_frames"] == 3 and res["sets"][str(tmp_path / "s")]["frames"] == 9
    # 5 of 9 frames fall between the true ones: refused, one line
    assert _run([*args[:-1], "5"]) == 2


def test_out_frames_are_scored_against_the_true_frames_at_the_same_moments():
    """Predicted frames sit at slice centres: 3 of 9 at true frames 1, 4, 7, not 0, 4, 8 (a perfect
    prediction scored 17.8 dB)."""
    assert ev.out_frame_index(9, 3).tolist() == [1, 4, 7]
    assert ev.out_frame_index(9, 9).tolist() == list(range(9))
    assert ev.out_frame_index(15, 5).tolist() == [1, 4, 7, 10, 13]
    assert ev.out_frame_index(9, 3, inputs="frames").tolist() == [0, 4, 8]  # the autoencoder reads these
    assert ev.out_frame_index(9, 4, inputs="frames").tolist() == [0, 3, 5, 8]  # the nearest of 0, 2.67...
    with pytest.raises(ValueError, match=r"5 frames fall between the 9 true frames .* use 3 or 9"):
        ev.out_frame_index(9, 5)
    # an oracle that samples a linear motion the way the Animator does scores its frames exactly
    from blurvid.models.warp import resample_in_time

    true = torch.arange(9, dtype=torch.float32).view(9, 1, 1, 1).expand(9, 1, 2, 2)
    pred = resample_in_time(true, 3)
    assert torch.equal(pred, true[ev.out_frame_index(9, 3)])


def test_synth_never_mixes_two_runs_and_checks_its_options(tmp_path, capsys):
    src = _photo_folder(tmp_path, seed=1, side=90)
    out = tmp_path / "s"
    args = ["synth", str(src), "-o", str(out), "--size", "32"]
    assert _run([*args, "--count", "3", "--frames", "5"]) in (0, None)
    meta = json.loads((out / "sample_00000" / "meta.json").read_text())
    assert meta["source"] == "photo" and meta["index"] == 0 and "clip_p" not in meta
    capsys.readouterr()
    # a second run into the same folder: refused, then with --overwrite the earlier samples are gone
    assert _run([*args, "--count", "2", "--frames", "3", "--seed", "5"]) == 2
    assert "holds 3 samples of an earlier run" in capsys.readouterr().err
    assert _run([*args, "--count", "2", "--frames", "3", "--seed", "5", "--overwrite"]) in (0, None)
    assert sorted(p.name for p in out.iterdir()) == ["sample_00000", "sample_00001", "synth.json"]
    assert len(list((out / "sample_00000" / "frames").iterdir())) == 3  # not 3 new beside 2 old frames
    for bad in (["--blur", "-5"], ["--blur", "nan"], ["--blur", "inf"], ["--blur", "1e6"], ["--clip-p", "1"]):
        assert (
            _run(["synth", str(src), "-o", str(tmp_path / "x"), "--count", "1", "--size", "32", *bad]) == 2
        ), bad
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_a_folder_of_clip_folders_gives_one_clip_each(tmp_path):
    from blurvid.data.datasets import ClipDataset, clip_frames

    for name, level in (("c1", 0), ("c2", 200)):
        d = tmp_path / "clips" / name
        d.mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.full((16, 16, 3), level + i, np.uint8)).save(d / f"{i:03d}.png")
    clips = clip_frames([tmp_path / "clips"])
    assert [[f.parent.name for f in c] for c in clips] == [["c1"] * 4, ["c2"] * 4]
    assert len(ClipDataset([tmp_path / "clips"], frames=3, size=16).clips) == 2
    names = [s.name for s in ev.clip_sequences([tmp_path / "clips"], frames=3, stride=1)]
    assert names == ["c1_0000", "c1_0001", "c2_0000", "c2_0001"]  # no window across the cut


def test_a_held_out_clip_end_is_never_trained_on_and_is_what_eval_scores(tmp_path, tiny_weights):
    """The real-clip numbers were in-sample: training drew windows from every frame eval scored."""
    from blurvid.data.datasets import ClipDataset, clip_parts

    clip = tmp_path / "clip"
    clip.mkdir()
    for i in range(12):  # frame i is flat grey i * 20: each frame is known by its value
        Image.fromarray(np.full((40, 36, 3), i * 20, np.uint8)).save(clip / f"{i:03d}.png")
    files = sorted(clip.iterdir())
    train, held = clip_parts(files, 0.25)
    assert [p.name for p in held] == ["009.png", "010.png", "011.png"] and train + held == files
    with pytest.raises(ValueError, match="clip holdout 1"):
        clip_parts(files, 1)
    ds = ClipDataset([clip], frames=3, size=32, zoom=(1.0, 1.0), holdout=0.25)
    seen = {round(float(v) * 255 / 20) for i in range(60) for v in ds[i]["frames"].mean((1, 2, 3))}
    assert seen <= set(range(9)) and len(seen) > 4  # frames 0-8 only, and several of them
    seqs = ev.clip_sequences([clip], frames=3, holdout=0.25)
    assert [s.name for s in seqs] == ["clip_0009"]  # named by the window's first frame in the clip
    assert torch.equal(seqs[0].frames[:, 0, 0, 0] * 255 / 20, torch.tensor([9.0, 10, 11]))
    out = tmp_path / "r.json"
    args = [
        "eval",
        "deblur",
        "--clips",
        str(clip),
        "--frames",
        "3",
        "--clips-holdout",
        "0.25",
        "--json",
        str(out),
    ]
    assert _run([*args, "--precision", "fp32"]) in (0, None)
    res = json.loads(out.read_text())
    assert res["clips_holdout"] == 0.25 and res["sets"]["clips"]["count"] == 1


def test_clip_holdout_is_checked_in_the_training_config():
    from blurvid.train.config import TrainConfig

    assert TrainConfig(clip_holdout=0.25).clip_holdout == 0.25
    for bad in (-0.1, 1.0, float("nan")):
        with pytest.raises(ValueError, match="clip_holdout"):
            TrainConfig(clip_holdout=bad)


def _levin_folder(root, side: int = 24, blurred=("im1_kernel1_img.png",), truths=("im1",)):
    """A Levin-layout folder: grey ``side`` x ``side`` blurred files and ``gt/<name>.png`` for each truth."""
    rng = np.random.default_rng(6)
    (root / "gt").mkdir(parents=True)
    for name in truths:
        Image.fromarray((rng.random((side, side)) * 255).astype(np.uint8)).save(root / "gt" / f"{name}.png")
    for name in blurred:
        Image.fromarray((rng.random((side, side)) * 255).astype(np.uint8)).save(root / name)
    return root


def _clip_folder(root, count: int, sizes=None):
    """``count`` random frames ``000.png``... (``sizes``: ``{index: (h, w)}``, else 40 x 36)."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(7)
    for i in range(count):
        h, w = (sizes or {}).get(i, (40, 36))
        Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(root / f"{i:03d}.png")
    return root


def test_eval_json_never_replaces_an_input_or_a_file_that_is_no_result(tmp_path, tiny_weights, capsys):
    """`--json p/sharp/a.png` replaced the photo with the result (exit 0)."""
    pairs = _pairs_folder(tmp_path / "p", ["a"])
    photo = pairs / "sharp" / "a.png"
    before = photo.read_bytes()
    base = ["eval", "deblur", "--pairs", str(pairs), "--precision", "fp32"]
    capsys.readouterr()
    assert _run([*base, "--json", str(photo)]) == 2
    err = capsys.readouterr().err
    assert f"--json {photo}: it is an input of this evaluation (--pairs {pairs})" in err
    assert "Traceback" not in err and photo.read_bytes() == before
    # a new file that would be read as one of the set's images next time is refused as well
    assert _run([*base, "--json", str(pairs / "blurred" / "b.png")]) == 2
    assert not (pairs / "blurred" / "b.png").exists()
    # any existing file that is no JSON result: refused, untouched
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    assert _run([*base, "--json", str(notes)]) == 2
    assert "not a JSON result" in capsys.readouterr().err and notes.read_text() == "my notes\n"
    # the --run checkpoint (an exported DM whose header may start with '{')
    ckpt = tmp_path / "dm.safetensors"
    ckpt.write_bytes((tiny_weights["cache"] / "tiny-dm.safetensors").read_bytes())
    assert _run([*base, "--run", str(ckpt), "--json", str(ckpt)]) == 2
    assert "--run" in capsys.readouterr().err
    assert ckpt.read_bytes() == (tiny_weights["cache"] / "tiny-dm.safetensors").read_bytes()
    # beside a --run checkpoint: the run's other files, which the next `--run <folder>` reads
    for name in ("best.safetensors", "config.json"):
        assert _run([*base, "--run", str(ckpt), "--json", str(tmp_path / name)]) == 2
        assert "--run" in capsys.readouterr().err and not (tmp_path / name).exists()
    # inside an input folder, a JSON file that is not an earlier result (a sample's meta.json) is refused
    out = pairs / "result.json"
    out.write_text('\n  {"old": 1}')
    assert _run([*base, "--json", str(out)]) == 2
    assert out.read_text() == '\n  {"old": 1}'
    # an earlier result (and a new file beside the inputs) is written as before
    out.write_text('\n  {"task": "deblur", "sets": {}}')
    assert _run([*base, "--json", str(out)]) in (0, None)
    assert json.loads(out.read_text())["sets"][str(pairs)]["count"] == 1


def test_sets_of_one_name_are_all_kept(tmp_path, monkeypatch):
    """`--levin lev --pairs levin` gave one set "levin": the Levin results were lost."""
    monkeypatch.chdir(tmp_path)
    _levin_folder(tmp_path / "lev")
    _pairs_folder(tmp_path / "levin", ["a", "b"])
    sets = ev.deblur_sets(levin="lev", folder="levin")
    assert list(sets) == ["levin", "levin (2)"]
    assert [len(sets[k][0]) for k in sets] == [1, 2] and [sets[k][1] for k in sets] == [8, 0]
    assert ev.unique_name("x", ["x", "x (2)"]) == "x (3)" and ev.unique_name("y", ["x"]) == "y"


def test_eval_video_keeps_a_pairs_set_named_like_another(tmp_path, tiny_weights, monkeypatch):
    """`eval video --synth src --pairs synthetic`: the --pairs set replaced the synthesised one."""
    src = _photo_folder(tmp_path, seed=2, side=64)
    args = ["synth", str(src), "-o", str(tmp_path / "synthetic"), "--size", "32", "--count", "1"]
    assert _run([*args, "--frames", "3"]) in (0, None)
    monkeypatch.chdir(tmp_path)
    video = ["eval", "video", "--synth", str(src), "--count", "2", "--size", "32", "--frames", "3"]
    assert _run([*video, "--pairs", "synthetic", "--precision", "fp32", "--json", "v.json"]) in (0, None)
    sets = json.loads((tmp_path / "v.json").read_text())["sets"]
    assert {k: v["count"] for k, v in sets.items()} == {"synthetic": 2, "synthetic (2)": 1}


def test_a_clip_given_twice_is_one_clip_without_repeated_frames(tmp_path, monkeypatch):
    """`--clips clipA --clips clipA` (or a folder and a clip inside it) made one clip of every frame
    twice, whose windows ran from its end into its start again."""
    from blurvid.data.datasets import clip_frames

    clip = _clip_folder(tmp_path / "video" / "tennis", 4)
    monkeypatch.chdir(tmp_path)
    once = [clip / f"{i:03d}.png" for i in range(4)]
    for sources in ([clip, clip], [clip, "video/tennis"], [tmp_path / "video", clip]):
        (frames,) = clip_frames(sources)
        assert [f.resolve() for f in frames] == once, sources
    names = [s.name for s in ev.clip_sequences([clip, clip], frames=3, stride=1)]
    assert names == ["tennis_0000", "tennis_0001"]
    (clip / "004.png").symlink_to(clip / "003.png")  # a repeated frame stored as a link is still a frame
    (frames,) = clip_frames([clip])
    assert [f.name for f in frames] == ["000.png", "001.png", "002.png", "003.png", "004.png"]


def test_levin_pairs_accept_case_variants_and_say_what_they_leave_out(tmp_path):
    blurred = ("im1_kernel1_img.png", "IM1_Kernel2_img.PNG", "im2_kernel1_img.png", "im1_kernel3_img.jpg")
    root = _levin_folder(tmp_path / "lev", blurred=blurred)
    with pytest.warns(UserWarning) as caught:
        pairs = ev.levin_pairs(root)
    assert sorted(p.name for p in pairs) == ["IM1_Kernel2_img", "im1_kernel1_img"]
    said = [str(w.message) for w in caught]
    assert any(
        "1 blurred image(s) without their ground truth" in m and "im2_kernel1_img.png" in m for m in said
    )
    assert any("not in PNG left out (im1_kernel3_img.jpg)" in m for m in said)
    (root / "gt" / "im1.png").rename(root / "gt" / "IM1.PNG")  # the ground truth's suffix in any case too
    with pytest.warns(UserWarning):
        assert sorted(p.name for p in ev.levin_pairs(root)) == ["IM1_Kernel2_img", "im1_kernel1_img"]
    lonely = _levin_folder(tmp_path / "lonely", blurred=("im2_kernel1_img.png",))
    with pytest.warns(UserWarning), pytest.raises(FileNotFoundError, match="no Levin-layout pairs"):
        ev.levin_pairs(lonely)


@pytest.mark.parametrize("task", ["deblur", "video"])
def test_eval_pairs_given_a_file_is_one_line(tmp_path, tiny_weights, capsys, task):
    root = _pairs_folder(tmp_path / "p", ["a"])
    capsys.readouterr()
    assert _run(["eval", task, "--pairs", str(root / "sharp" / "a.png"), "--precision", "fp32"]) == 2
    err = capsys.readouterr().err
    assert f"{root / 'sharp' / 'a.png'}: not a folder" in err and "Traceback" not in err
    with pytest.raises(FileNotFoundError, match="no such folder"):
        ev.folder_pairs(tmp_path / "missing")


def test_a_clip_windows_blurred_image_is_8_bit_like_a_photo(tmp_path):
    """GoPro-style: the frames' linear-light average, quantised to 8 bits as a saved photo is."""
    from blurvid.data.synth import average_frames

    (seq,) = ev.clip_sequences([_clip_folder(tmp_path / "clip", 3)], frames=3)
    exact = average_frames(seq.frames)
    assert torch.equal(seq.blurred, torch.round(exact * 255) / 255) and not torch.equal(seq.blurred, exact)


def test_eval_synth_config_has_static_scenes_for_deblur_only():
    from blurvid.data.synth import SynthConfig

    deblur, video = ev.eval_synth_config("deblur", target="mean"), ev.eval_synth_config("video", noise=False)
    assert deblur.static_camera_p == SynthConfig.static_camera_p > 0 and deblur.center == "mean"
    assert video.static_camera_p == 0.0 and video.center == "time" and video.noise_p == 0.0
    assert not deblur.hflip and deblur.noise_p == 1.0


def test_clip_frames_of_different_sizes_are_one_line(tmp_path):
    clip = _clip_folder(tmp_path / "clipB", 3, sizes={2: (40, 30)})
    with pytest.raises(
        ValueError, match=r"000\.png is 36x40 but .*002\.png is 30x40: a clip's frames must match"
    ):
        ev.clip_sequences([clip], frames=3)


def test_levin_images_too_small_for_the_alignment_are_refused(tmp_path, tiny_weights, capsys):
    """A 16x16 Levin pair gave NaN (written into the JSON), a smaller one a RuntimeError."""
    from blurvid.metrics import aligned_psnr

    for side in (16, 10):
        with pytest.raises(ValueError, match=f"{side}x{side} px is too small for the aligned PSNR"):
            aligned_psnr(torch.rand(1, 1, side, side), torch.rand(1, 1, side, side), 8)
    assert aligned_psnr(torch.ones(1, 1, 17, 17), torch.ones(1, 1, 17, 17), 8) == 100.0
    root = _levin_folder(tmp_path / "lev", side=16)
    with pytest.raises(ValueError, match=r"im1_kernel1_img\.png: 16x16 px is too small"):
        ev.deblur_sets(levin=root)
    capsys.readouterr()
    assert _run(["eval", "deblur", "--levin", str(root), "--json", str(tmp_path / "r.json")]) == 2
    assert "larger than 16 px" in capsys.readouterr().err and not (tmp_path / "r.json").exists()


def test_result_json_is_strict(tmp_path):
    ev.write_json(
        {
            "mean": {"psnr": float("nan"), "ssim": float("inf"), "ok": [1.5, float("-inf")]},
            "t": (float("nan"), 2.0),
        },
        tmp_path / "r.json",
    )

    def refuse(name):
        raise ValueError(name)

    assert json.loads((tmp_path / "r.json").read_text(), parse_constant=refuse) == {
        "mean": {"psnr": None, "ssim": None, "ok": [1.5, None]},
        "t": [None, 2.0],
    }
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # its temporary taken as the result, not left


def test_result_json_waits_for_a_file_windows_holds_for_a_moment(tmp_path, monkeypatch):
    """Like every other file blurvid writes, a result a viewer or scanner holds is retried on Windows
    (blurvid.fsutil.replace), not a PermissionError at the end of a long evaluation."""
    import os

    from blurvid import fsutil

    real, calls = os.replace, []

    def held_once(a, b):
        calls.append(a)
        if len(calls) == 1:
            raise PermissionError(13, "The process cannot access the file", str(b))
        real(a, b)

    monkeypatch.setattr(fsutil.os, "replace", held_once)
    monkeypatch.setattr(fsutil.time, "sleep", lambda s: None)
    monkeypatch.setattr(fsutil, "RETRY_HELD_FILES", True)
    ev.write_json({"psnr": 20.0}, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text()) == {"psnr": 20.0} and len(calls) == 2


def test_eval_video_refuses_levin_and_names_only_its_own_sets(tmp_path, tiny_weights, capsys):
    """`eval video --levin lev` ignored the set and then asked for --levin."""
    root = _levin_folder(tmp_path / "lev")
    capsys.readouterr()
    assert _run(["eval", "video", "--levin", str(root)]) == 2
    err = capsys.readouterr().err
    assert "the Levin set has no video ground truth" in err and "eval deblur" in err
    src = _photo_folder(tmp_path, seed=2, side=64)
    assert _run(["eval", "video", "--levin", str(root), "--synth", str(src)]) == 2
    assert "no video ground truth" in capsys.readouterr().err
    assert _run(["eval", "video"]) == 2
    assert "nothing to evaluate: give --pairs, --synth or --clips" in capsys.readouterr().err


def test_eval_json_records_inputs_frames_and_the_run_step(tmp_path, tiny_weights):
    from blurvid import weights

    lev = _levin_folder(tmp_path / "lev", side=24)
    src = _photo_folder(tmp_path, seed=2, side=64)
    clip = _clip_folder(tmp_path / "clip", 3)
    state, meta = weights.load_checkpoint(tiny_weights["cache"] / "tiny-dm.safetensors")
    run = tmp_path / "best.safetensors"
    train = {"iteration": 1234, "weights": "average"}
    weights.save_checkpoint(run, state, arch="dm", config=meta["config"], extra={"train": train})
    out = tmp_path / "r.json"
    args = ["eval", "deblur", "--levin", str(lev), "--synth", str(src), "--clips", str(clip)]
    args += ["--count", "1", "--size", "32", "--frames", "3", "--run", str(run), "--precision", "fp32"]
    assert _run([*args, "--json", str(out)]) in (0, None)
    res = json.loads(out.read_text())
    assert res["frames"] == 3 and res["levin"] == str(lev)
    assert res["synth_sources"] == [str(src)] and res["clips"] == [str(clip)]
    assert res["run"] == {"path": str(run), **train}
    assert res["synth"] == {"count": 1, "seed": 1234, "size": 32, "noise": True} and res["target"] == "time"
    assert sorted(res["sets"]) == ["clips", "levin", "synthetic"]


def test_folder_pairs_refuse_two_blurred_images_of_one_name_and_warn_of_the_rest(tmp_path):
    root = _pairs_folder(tmp_path / "p", ["a", "c", "d"])
    Image.open(root / "blurred" / "a.png").save(root / "blurred" / "a.bmp")
    with pytest.raises(ValueError, match=r"a\.bmp and .*a\.png: two blurred images for one name"):
        ev.folder_pairs(root)
    (root / "blurred" / "a.bmp").unlink()
    (root / "blurred" / "c.png").rename(root / "blurred" / "c.gif")  # a type evaluation does not read
    (root / "blurred" / "d.png").unlink()
    with pytest.warns(UserWarning) as caught:
        assert [p.name for p in ev.folder_pairs(root)] == ["a"]
    said = " | ".join(str(w.message) for w in caught)
    assert "1 blurred file(s) of a type not read" in said and "(c.gif)" in said
    assert "target(s) without a blurred image left out (c.png, d.png)" in said


def test_eval_messages_name_the_evaluation_set_and_target(tmp_path, tiny_weights, capsys):
    root = _pairs_folder(tmp_path / "p", ["a"])
    (root / "blurred" / "bad.png").write_bytes(b"nope")
    with pytest.raises(
        ValueError, match=r"bad\.png: not a readable image .*remove it from the evaluation set"
    ):
        ev.folder_pairs(root)
    (root / "blurred" / "bad.png").unlink()
    capsys.readouterr()
    assert (
        _run(["eval", "deblur", "--pairs", str(root), "--target", "foo", "--json", str(tmp_path / "r.json")])
        == 2
    )
    err = capsys.readouterr().err
    assert "--target" in err and "center" not in err and not (tmp_path / "r.json").exists()


def test_eval_deblur_logs_a_warning_per_pair_naming_its_file(tmp_path, caplog):
    """`eval --shake` showed one warning for a whole set (Python's once-per-line rule), naming no file."""
    import warnings

    from blurvid import evaluate as ev

    def fn(x):
        warnings.warn("left as it was", UserWarning, stacklevel=1)
        return x

    pairs = [ev.Pair(n, torch.rand(3, 20, 20), torch.rand(3, 20, 20), tmp_path / f"{n}.png") for n in "ab"]
    with caplog.at_level("WARNING", logger="blurvid"):
        ev.eval_deblur(fn, pairs)
    assert [r.getMessage() for r in caplog.records] == [f"{tmp_path / n}.png: left as it was" for n in "ab"]


def test_synth_renders_trails_as_long_as_blur_says(tmp_path):
    """`blurvid synth --blur 20` made trails of ~14 px (the lengths counted a return to the central
    instant); a new dataset takes the stated lengths, and its meta.json says so."""
    src = _photo_folder(tmp_path, seed=2, side=64)
    args = ["synth", str(src), "-o", str(tmp_path / "s"), "--size", "32", "--count", "1", "--blur", "20"]
    assert _run(args) in (0, None)
    meta = json.loads((tmp_path / "s" / "sample_00000" / "meta.json").read_text())
    assert meta["synth"]["exposure_length"] is True and meta["synth"]["blur_px"] == [2.0, 20.0]


def test_clip_windows_fit_a_clip_of_just_their_length_take_every_stride_and_reverse_time(tmp_path):
    from blurvid.data.datasets import ClipDataset, clip_frames, clip_parts

    assert clip_parts(list(range(10)), 0.29)[1] == [7, 8, 9]  # 2.9 frames rounded, not cut down
    clip = tmp_path / "clip"
    clip.mkdir()
    for i in range(9):  # frame i is flat grey i * 20
        Image.fromarray(np.full((9, 11, 3), i * 20, np.uint8)).save(clip / f"{i:03d}.png")
    first = clip_frames([clip / "004.png", clip])  # a frame of the clip given before its folder
    assert [[f.name for f in c] for c in first] == [[f"{i:03d}.png" for i in range(9)]]  # in time order
    ds = ClipDataset([clip], frames=3, size=8, zoom=(1.0, 1.0), stride=3)  # 9 frames: one window only
    orders = set()
    for i in range(24):
        levels = [round(float(v) * 255 / 20) for v in ds[i]["frames"][:, 0, 0, 0]]
        assert levels in ([0, 3, 6], [6, 3, 0])
        orders.add(levels[0])
    assert orders == {0, 6}  # played forwards and backwards


def test_synth_keeps_its_samples_apart_from_its_sources_and_leftovers_out_of_eval(tmp_path, capsys):
    """Samples written inside a source folder were read back as sharp photos (and --overwrite then
    deleted them mid-run); a killed run's hidden half-written sample was scored by eval --pairs."""
    src = _photo_folder(tmp_path, seed=2, side=64)
    for out in (src / "ds", src.parent):  # inside the source, or holding it
        assert _run(["synth", str(src), "-o", str(out), "--count", "1", "--size", "32", "--frames", "3"]) == 2
        assert "write the samples to a folder apart from the photos" in capsys.readouterr().err
    assert not (src / "ds").exists()
    out = tmp_path / "ds"
    args = ["synth", str(src), "-o", str(out), "--size", "32", "--frames", "3"]
    assert _run([*args, "--count", "2"]) in (0, None)
    assert capsys.readouterr().out.strip() == f"wrote 2 samples to {out}"  # no stray bar line
    leftover = out / ".sample_00002.tmp"
    shutil.copytree(out / "sample_00001", leftover)  # what a kill between two frame writes leaves
    assert [s.name for s in ev.folder_sequences(out)] == ["sample_00000", "sample_00001"]
    assert _run([*args, "--count", "1", "--overwrite"]) in (0, None)
    assert sorted(p.name for p in out.iterdir()) == ["sample_00000", "synth.json"]
    assert _run(["synth", str(src), "-o", str(tmp_path / "big"), "--count", "100000"]) == 2


def test_eval_json_never_replaces_a_file_of_the_data_it_measures(tmp_path, tiny_weights, capsys):
    src = _photo_folder(tmp_path, seed=3, side=64)
    out = tmp_path / "ds"
    assert _run(["synth", str(src), "-o", str(out), "--count", "1", "--size", "32", "--frames", "3"]) in (
        0,
        None,
    )
    meta = out / "sample_00000" / "meta.json"
    before = meta.read_text()
    assert _run(["eval", "deblur", "--pairs", str(out), "--json", str(meta)]) == 2
    assert "it is an input of this evaluation" in capsys.readouterr().err
    assert meta.read_text() == before
    result = out / "result.json"  # an earlier result inside the set's folder may be replaced
    assert _run(["eval", "deblur", "--pairs", str(out), "--json", str(result)]) in (0, None)
    assert _run(["eval", "deblur", "--pairs", str(out), "--json", str(result)]) in (0, None)
    assert json.loads(result.read_text())["task"] == "deblur"


def test_pairs_without_either_layout_names_both(tmp_path, capsys):
    """A plain photo folder given as --pairs was told only of the `blurvid synth` layout."""
    src = _photo_folder(tmp_path, seed=4, side=32)
    with pytest.raises(
        FileNotFoundError, match=r"expected blurred/ and sharp/ folders.*<sample>/blurred\.png"
    ):
        ev.folder_pairs(src)
    assert _run(["eval", "deblur", "--pairs", str(src)]) == 2
    assert "expected blurred/ and sharp/ folders" in capsys.readouterr().err


def test_a_synth_set_records_its_count_and_eval_warns_when_samples_are_missing(tmp_path, monkeypatch):
    """A stopped synth left a set that eval scored as if whole."""
    import warnings

    from blurvid.data import export

    src = _photo_folder(tmp_path, seed=5, side=64)
    out = tmp_path / "ds"
    seen = []
    real = export.write_sample

    def spy(folder, item, meta):  # type: ignore[no-untyped-def]
        seen.append(json.loads((out / ev.SYNTH_RECORD).read_text()))  # recorded before any sample
        real(folder, item, meta)

    monkeypatch.setattr(export, "write_sample", spy)
    assert _run(["synth", str(src), "-o", str(out), "--count", "2", "--size", "32", "--frames", "3"]) in (
        0,
        None,
    )
    assert seen[0] == {"count": 2, "seed": 0, "complete": False}
    assert json.loads((out / ev.SYNTH_RECORD).read_text())["complete"] is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(ev.folder_sequences(out)) == 2
    shutil.rmtree(out / "sample_00001")  # a sample gone
    with pytest.warns(UserWarning, match=r"holds 1 of the 2 samples its `blurvid synth` run was asked for$"):
        ev.folder_sequences(out)
    (out / ev.SYNTH_RECORD).write_text('{"count": 1, "seed": 0, "complete": false}')  # a stopped run
    with pytest.warns(UserWarning, match="the run stopped before the end"):
        ev.folder_pairs(out)
