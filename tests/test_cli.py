"""End-to-end tests of the ``blurvid`` command through :func:`blurvid.cli.main` (the real console entry
point, so the exit codes are the real ones: 0 ok, 1 some files failed, 2 usage / set-up problem).

The networks are tiny and untrained (see conftest.py): these tests check files on disk, sizes, metadata,
messages and exit codes, not image quality. Photos are tiny (37x53) to keep the file fast.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import H, W, corrupt_exif_tiff, frame_durations, image_f32, image_u8, save_image
from PIL import Image

import blurvid
import blurvid.io
from blurvid import cli, pipeline
from blurvid.io import read_photo, write_photo

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
LOGO = np.zeros((H, W, 4), np.uint8)  # a red square on transparency, green stored under it
LOGO[..., 1] = 255
LOGO[8:24, 8:24] = (200, 30, 30, 255)


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        """The non-blank lines written to stderr."""
        return [line for line in self.err.splitlines() if line.strip()]

    def assert_no_traceback(self) -> None:
        assert "Traceback" not in self.out + self.err, self.out + self.err


def run(capsys: pytest.CaptureFixture[str], *args: object) -> Result:
    """``blurvid ARGS...`` in this process, through cli.main (as the console script runs it)."""
    capsys.readouterr()  # drop anything printed before
    try:
        cli.main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = 0 if e.code is None else e.code
    out, err = capsys.readouterr()
    assert isinstance(code, int), code
    return Result(code, _ANSI.sub("", out), _ANSI.sub("", err))


def size_of(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


def frame_count(path: Path) -> int:
    with Image.open(path) as im:
        return int(getattr(im, "n_frames", 1))


# ============================================================================ deblur: where outputs go


def test_deblur_writes_sharp_photo_beside_the_input(tiny_weights, tmp_path, capsys):
    photo = save_image(tmp_path / "photo.jpg", quality=95)
    r = run(capsys, "deblur", photo)
    assert r.code == 0, r
    sharp = tmp_path / "photo_sharp.jpg"
    assert sharp.is_file()
    with Image.open(sharp) as im:
        assert im.format == "JPEG"
        assert im.size == (W, H)
        assert im.mode == "RGB"
    assert "1 written" in r.out
    assert str(sharp) in r.out
    r.assert_no_traceback()


def test_deblur_writes_what_the_network_makes(tiny_weights, tmp_path, capsys):
    """No test looked at the pixels the CLI writes: writing the input back unchanged passed them all."""
    import torch

    photo = save_image(tmp_path / "photo.png")
    r = run(capsys, "deblur", photo, "--precision", "fp32")
    assert r.code == 0, r
    got = np.asarray(Image.open(tmp_path / "photo_sharp.png")).astype(int)
    pixels = read_photo(photo).pixels
    want = blurvid.io.to_uint8(pipeline.Deblurrer(pipeline.load_model("dm"), torch.device("cpu"))(pixels))
    assert np.abs(got - want).max() <= 1
    assert np.abs(got - blurvid.io.to_uint8(pixels)).mean() > 1  # it did change the photo


def test_deblur_to_a_single_output_file(tiny_weights, tmp_path, capsys):
    photo = save_image(tmp_path / "photo.jpg")
    out = tmp_path / "result" / "out.png"  # the missing folder is created
    r = run(capsys, "deblur", photo, "-o", out)
    assert r.code == 0, r
    with Image.open(out) as im:
        assert im.format == "PNG"
        assert im.size == (W, H)
    assert not (tmp_path / "photo_sharp.jpg").exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.png"]  # no temporary file left


def _photo_tree(root: Path) -> None:
    save_image(root / "a.png", seed=1)
    save_image(root / "b.jpg", seed=2)
    save_image(root / "sub" / "c.png", seed=3)
    (root / "notes.txt").write_text("not a photo")


def test_deblur_folder_to_output_folder(tiny_weights, tmp_path, capsys):
    photos, out = tmp_path / "photos", tmp_path / "out"
    _photo_tree(photos)
    r = run(capsys, "deblur", f"{photos}{os.sep}", "-o", f"{out}{os.sep}")
    assert r.code == 0, r
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "a_sharp.png",
        "b_sharp.jpg",
    ]  # not recursive: sub/ is left alone; notes.txt is not a photo
    assert size_of(out / "a_sharp.png") == (W, H)
    assert "2 written" in r.out


def test_deblur_recursive_mirrors_the_tree(tiny_weights, tmp_path, capsys):
    photos, out = tmp_path / "photos", tmp_path / "out"
    _photo_tree(photos)
    r = run(capsys, "deblur", photos, "-r", "-o", out)
    assert r.code == 0, r
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "a_sharp.png",
        "b_sharp.jpg",
        "sub/c_sharp.png",
    ]
    assert size_of(out / "sub" / "c_sharp.png") == (W, H)
    assert "3 written" in r.out


def test_deblur_glob_pattern(tiny_weights, tmp_path, capsys):
    photos, out = tmp_path / "photos", tmp_path / "out"
    _photo_tree(photos)
    save_image(photos / "d.png", seed=4)
    r = run(capsys, "deblur", f"{photos}/*.png", "-o", out)  # quoted: the program expands it
    assert r.code == 0, r
    assert sorted(p.name for p in out.iterdir()) == ["a_sharp.png", "d_sharp.png"]
    # beside the inputs when -o is not given
    r = run(capsys, "deblur", f"{photos}/*.jpg")
    assert r.code == 0, r
    assert (photos / "b_sharp.jpg").is_file()


def test_deblur_glob_without_match_fails(tiny_weights, tmp_path, capsys):
    r = run(capsys, "deblur", f"{tmp_path}/*.png")
    assert r.code == 1, r
    assert r.err_lines == [f"error: {tmp_path}/*.png: no image matches this pattern"]
    r.assert_no_traceback()


def test_deblur_unicode_and_spaces_in_paths(tiny_weights, tmp_path, capsys):
    photo = save_image(tmp_path / "мои фото" / "фото 1.jpg")
    r = run(capsys, "deblur", photo)
    assert r.code == 0, r
    sharp = photo.with_name("фото 1_sharp.jpg")
    assert size_of(sharp) == (W, H)
    assert str(sharp) in r.out


def test_deblur_names_with_brackets_are_printed_verbatim(tiny_weights, tmp_path, capsys):
    """File names are not rich markup: '[draft]' must be printed as is, '[/b]' must not crash."""
    good = save_image(tmp_path / "trip [final].png")
    bad = tmp_path / "holiday [draft].jpg"
    bad.write_text("not a jpeg")
    r = run(capsys, "deblur", good, bad)
    assert r.code == 1, r
    assert str(tmp_path / "trip [final]_sharp.png") in r.out
    assert len(r.err_lines) == 1 and str(bad) in r.err_lines[0]
    r.assert_no_traceback()

    missing = f"{tmp_path}/a[/b].jpg"
    r = run(capsys, "deblur", missing)
    assert r.code == 1, r
    assert len(r.err_lines) == 1 and missing in r.err_lines[0]
    r.assert_no_traceback()


# ============================================================================ deblur: metadata


def test_exif_orientation_is_applied(tiny_weights, tmp_path, capsys):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    exif[0x010F] = "BlurCam"  # Make
    photo = save_image(tmp_path / "rot.jpg", exif=exif.tobytes())
    r = run(capsys, "deblur", photo)
    assert r.code == 0, r
    with Image.open(tmp_path / "rot_sharp.jpg") as im:
        assert im.size == (H, W)  # upright: width and height swapped
        out_exif = im.getexif()
    assert out_exif.get(0x0112) == 1
    assert out_exif.get(0x010F) == "BlurCam"


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_icc_profile_is_kept(tiny_weights, tmp_path, capsys, suffix):
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    photo = save_image(tmp_path / f"icc{suffix}", icc_profile=icc)
    r = run(capsys, "deblur", photo)
    assert r.code == 0, r
    with Image.open(tmp_path / f"icc_sharp{suffix}") as im:
        assert im.info.get("icc_profile") == icc


def test_16bit_png_gives_16bit_png(tiny_weights, tmp_path, capsys):
    photo = write_photo(tmp_path / "deep.png", image_f32(), bit_depth=16)
    assert read_photo(photo).bit_depth == 16
    r = run(capsys, "deblur", photo)
    assert r.code == 0, r
    sharp = read_photo(tmp_path / "deep_sharp.png")
    assert sharp.bit_depth == 16
    assert (sharp.height, sharp.width) == (H, W)
    assert not sharp.grey and sharp.alpha is None


def test_rgba_keeps_alpha(tiny_weights, tmp_path, capsys):
    rgba = np.dstack([image_u8(), np.linspace(0, 255, W, dtype=np.uint8)[None, :].repeat(H, 0)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    r = run(capsys, "deblur", tmp_path / "alpha.png")
    assert r.code == 0, r
    with Image.open(tmp_path / "alpha_sharp.png") as im:
        assert im.mode == "RGBA"
        assert im.size == (W, H)
        np.testing.assert_array_equal(np.asarray(im)[:, :, 3], rgba[:, :, 3])


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_grey_in_grey_out(tiny_weights, tmp_path, capsys, suffix):
    Image.fromarray(image_u8()).convert("L").save(tmp_path / f"grey{suffix}")
    r = run(capsys, "deblur", tmp_path / f"grey{suffix}")
    assert r.code == 0, r
    with Image.open(tmp_path / f"grey_sharp{suffix}") as im:
        assert im.mode == "L"
        assert im.size == (W, H)
    assert read_photo(tmp_path / f"grey_sharp{suffix}").grey


# ============================================================================ deblur: existing outputs


def test_existing_output_is_skipped_unless_overwrite(tiny_weights, tmp_path, capsys):
    photo = save_image(tmp_path / "photo.png")
    sharp = tmp_path / "photo_sharp.png"
    assert run(capsys, "deblur", photo).code == 0
    old = 1_000_000_000
    os.utime(sharp, (old, old))
    content = sharp.read_bytes()

    r = run(capsys, "deblur", photo)
    assert r.code == 0, r
    assert "0 written" in r.out and "1 skipped" in r.out and "--overwrite" in r.out
    assert sharp.stat().st_mtime == old
    assert sharp.read_bytes() == content

    r = run(capsys, "deblur", photo, "--overwrite")
    assert r.code == 0, r
    assert "1 written" in r.out and "skipped" not in r.out
    assert sharp.stat().st_mtime != old
    assert size_of(sharp) == (W, H)


@pytest.mark.parametrize(
    "extra",
    [["--suffix", ""], ["--suffix", "", "--overwrite"], ["-o", "{photo}"], ["-o", "{photo}", "--overwrite"]],
)
def test_output_never_overwrites_the_input(tiny_weights, tmp_path, capsys, extra):
    photo = save_image(tmp_path / "photo.png")
    before = photo.read_bytes()
    r = run(capsys, "deblur", photo, *[a.format(photo=photo) for a in extra])
    assert r.code == 1, r
    assert len(r.err_lines) == 1
    assert str(photo) in r.err_lines[0] and "overwrite the input" in r.err_lines[0]
    assert photo.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]
    r.assert_no_traceback()


def test_two_inputs_with_the_same_output_are_not_merged(tiny_weights, tmp_path, capsys):
    """a.jpg and a.png both map to a_sharp.png with --format png: the second must not overwrite the first."""
    photos, out = tmp_path / "photos", tmp_path / "out"
    save_image(photos / "a.jpg", seed=1)
    save_image(photos / "a.png", seed=2)
    r = run(capsys, "deblur", photos, "--format", "png", "-o", out)
    assert r.code == 1, r
    assert sorted(p.name for p in out.iterdir()) == ["a_sharp.png"]
    assert "1 written" in r.out and "1 failed" in r.out
    assert len(r.err_lines) == 1 and str(photos / "a.png") in r.err_lines[0]
    assert "same output" in r.err_lines[0]
    r.assert_no_traceback()


# ============================================================================ deblur: bad inputs


def _truncated_jpeg(path: Path) -> None:
    save_image(path, h=64, w=96)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("kind", "make"),
    [
        ("missing", lambda p: None),
        ("empty", lambda p: p.write_bytes(b"")),
        ("text", lambda p: p.write_text("hello, I am not a JPEG\n")),
        ("truncated", _truncated_jpeg),
    ],
)
def test_bad_input_is_one_line_and_exit_1(tiny_weights, tmp_path, capsys, kind, make):
    photo = tmp_path / f"{kind}.jpg"
    make(photo)
    r = run(capsys, "deblur", photo)
    assert r.code == 1, r
    assert len(r.err_lines) == 1, r.err
    assert str(photo) in r.err_lines[0] and r.err_lines[0].startswith("error: ")
    assert not (tmp_path / f"{kind}_sharp.jpg").exists()
    assert "1 failed" in r.out
    r.assert_no_traceback()


def test_folder_with_one_corrupt_photo(tiny_weights, tmp_path, capsys):
    photos, out = tmp_path / "photos", tmp_path / "out"
    for i, name in enumerate(["a.png", "b.jpg", "d.png"]):
        save_image(photos / name, seed=i)
    _truncated_jpeg(photos / "c.jpg")
    r = run(capsys, "deblur", photos, "-o", out)
    assert r.code == 1, r
    assert sorted(p.name for p in out.iterdir()) == ["a_sharp.png", "b_sharp.jpg", "d_sharp.png"]
    assert len(r.err_lines) == 1 and str(photos / "c.jpg") in r.err_lines[0]
    assert "3 written" in r.out and "1 failed" in r.out
    r.assert_no_traceback()


def test_bad_format_option_is_exit_2(tiny_weights, tmp_path, capsys):
    photo = save_image(tmp_path / "photo.jpg")
    r = run(capsys, "deblur", photo, "--format", "gif")
    assert r.code == 2, r
    assert len(r.err_lines) == 1 and "--format gif" in r.err_lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.jpg"]
    r.assert_no_traceback()


def test_train_export_of_a_non_safetensors_file_is_one_line(tmp_path, capsys):
    ckpt = tmp_path / "last.pt"
    ckpt.write_bytes(b"\x80\x02not a safetensors file")  # e.g. a training state (pickle)
    r = run(capsys, "train", "export", ckpt, "-o", tmp_path / "w")
    assert r.code != 0, r
    assert len(r.err_lines) == 1 and "last.pt" in r.err_lines[0], r
    assert not (tmp_path / "w").exists() or not any((tmp_path / "w").iterdir())
    r.assert_no_traceback()


def test_eval_of_a_non_safetensors_run_file_is_one_line(tmp_path, capsys):
    ckpt = tmp_path / "last.pt"
    ckpt.write_bytes(b"\x80\x02not a safetensors file")
    r = run(
        capsys, "eval", "deblur", "--run", ckpt, "--synth", save_image(tmp_path / "p.png"), "--count", "1"
    )
    assert r.code != 0, r
    assert len(r.err_lines) == 1 and "last.pt" in r.err_lines[0], r
    r.assert_no_traceback()


def test_deblur_format_option(tiny_weights, tmp_path, capsys):
    photo = save_image(tmp_path / "photo.jpg")
    r = run(capsys, "deblur", photo, "--format", "png", "--suffix", "-x")
    assert r.code == 0, r
    with Image.open(tmp_path / "photo-x.png") as im:
        assert im.format == "PNG" and im.size == (W, H)


def test_deblur_keeps_a_lossless_webp_lossless(tiny_weights, tmp_path, capsys):
    write_photo(tmp_path / "a.webp", image_f32(), quality=100)
    write_photo(tmp_path / "b.webp", image_f32(), quality=80)
    r = run(capsys, "deblur", tmp_path / "a.webp", tmp_path / "b.webp", "-o", tmp_path / "out")
    assert r.code == 0, r
    assert read_photo(tmp_path / "out" / "a_sharp.webp").compression == "lossless"
    assert read_photo(tmp_path / "out" / "b_sharp.webp").compression == "lossy"
    r = run(capsys, "deblur", tmp_path / "a.webp", "-o", tmp_path / "q.webp", "--quality", "90")
    assert r.code == 0, r
    assert read_photo(tmp_path / "q.webp").compression == "lossy"


def test_an_output_folder_that_cannot_be_written_fails_before_any_work(
    tiny_weights, tmp_path, capsys, monkeypatch
):
    import blurvid.io

    photos = [save_image(tmp_path / f"{c}.jpg") for c in "ab"]
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "locked").mkdir()
    locked = [save_image(tmp_path / "locked" / f"{c}.jpg") for c in "cd"]
    real_access = os.access
    monkeypatch.setattr(  # root may write anywhere, so the refusal is simulated
        cli.os, "access", lambda f, mode: Path(f) != tmp_path / "locked" and real_access(f, mode)
    )

    def no_work(path: object) -> None:
        raise AssertionError("a photo was read although its output cannot be written")

    monkeypatch.setattr(blurvid.io, "read_photo", no_work)
    # -o: one set-up line (exit 2), however many photos
    for out, why in [("file/sub", "file is not a folder"), ("locked/new", "no permission to write into")]:
        r = run(capsys, "deblur", *photos, "-o", tmp_path / out)
        assert r.code == 2, r
        assert len(r.err_lines) == 1 and why in r.err_lines[0] and "-o" in r.err_lines[0], r
        r.assert_no_traceback()
    # beside each input: a line for each photo that cannot get its result (exit 1)
    r = run(capsys, "deblur", *locked)
    assert r.code == 1, r
    assert len(r.err_lines) == 2 and all("no permission to write into" in line for line in r.err_lines), r
    assert "c.jpg" in r.err_lines[0] and "d.jpg" in r.err_lines[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg", "b.jpg", "file", "locked"]
    assert sorted(p.name for p in (tmp_path / "locked").iterdir()) == ["c.jpg", "d.jpg"]


@pytest.mark.parametrize(
    ("args", "out"),
    [
        (["deblur", "--format", "png", "-o", "x.jpg"], "x.jpg"),
        (["deblur", "--format", "webp", "-o", "x.tif"], "x.tif"),
        (["animate", "--format", "mp4", "-o", "c.gif"], "c.gif"),
        (["animate", "--format", "frames", "-o", "c.webp"], "c.webp"),
    ],
)
def test_a_format_that_contradicts_the_output_name_is_refused(tiny_weights, tmp_path, capsys, args, out):
    photo = save_image(tmp_path / "a.jpg")
    r = run(capsys, args[0], photo, *args[1:-1], tmp_path / out)
    assert r.code == 2, r
    assert len(r.err_lines) == 1 and "disagree" in r.err_lines[0], r
    assert not (tmp_path / out).exists()


def test_format_and_output_that_agree_are_taken(tiny_weights, tmp_path, capsys):
    photo = save_image(tmp_path / "a.jpg")
    r = run(capsys, "deblur", photo, "--format", "jpeg", "-o", tmp_path / "x.jpg")
    assert r.code == 0, r
    assert (tmp_path / "x.jpg").is_file()


def test_a_folder_without_photos_is_an_error_not_an_empty_success(tiny_weights, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no photos here")
    (tmp_path / "notes" / "trip").mkdir()
    save_image(tmp_path / "notes" / "trip" / "p.jpg")
    r = run(capsys, "deblur", tmp_path / "empty")
    assert r.code == 1 and len(r.err_lines) == 1 and "no photos in this folder" in r.err_lines[0], r
    assert "subfolders" not in r.err_lines[0]
    r = run(capsys, "deblur", tmp_path / "notes")
    assert r.code == 1 and "-r looks in its subfolders too" in r.err_lines[0], r
    r = run(capsys, "deblur", tmp_path / "notes", "-r")
    assert r.code == 0, r
    assert (tmp_path / "notes" / "trip" / "p_sharp.jpg").is_file()


def test_a_glob_takes_gif_which_a_folder_run_leaves_out(tiny_weights, tmp_path, capsys):
    Image.fromarray(image_u8()).save(tmp_path / "still.gif")
    save_image(tmp_path / "p.jpg")
    r = run(capsys, "deblur", str(tmp_path / "*.gif"), "-o", tmp_path / "g")
    assert r.code == 0, r
    assert [p.name for p in (tmp_path / "g").iterdir()] == ["still_sharp.png"]
    r = run(capsys, "deblur", tmp_path, "-o", tmp_path / "f")
    assert r.code == 0, r
    assert [p.name for p in (tmp_path / "f").iterdir()] == ["p_sharp.jpg"]


def test_debug_variable_adds_the_traceback_of_a_bad_file(tiny_weights, tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg at all")
    r = run(capsys, "deblur", bad)
    assert r.code == 1 and len(r.err_lines) == 1, r
    monkeypatch.setenv("BLURVID_DEBUG", "1")
    r = run(capsys, "deblur", bad)
    assert r.code == 1 and "Traceback" in r.err and "PhotoError" in r.err, r


# ============================================================================ animate

N = 5


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    return save_image(tmp_path / "photo.jpg")


def test_animate_gif(tiny_weights, tmp_path, capsys, photo):
    clip = tmp_path / "clip.gif"
    r = run(capsys, "animate", photo, "-o", clip, "--frames", N)
    assert r.code == 0, r
    with Image.open(clip) as im:
        assert im.format == "GIF"
        assert im.size == (W, H)
        assert im.n_frames == N
    assert str(clip) in r.out


def test_animate_mp4(tiny_weights, tmp_path, capsys, photo):
    import imageio.v3 as iio

    clip = tmp_path / "clip.mp4"
    r = run(capsys, "animate", photo, "-o", clip, "--frames", N)
    assert r.code == 0, r
    frames = iio.imread(clip, plugin="FFMPEG", index=None)
    assert frames.shape[0] == N
    assert frames.shape[1:3] == (H + 1, W + 1)  # H.264 4:2:0 needs even sides: odd ones are padded


def test_animate_webp(tiny_weights, tmp_path, capsys, photo):
    clip = tmp_path / "clip.webp"
    r = run(capsys, "animate", photo, "-o", clip, "--frames", N)
    assert r.code == 0, r
    with Image.open(clip) as im:
        assert im.format == "WEBP"
        assert im.size == (W, H)
        # libwebp merges identical consecutive frames (their durations add up): the playback time is N frames
        assert 2 <= im.n_frames <= N
    assert abs(sum(frame_durations(clip)) - N * 1000 / 12) <= N


def _frames(folder: Path) -> list[np.ndarray]:
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"frame_{i:04d}.png" for i in range(1, len(names) + 1)]
    return [np.asarray(Image.open(folder / n).convert("RGB")) for n in names]


def test_animate_frames_folder(tiny_weights, tmp_path, capsys, photo):
    r = run(capsys, "animate", photo, "-o", f"{tmp_path / 'frames'}{os.sep}", "--frames", N)
    assert r.code == 0, r
    frames = _frames(tmp_path / "frames")
    assert len(frames) == N
    assert all(f.shape == (H, W, 3) for f in frames)


def test_animate_boomerang_and_reverse(tiny_weights, tmp_path, capsys, photo):
    fwd, back, boom = tmp_path / "fwd", tmp_path / "back", tmp_path / "boom"
    assert run(capsys, "animate", photo, "-o", fwd, "-n", N).code == 0
    r = run(capsys, "animate", photo, "-o", back, "-n", N, "--reverse")
    assert r.code == 0, r
    r = run(capsys, "animate", photo, "-o", boom, "-n", N, "--boomerang")
    assert r.code == 0, r
    f, b, m = _frames(fwd), _frames(back), _frames(boom)
    assert len(b) == N
    assert len(m) == 2 * N - 2
    for x, y in zip(f, b[::-1], strict=True):  # --reverse plays the same frames backwards
        assert np.abs(x.astype(int) - y.astype(int)).max() <= 1
    for x, y in zip(m, f + f[-2:0:-1], strict=True):  # forward, then back without repeating the ends
        assert np.abs(x.astype(int) - y.astype(int)).max() <= 1


def test_animate_boomerang_gif(tiny_weights, tmp_path, capsys, photo):
    r = run(capsys, "animate", photo, "-o", tmp_path / "b.gif", "-n", N, "--boomerang")
    assert r.code == 0, r
    assert frame_count(tmp_path / "b.gif") == 2 * N - 2
    # played once, it comes back to where it started: the first frame ends it
    r = run(capsys, "animate", photo, "-o", tmp_path / "once", "-n", N, "--boomerang", "--once")
    assert r.code == 0, r
    once = _frames(tmp_path / "once")
    assert len(once) == 2 * N - 1
    assert np.abs(once[-1].astype(int) - once[0].astype(int)).max() <= 1


class _FlatFrames:
    """Stands in for the networks: frame ``i`` of ``n`` is flat grey ``i / (n - 1)``, so each frame's
    place in time can be read back from its brightness, also through H.264's losses."""

    deblurrer = None

    def frames(self, pixels, frames, on_tile=None, convert=None):  # type: ignore[no-untyped-def]
        for i in range(frames):
            yield convert(np.full_like(pixels, i / (frames - 1)))


def test_animate_boomerang_mp4(tiny_weights, tmp_path, capsys, monkeypatch, photo):
    """An MP4 plays once, so its boomerang comes back to the first frame: forward, then every frame
    back (2N - 1 frames), where a looping GIF leaves out the first one (its loop shows it)."""
    import imageio.v3 as iio

    monkeypatch.setattr(cli, "_runtime", lambda *a, **k: _FlatFrames())
    r = run(capsys, "animate", photo, "-o", tmp_path / "f.mp4", "-n", N)
    assert r.code == 0, r
    r = run(capsys, "animate", photo, "-o", tmp_path / "b.mp4", "-n", N, "--boomerang")
    assert r.code == 0, r
    fwd = iio.imread(tmp_path / "f.mp4", plugin="FFMPEG", index=None).astype(int)
    boom = iio.imread(tmp_path / "b.mp4", plugin="FFMPEG", index=None).astype(int)
    assert fwd.shape[0] == N and boom.shape[0] == 2 * N - 1
    levels = fwd.mean(axis=(1, 2, 3))
    assert (np.diff(levels) > 40).all(), levels  # the frames tell apart: their order is seen
    want = np.concatenate([fwd, fwd[-2::-1]])  # 0 1 2 3 4 3 2 1 0
    worst = np.abs(boom - want).max(axis=(1, 2, 3))  # per frame
    assert (worst <= 2).all(), worst


def test_animate_side_by_side_doubles_width(tiny_weights, tmp_path, capsys, photo):
    r = run(capsys, "animate", photo, "-o", tmp_path / "sbs.gif", "-n", 3, "--side-by-side")
    assert r.code == 0, r
    assert size_of(tmp_path / "sbs.gif") == (2 * W, H)


def test_animate_size_bounds_the_long_side(tiny_weights, tmp_path, capsys, photo):
    r = run(capsys, "animate", photo, "-o", tmp_path / "small.gif", "-n", 3, "--size", 32)
    assert r.code == 0, r
    w, h = size_of(tmp_path / "small.gif")
    assert max(w, h) == 32
    assert (w, h) == (32, round(H * 32 / W))


def test_animate_default_name_and_format(tiny_weights, tmp_path, capsys, photo):
    r = run(capsys, "animate", photo, "-n", 3)
    assert r.code == 0, r
    assert frame_count(tmp_path / "photo_motion.gif") == 3
    r = run(capsys, "animate", photo, "-n", 3, "--format", "frames")
    assert r.code == 0, r
    assert len(_frames(tmp_path / "photo_motion")) == 3


def test_animate_format_into_a_new_folder(tiny_weights, tmp_path, capsys, photo):
    """`-o new --format mp4`: the folder receives photo_motion.mp4 (not PNG frames, which the
    format did not ask for); without --format a new folder gets the frames."""
    r = run(capsys, "animate", photo, "-n", 3, "-o", tmp_path / "new", "--format", "mp4")
    assert r.code == 0, r
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["photo_motion.mp4"]
    r = run(capsys, "animate", photo, "-n", 3, "-o", tmp_path / "frames")
    assert r.code == 0, r
    assert len(_frames(tmp_path / "frames")) == 3


def test_animate_unknown_video_suffix_is_exit_2(tiny_weights, tmp_path, capsys, photo):
    r = run(capsys, "animate", photo, "-o", tmp_path / "clip.avi", "-n", 3)
    assert r.code == 2, r
    assert len(r.err_lines) == 1 and "clip.avi" in r.err_lines[0]
    assert not (tmp_path / "clip.avi").exists()
    r.assert_no_traceback()


@pytest.mark.parametrize("name", ["run.v2", "2024.06.01"])
def test_animate_into_a_new_folder_with_a_dot_in_its_name(tiny_weights, tmp_path, capsys, photo, name):
    """`-o run.v2` was refused as an unknown video format, though only 2-4 letter suffixes are typos."""
    r = run(capsys, "animate", photo, "-n", 3, "-o", tmp_path / name, "--format", "mp4")
    assert r.code == 0, r
    assert [p.name for p in (tmp_path / name).iterdir()] == ["photo_motion.mp4"]


def test_animate_flattens_transparency_onto_white(tiny_weights, tmp_path, capsys):
    """Transparent pixels came out as whatever colour was stored under them (green here)."""
    src = tmp_path / "logo.png"
    Image.fromarray(LOGO).save(src)
    r = run(capsys, "animate", src, "-n", 3, "-o", tmp_path / "f")
    assert r.code == 0, r
    assert r.err_lines == [f"warning: {src}: transparency is flattened onto white (the videos hold no alpha)"]
    frame = np.asarray(Image.open(tmp_path / "f" / "frame_0002.png")).astype(int)
    assert (np.abs(frame[-4:, -4:] - 255) <= 8).all()  # a transparent corner: white, not green
    assert frame[16, 16, 0] > 150 and frame[16, 16, 1] < 90


@pytest.mark.parametrize(("suffix", "w", "limit"), [(".webp", 16384, 16383), (".mp4", 16385, 16384)])
def test_animate_refuses_too_wide_videos_before_the_work(
    tiny_weights, tmp_path, capsys, monkeypatch, suffix, w, limit
):
    """A 17,000 px WebP failed with 'WebPEncodingError: 5' after all the frames were made; an MP4 one
    with ffmpeg's last line, not its cause."""
    src = save_image(tmp_path / "pano.png", h=4, w=w)

    class NoWork:
        def frames(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            pytest.fail("the frames were made")

    monkeypatch.setattr(cli, "_runtime", lambda *a, **k: NoWork())
    r = run(capsys, "animate", src, "--size", 0, "-n", 3, "-o", tmp_path / f"pano{suffix}")
    assert r.code == 1, r
    kind = "WebP" if suffix == ".webp" else "an MP4"
    assert r.err_lines == [
        f"error: {tmp_path / f'pano{suffix}'}: {'a ' if suffix == '.webp' else ''}{kind} holds at most {limit} px "
        f"a side, these frames are {w} x 4; use a smaller --size or another format"
    ]


@pytest.mark.parametrize(("suffix", "w", "limit"), [(".webp", 8192, 16383), (".mp4", 8193, 16384)])
def test_animate_side_by_side_counts_in_the_size_check(
    tiny_weights, tmp_path, capsys, monkeypatch, suffix, w, limit
):
    """--side-by-side puts the photo left of the video: frames twice as wide, which the check before
    the work must see (each panel alone fits)."""
    src = save_image(tmp_path / "pano.png", h=4, w=w)

    class NoWork:
        deblurrer = None

        def frames(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            pytest.fail("the frames were made")

    monkeypatch.setattr(cli, "_runtime", lambda *a, **k: NoWork())
    out = tmp_path / f"pano{suffix}"
    r = run(capsys, "animate", src, "--size", 0, "-n", 3, "-o", out, "--side-by-side")
    assert r.code == 1, r
    kind = "a WebP" if suffix == ".webp" else "an MP4"
    assert r.err_lines == [
        f"error: {out}: {kind} holds at most {limit} px a side, these frames are {2 * w} x 4; "
        "use a smaller --size or another format"
    ]
    assert not out.exists()


# ============================================================================ set-up problems, misc


@pytest.mark.parametrize("command", ["deblur", "animate"])
def test_no_trained_weights_is_exit_2(no_weights, tmp_path, capsys, photo, command):
    before = sorted(p.name for p in tmp_path.iterdir())
    r = run(capsys, command, photo)
    assert r.code == 2, r
    assert len(r.err_lines) == 1 and "no trained" in r.err_lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    r.assert_no_traceback()


def test_models_without_weights_is_exit_1(no_weights, capsys):
    r = run(capsys, "models")
    assert r.code == 1 and len(r.err_lines) == 1, r
    assert "no checkpoint is registered" in r.err_lines[0] and "reinstall blurvid" in r.err_lines[0]


def test_models_lists_the_tiny_checkpoints(tiny_weights, capsys):
    r = run(capsys, "models")
    assert r.code == 0, r
    assert "verified" in r.out
    for arch in ("dm", "bie", "rvd"):
        row = next(line for line in r.out.splitlines() if f"tiny-{arch}" in line)
        assert "yes" in row and "cache" in row and "MIT" in row


def test_models_exits_1_when_a_default_checkpoint_is_unusable(tiny_weights, tmp_path, capsys):
    """`blurvid models` is a health check: a corrupt or missing default checkpoint is exit 1 and a line."""
    from blurvid import weights

    path = weights.cache_dir() / "tiny-dm.safetensors"
    backup = tmp_path / "tiny-dm.safetensors"
    shutil.copy(path, backup)
    try:
        path.write_bytes(b"")
        r = run(capsys, "models")
        assert r.code == 1 and "NO: corrupt" in r.out, r
        row = next(line for line in r.out.splitlines() if "tiny-dm" in line)
        assert "0 B" in row  # a 0-byte file has a size
        assert r.err_lines == [  # the tests run offline
            f"not installed or not verified: tiny-dm; HF_HUB_OFFLINE is set: put the files into {weights.cache_dir()}, "
            "or unset it for `blurvid download`"
        ]
        with pytest.MonkeyPatch.context() as mp:
            mp.delenv("HF_HUB_OFFLINE", raising=False)
            r = run(capsys, "models")
        assert r.err_lines == [
            "not installed or not verified: tiny-dm; `blurvid download` fetches them (from blurvid/blurvid-weights)"
        ]
        shutil.copy(backup, path)
        path.chmod(0)  # intact but unreadable: not "corrupt", which tells the user to delete it
        if os.access(path, os.R_OK):
            pytest.skip("running as root: a file without permissions is still readable")
        r = run(capsys, "models")
        assert r.code == 1 and "NO: unreadable" in r.out and "corrupt" not in r.out, r
    finally:
        path.chmod(0o644)
        shutil.copy(backup, path)


def test_download_tries_every_checkpoint_and_models_shows_where_they_are(tiny_weights, capsys):
    r = run(capsys, "download", "tiny-dm", "no-such-checkpoint", "tiny-bie")
    assert r.code == 2, r
    assert len(r.err_lines) == 1 and "no-such-checkpoint" in r.err_lines[0], r
    assert "tiny-dm:" in r.out and "tiny-bie:" in r.out  # the one after the failure was still tried
    r = run(capsys, "models")
    assert any(
        line.startswith("tiny-rvd: ") and line.endswith("tiny-rvd.safetensors") for line in r.out.splitlines()
    )


def test_help_and_version(capsys):
    r = run(capsys, "--help")
    assert r.code == 0, r
    for command in ("deblur", "animate", "models", "download"):
        assert command in r.out
    r = run(capsys, "deblur", "--help")
    assert r.code == 0 and "--overwrite" in r.out
    r = run(capsys, "--version")
    assert r.code == 0, r
    assert r.out.strip() == f"blurvid {blurvid.__version__}"


def test_unknown_option_is_a_usage_error(capsys):
    r = run(capsys, "deblur", "--no-such-option", "x.jpg")
    assert r.code == 2, r
    r.assert_no_traceback()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_gpu_is_exit_2(tiny_weights, tmp_path, capsys, photo):
    r = run(capsys, "deblur", photo, "--device", "cuda")
    assert r.code == 2, r
    assert len(r.err_lines) == 1
    assert "cuda" in r.err_lines[0].lower() and "no CUDA GPU" in r.err_lines[0]
    assert not (tmp_path / "photo_sharp.jpg").exists()
    r.assert_no_traceback()


def test_quiet_prints_nothing_on_success(tiny_weights, tmp_path, capsys, photo):
    r = run(capsys, "deblur", photo, "--quiet")
    assert r.code == 0, r
    assert r.out == ""
    assert r.err == ""
    assert (tmp_path / "photo_sharp.jpg").is_file()
    r = run(capsys, "animate", photo, "-q", "-n", 3, "-o", tmp_path / "q.gif")
    assert r.code == 0, r
    assert r.out == "" and r.err == ""
    assert frame_count(tmp_path / "q.gif") == 3


def test_quiet_still_prints_errors(tiny_weights, tmp_path, capsys):
    r = run(capsys, "deblur", tmp_path / "missing.jpg", "-q")
    assert r.code == 1, r
    assert r.out == ""
    assert len(r.err_lines) == 1 and "missing.jpg" in r.err_lines[0]


def test_python_dash_m_blurvid_help():
    proc = subprocess.run(
        [sys.executable, "-m", "blurvid", "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "deblur" in proc.stdout and "animate" in proc.stdout


def test_folder_rerun_does_not_take_its_own_outputs_as_inputs(tiny_weights, tmp_path):
    from blurvid.cli import main

    d = tmp_path / "photos"
    d.mkdir()
    save_image(d / "a.png")
    for _ in range(2):
        with pytest.raises(SystemExit) as e:
            main(["deblur", str(d), "-q"])
        assert e.value.code in (0, None)
    assert sorted(p.name for p in d.iterdir()) == ["a.png", "a_sharp.png"]


# ============================================================================ session 19 audit fixes


def test_half_runs_on_the_cpu(tiny_weights, tmp_path, capsys, photo):
    """--half is fp16 on CUDA and bf16 on the CPU (it was refused on any machine without CUDA)."""
    for extra in ([], ["--frames", 2]):
        r = run(capsys, "animate" if extra else "deblur", photo, "--half", "--device", "cpu", *extra)
        assert r.code == 0, r
    assert (tmp_path / "photo_sharp.jpg").is_file() and (tmp_path / "photo_motion.gif").is_file()


def test_an_input_that_is_another_inputs_output_is_left_out_and_never_overwritten(
    tiny_weights, tmp_path, capsys
):
    """`blurvid deblur *.jpg` after a first run names the results too: they are left out (no
    x_sharp_sharp), the originals skipped as done; with --overwrite the named result is not replaced."""
    a = save_image(tmp_path / "c.png", seed=1)
    b = save_image(tmp_path / "c_sharp.png", seed=2)
    before = b.read_bytes()
    r = run(capsys, "deblur", a, b)
    assert r.code == 0, r
    assert "0 written, 1 skipped" in r.out and "1 left out" in r.out
    r = run(capsys, "deblur", a, b, "--overwrite")
    assert r.code == 1
    assert len(r.err_lines) == 1
    assert r.err_lines[0].startswith(f"error: {a}: its output {b} is named as an input; not overwriting it")
    assert "quote the pattern" in r.err_lines[0]
    assert b.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "c_sharp.png"]


def test_folder_runs_leave_out_both_commands_results_and_say_so(tiny_weights, tmp_path, capsys):
    d = tmp_path / "photos"
    save_image(d / "a.png")
    save_image(d / "b_sharp.png")
    save_image(d / "c_motion.webp")
    save_image(d / "d_motion" / "frame_0001.png")
    save_image(d / "slow_motion.jpg")  # a photo, not a clip
    r = run(capsys, "deblur", d, "-r")
    assert r.code == 0, r
    assert "2 written" in r.out and "3 left out (blurvid's own results)" in r.out
    r = run(capsys, "animate", d, "--frames", 2)
    assert r.code == 0, r
    assert sorted(p.name for p in d.glob("*_motion.gif")) == ["a_motion.gif", "slow_motion_motion.gif"]


def test_an_input_named_twice_is_processed_once(tiny_weights, tmp_path, capsys, photo):
    r = run(capsys, "deblur", photo, photo, str(tmp_path / ".." / tmp_path.name / photo.name))
    assert r.code == 0, r
    assert "1 written" in r.out and r.out.count("photo_sharp.jpg") == 1


def test_recursive_runs_skip_hidden_folders(tiny_weights, tmp_path, capsys):
    d = tmp_path / "photos"
    save_image(d / "a.png")
    save_image(d / ".cache" / "b.png")
    r = run(capsys, "deblur", d, "-r", "-o", tmp_path / "out")
    assert r.code == 0, r
    assert [p.name for p in (tmp_path / "out").rglob("*.png")] == ["a_sharp.png"]


@pytest.mark.parametrize(("command", "name"), [("deblur", "multi.png"), ("animate", "multi.gif")])
def test_several_inputs_into_one_file_name_is_exit_2(tiny_weights, tmp_path, capsys, command, name):
    a, b = save_image(tmp_path / "a.png"), save_image(tmp_path / "b.png")
    r = run(capsys, command, a, b, "-o", tmp_path / name)
    assert r.code == 2
    assert r.err_lines == [
        f"error: -o {tmp_path / name}: several inputs need an output folder, not a file name"
    ]
    assert not (tmp_path / name).exists()


def test_animate_into_an_existing_folder(tiny_weights, tmp_path, capsys, photo):
    """An empty folder, or one of frames from an earlier run, receives the PNG frames unless another
    --format is asked for; any other folder receives <name>_motion.<format> (it used to skip silently)."""
    (tmp_path / "empty").mkdir()
    assert run(capsys, "animate", photo, "-o", tmp_path / "empty", "--frames", 2).code == 0
    assert sorted(p.name for p in (tmp_path / "empty").iterdir()) == ["frame_0001.png", "frame_0002.png"]
    r = run(capsys, "animate", photo, "-o", tmp_path / "empty", "--frames", 3, "--overwrite")
    assert r.code == 0, r
    assert len(list((tmp_path / "empty").iterdir())) == 3  # the frames replaced
    r = run(capsys, "animate", photo, "-o", tmp_path / "empty", "--frames", 2, "--format", "gif")
    assert r.code == 0, r
    assert frame_count(tmp_path / "empty" / "photo_motion.gif") == 2
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "notes.txt").write_text("mine")
    assert run(capsys, "animate", photo, "-o", tmp_path / "clips", "--frames", 2).code == 0
    assert frame_count(tmp_path / "clips" / "photo_motion.gif") == 2


def test_animate_never_replaces_frames_it_did_not_write_nor_its_input(tiny_weights, tmp_path, capsys, photo):
    """A folder of frame_NNNN.png files extracted by another program (ffmpeg) is the user's: it receives
    <name>_motion.gif, even with --overwrite; blurvid's own frames folder is replaced, except when the
    input lies inside it."""
    user = tmp_path / "extracted"
    for i in (1, 2, 3):
        save_image(user / f"frame_{i:04d}.png", seed=i)
    before = {p.name: p.read_bytes() for p in user.iterdir()}
    r = run(capsys, "animate", photo, "-o", user, "--frames", 2, "--overwrite")
    assert r.code == 0, r
    assert frame_count(user / "photo_motion.gif") == 2
    assert {p.name: p.read_bytes() for p in user.iterdir() if p.suffix == ".png"} == before
    own = tmp_path / "own"
    assert run(capsys, "animate", photo, "-o", own, "--frames", 2).code == 0
    src = own / "frame_0001.png"
    kept = src.read_bytes()
    r = run(capsys, "animate", src, "-o", own, "--frames", 3, "--overwrite")
    assert r.code == 1 and "the output would overwrite the input" in r.err, r
    assert src.read_bytes() == kept and len(list(own.iterdir())) == 2


def test_animate_converts_a_wide_gamut_photo_to_srgb(tiny_weights, tmp_path, capsys):
    from conftest import wide_gamut_icc

    icc = wide_gamut_icc()
    flat = np.zeros((H, W, 3), np.uint8)
    flat[:] = (220, 60, 40)
    Image.fromarray(flat).save(tmp_path / "p3.png", icc_profile=icc)
    Image.fromarray(flat).save(tmp_path / "srgb.png")
    for name in ("p3", "srgb"):
        assert (
            run(capsys, "animate", tmp_path / f"{name}.png", "-o", tmp_path / name, "--frames", 2).code == 0
        )
    p3 = np.asarray(Image.open(tmp_path / "p3" / "frame_0001.png")).astype(int)
    srgb = np.asarray(Image.open(tmp_path / "srgb" / "frame_0001.png")).astype(int)
    # the same stored values, shown in sRGB: red up, green and blue down, as lcms converts (241, 30, 4)
    diff = (p3 - srgb)[H // 2, W // 2]
    assert diff[0] > 10 and diff[1] < -15 and diff[2] < -15, diff


def test_sigterm_while_writing_leaves_no_temporary_file(tiny_weights, tmp_path, capsys, photo, monkeypatch):
    """SIGTERM (or SIGHUP, Ctrl-C) mid-write: one line, exit 128 + 15, nothing half-written left."""
    import signal

    import blurvid.io as bio

    real = bio._save_jpeg
    calls = []

    def killed_midway(image, tmp, **options):  # the second photo's write is stopped
        real(image, tmp, **options)
        calls.append(tmp)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
            raise AssertionError("the SIGTERM handler should have stopped the write")

    monkeypatch.setattr(bio, "_save_jpeg", killed_midway)
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    for name in ("a.jpg", "b.jpg"):
        shutil.copy(photo, shoot / name)
    before = signal.getsignal(signal.SIGTERM)
    r = run(capsys, "deblur", shoot, "-o", tmp_path / "out")
    assert r.code == 128 + signal.SIGTERM
    assert r.err_lines == [
        "1 of 2 written before the stop",
        "stopped by SIGTERM; no partly written output was left",
    ]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a_sharp.jpg"]
    assert signal.getsignal(signal.SIGTERM) is before  # restored after main()


def test_deblur_keeps_the_xmp_rating_and_keywords(tiny_weights, tmp_path, capsys):
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description xmp:Rating="5"/></rdf:RDF></x:xmpmeta>'
    photo = save_image(tmp_path / "rated.jpg", xmp=xmp)
    assert run(capsys, "deblur", photo, "--format", "png").code == 0
    assert read_photo(tmp_path / "rated_sharp.png").xmp == xmp


def test_half_with_another_precision_is_refused(tiny_weights, photo, capsys):
    r = run(capsys, "deblur", photo, "--half", "--precision", "fp32")
    assert r.code == 2 and len(r.err_lines) == 1 and "--half and --precision fp32" in r.err_lines[0]


def test_a_corrupt_package_copy_is_one_warning_and_quiet_hides_it(tiny_weights, tmp_path, photo, capsys):
    """The verified cache copy is used; stderr names the skipped file once ('warning: ...'); -q: nothing."""
    from blurvid import weights

    (weights.package_weights_dir() / "tiny-dm.safetensors").write_bytes(b"not the checkpoint")
    r = run(capsys, "deblur", photo, "-o", tmp_path / "a.png")
    assert r.code == 0 and len(r.err_lines) == 1, r
    assert r.err_lines[0].startswith("warning: checkpoint tiny-dm: skipped the corrupt copy ")
    assert str(weights.cache_dir() / "tiny-dm.safetensors") in r.err_lines[0]
    pipeline.clear_model_cache()
    r = run(capsys, "deblur", photo, "-o", tmp_path / "b.png", "-q")
    assert r.code == 0 and r.err_lines == [] and (tmp_path / "b.png").is_file()


def test_a_name_too_long_for_the_file_system_is_one_line_and_the_run_goes_on(tiny_weights, tmp_path, capsys):
    shoot = tmp_path / "shoot"
    save_image(shoot / "normal.jpg")
    save_image(shoot / ("L" * 249 + ".jpg"))  # fits; its output name (+ "_sharp") does not
    r = run(capsys, "deblur", shoot)
    assert r.code == 1 and (shoot / "normal_sharp.jpg").is_file(), r
    assert [line for line in r.err_lines if "error" in line or "too long" in line] == [
        f"error: {shoot / ('L' * 249 + '.jpg')}: cannot write {shoot / ('L' * 249 + '_sharp.jpg')}: File name too long"
    ]
    r = run(capsys, "deblur", "x" * 300 + ".jpg")
    assert r.code == 1 and r.err_lines[-1].endswith("File name too long"), r
    r = run(capsys, "deblur", shoot / "normal.jpg", "-o", tmp_path / ("y" * 300 + ".jpg"))
    assert r.code == 2 and len(r.err_lines) == 1 and r.err_lines[0].endswith("File name too long"), r
    r.assert_no_traceback()


def test_a_file_name_of_another_format_is_refused_not_made_a_folder(tiny_weights, tmp_path, photo, capsys):
    for cmd, name in (("deblur", "x.gif"), ("deblur", "x.heic"), ("animate", "clip.avi")):
        r = run(capsys, cmd, photo, "-o", tmp_path / name)
        assert r.code == 2 and f"does not write {Path(name).suffix} files" in r.err_lines[0], r
        assert not (tmp_path / name).exists()


def test_a_mistyped_suffix_for_one_photo_is_refused_but_dotted_folder_names_work(
    tiny_weights, tmp_path, photo, capsys
):
    r = run(capsys, "deblur", photo, "-o", tmp_path / "photo.jgp")
    assert r.code == 2 and r.err_lines == [
        f"error: -o {tmp_path / 'photo.jgp'}: this command does not write .jgp files (see --help); "
        "for a new folder, create it first"
    ]
    assert not (tmp_path / "photo.jgp").exists()
    (tmp_path / "made.abc").mkdir()  # an existing folder with a dot is a folder
    for folder in ("made.abc", "run.v2"):  # so is a new one whose suffix is no file extension
        assert run(capsys, "deblur", photo, "-o", tmp_path / folder).code == 0
        assert size_of(tmp_path / folder / "photo_sharp.jpg") == (W, H)
    second = save_image(tmp_path / "second.png")
    assert run(capsys, "deblur", photo, second, "-o", tmp_path / "batch.abc").code == 0  # several: a folder
    assert sorted(p.name for p in (tmp_path / "batch.abc").iterdir()) == [
        "photo_sharp.jpg",
        "second_sharp.png",
    ]


def test_a_gif_or_suffixless_photo_gets_a_png_result_and_an_mpo_a_jpeg(tiny_weights, tmp_path, capsys):
    gif = save_image(tmp_path / "still.gif")
    bare = tmp_path / "scan"
    save_image(tmp_path / "scan.png").rename(bare)
    mpo = tmp_path / "stereo.mpo"  # a stereo camera's file: two JPEG pictures, the first one the photo
    first, second = Image.fromarray(image_u8()), Image.fromarray(image_u8(seed=1))
    first.save(mpo, format="MPO", save_all=True, append_images=[second])
    for src, out in ((gif, "still_sharp.png"), (bare, "scan_sharp.png"), (mpo, "stereo_sharp.jpg")):
        assert run(capsys, "deblur", src).code == 0
        assert size_of(tmp_path / out) == (W, H)
    with Image.open(tmp_path / "stereo_sharp.jpg") as im:
        assert im.format == "JPEG"


def test_a_folder_run_and_a_glob_take_mpo_photos(tiny_weights, tmp_path, capsys):
    src = tmp_path / "card"
    src.mkdir()
    Image.fromarray(image_u8()).save(
        src / "L.MPO", format="MPO", save_all=True, append_images=[Image.fromarray(image_u8(seed=1))]
    )
    save_image(src / "a.jpg")
    r = run(capsys, "deblur", src, "-o", tmp_path / "out")
    assert r.code == 0, r
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["L_sharp.jpg", "a_sharp.jpg"]
    r = run(capsys, "deblur", f"{src}/*.MPO", "-o", tmp_path / "out2")
    assert r.code == 0 and [p.name for p in (tmp_path / "out2").iterdir()] == ["L_sharp.jpg"], r


def test_a_recursive_glob_mirrors_the_tree_below_its_fixed_part(tiny_weights, tmp_path, capsys):
    for sub in ("", "sub/"):
        save_image(tmp_path / "tree" / f"{sub}x.jpg")
    r = run(capsys, "deblur", f"{tmp_path}/tree/**/*.jpg", "-r", "-o", tmp_path / "out")
    assert r.code == 0, r
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.jpg")) == [
        "sub/x_sharp.jpg",
        "x_sharp.jpg",
    ]


def test_blurvid_debug_shows_the_traceback_behind_a_one_line_error(
    tiny_weights, tmp_path, photo, capsys, monkeypatch
):
    r = run(capsys, "deblur", photo, "-o", tmp_path / ("y" * 300 + ".jpg"))
    assert r.code == 2 and len(r.err_lines) == 1
    monkeypatch.setenv("BLURVID_DEBUG", "1")
    r = run(capsys, "deblur", photo, "-o", tmp_path / ("y" * 300 + ".jpg"))
    assert (
        r.code == 2 and "Traceback" in r.err and "OSError" in r.err and "File name too long" in r.err_lines[0]
    )


# ============================================================================ files blurvid does not read


RAW_LINE = (
    "camera RAW files are not supported; export a TIFF (16-bit keeps the most) or JPEG from your RAW "
    "converter first"
)


@pytest.mark.parametrize("command", ["deblur", "animate"])
def test_a_camera_raw_file_is_one_line_saying_what_to_do(tiny_weights, tmp_path, capsys, command):
    raw = tmp_path / "IMG_0001.CR2"
    raw.write_bytes(np.random.default_rng(0).bytes(4000))
    dng = (
        tmp_path / "renamed_dng.tif"
    )  # a TIFF Pillow opens, at its preview: the DNGVersion tag gives it away
    Image.fromarray(image_u8()).save(dng, tiffinfo={254: 1, 50706: b"\x01\x04\x00\x00"})
    for path in (raw, dng):
        r = run(capsys, command, path)
        assert r.code == 1, r
        assert r.err_lines == [f"error: {path}: {RAW_LINE}"], r
        r.assert_no_traceback()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["IMG_0001.CR2", "renamed_dng.tif"]


def test_first_few_names_then_how_many_more():
    """The file list under "left out (not supported)": three names, then a count of the rest."""
    from blurvid.text import first_few

    assert first_few(["a", "b", "c"]) == "a, b, c"  # exactly three: no "and 0 more"
    assert first_few(["a", "b", "c", "d", "e"]) == "a, b, c and 2 more"
    assert first_few(["a", "b"], n=1) == "a and 1 more" and first_few([]) == ""


def test_a_folder_run_leaves_out_raw_and_heic_files_and_counts_them(tiny_weights, tmp_path, capsys):
    """RAW + JPEG is how many photographers shoot: the JPEGs are deblurred, the RAW files counted."""
    shoot = tmp_path / "shoot"
    save_image(shoot / "IMG_0001.JPG")
    for name in ("IMG_0001.CR2", "IMG_0002.CR2", "IMG_0003.HEIC"):
        (shoot / name).write_bytes(b"\0" * 100)
    r = run(capsys, "deblur", shoot)
    assert r.code == 0, r
    assert (
        "1 written, 2 camera RAW files left out (not supported), 1 HEIC file left out (not supported)"
        in r.out
    )
    assert (shoot / "IMG_0001_sharp.JPG").is_file() and r.err_lines == []


def test_a_folder_or_glob_of_only_raw_files_is_an_error_saying_what_to_do(tiny_weights, tmp_path, capsys):
    raws = tmp_path / "raws"
    raws.mkdir()
    for name in ("DSC_0001.NEF", "DSC_0002.nef"):
        (raws / name).write_bytes(b"\0" * 100)
    r = run(capsys, "deblur", raws)
    assert r.code == 1 and len(r.err_lines) == 1, r
    assert r.err_lines[0].startswith(f"error: {raws}: no photos in this folder (")
    assert r.err_lines[0].endswith(
        "; camera RAW files are not supported (2 found); export a TIFF (16-bit keeps the most) or JPEG from "
        "your RAW converter first"
    ), r
    r = run(capsys, "deblur", str(raws / "*.NEF"))
    assert r.code == 1 and len(r.err_lines) == 1, r
    assert r.err_lines[0].startswith(f"error: {raws / '*.NEF'}: no image matches this pattern; camera RAW")
    assert sorted(p.name for p in raws.iterdir()) == ["DSC_0001.NEF", "DSC_0002.nef"]


@pytest.mark.skipif(not blurvid.io.AVIF_SUPPORTED, reason="this Pillow reads and writes no AVIF")
def test_an_avif_gives_an_avif_and_a_folder_takes_avif(tiny_weights, tmp_path, capsys):
    """The output format defaults to the input's: an AVIF gave a PNG."""
    shoot = tmp_path / "shoot"
    save_image(shoot / "a.avif", quality=90)
    save_image(shoot / "b.jpg")
    r = run(capsys, "deblur", shoot, "-o", tmp_path / "out")
    assert r.code == 0 and "2 written" in r.out, r
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_sharp.avif", "b_sharp.jpg"]
    assert read_photo(tmp_path / "out" / "a_sharp.avif").format == "AVIF"
    r = run(capsys, "deblur", shoot / "b.jpg", "--format", "avif", "--quality", "50", "--suffix", "_small")
    assert r.code == 0, r
    with Image.open(shoot / "b_small.avif") as im:
        assert im.format == "AVIF" and im.size == (W, H)


def test_library_warnings_are_one_line_hidden_by_quiet_and_detailed_by_debug(
    tiny_weights, tmp_path, capsys, monkeypatch
):
    """A TIFF with corrupt EXIF printed Pillow's raw two-line UserWarning in a normal run."""
    path = corrupt_exif_tiff(tmp_path / "odd.tif")
    line = f"warning: {path}: Pillow: Corrupt EXIF data. Expecting to read 2 bytes but only got 0."
    r = run(capsys, "deblur", path)
    assert r.code == 0 and r.err_lines == [line], r
    assert (tmp_path / "odd_sharp.tif").is_file()
    r = run(capsys, "deblur", path, "--overwrite", "-q")
    assert r.code == 0 and r.err_lines == [], r
    monkeypatch.setenv("BLURVID_DEBUG", "1")
    r = run(capsys, "deblur", path, "--overwrite")
    assert r.code == 0 and r.err_lines[0] == line and "UserWarning: Corrupt EXIF data" in r.err, r
    # any other library's warning during a run: one line too
    monkeypatch.delenv("BLURVID_DEBUG")
    real_write = blurvid.io.write_photo

    def write_with_a_warning(*args, **kwargs):
        import warnings

        warnings.warn("something odd\n  happened", UserWarning, stacklevel=1)
        return real_write(*args, **kwargs)

    monkeypatch.setattr(blurvid.io, "write_photo", write_with_a_warning)
    r = run(capsys, "deblur", path, "--overwrite")
    assert r.code == 0 and r.err_lines == [line, "warning: something odd happened"], r


def test_jfif_and_jpe_are_jpegs_in_folders_and_out(tiny_weights, tmp_path, capsys):
    """Windows saves browser images as .jfif: a folder run left them out, and one named gave a PNG."""
    save_image(tmp_path / "web.jfif", format="JPEG")
    save_image(tmp_path / "old.JPE", format="JPEG")
    r = run(capsys, "deblur", tmp_path, "-o", tmp_path / "out")
    assert r.code == 0 and "2 written" in r.out, r
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["old_sharp.JPE", "web_sharp.jfif"]
    for name in ("old_sharp.JPE", "web_sharp.jfif"):
        with Image.open(tmp_path / "out" / name) as im:
            assert im.format == "JPEG" and im.size == (W, H)


@pytest.mark.parametrize("suffix", ["/", "../x", "/../../pwned", "a\\b" if os.sep == "\\" else "a/b"])
def test_a_suffix_holding_a_folder_separator_is_refused(tiny_weights, tmp_path, capsys, suffix):
    """``--suffix /../../pwned`` wrote outside the -o folder; ``--suffix /`` gave a traceback."""
    (tmp_path / "in").mkdir()
    save_image(tmp_path / "in" / "a.jpg")
    r = run(capsys, "deblur", tmp_path / "in", "-o", tmp_path / "out" / "deep", "--suffix", suffix)
    assert r.code == 2 and r.err_lines == [
        f"error: --suffix {suffix!r}: must be part of a file name (no '/')"
    ]
    r.assert_no_traceback()
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["in", "in/a.jpg"]


@pytest.mark.parametrize("command", ["deblur", "animate"])
def test_an_empty_path_is_an_error_not_the_current_folder(
    tiny_weights, tmp_path, capsys, monkeypatch, command
):
    """``blurvid deblur "$UNSET"`` processed every photo in the current folder."""
    monkeypatch.chdir(tmp_path)
    save_image(tmp_path / "p1.jpg")
    r = run(capsys, command, "")
    assert r.code == 1 and "'': an empty path" in r.err_lines[0]
    r.assert_no_traceback()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p1.jpg"]


# ============================================================================ folder runs: audit of session 27


def test_an_unreadable_subfolder_is_reported_not_passed_over(tiny_weights, tmp_path, capsys, monkeypatch):
    """-r passed over a subfolder it could not read (Path.glob swallows the error) and exited 0."""
    photos, out = tmp_path / "photos", tmp_path / "out"
    save_image(photos / "a.png")
    save_image(photos / "locked" / "b.png")
    real = os.scandir

    def scandir(path):  # type: ignore[no-untyped-def]
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    r = run(capsys, "deblur", photos, "-r", "-o", out)
    assert r.code == 1, r
    assert r.err_lines == [f"error: {photos / 'locked'}: cannot read this folder: Permission denied"]
    assert [p.name for p in out.iterdir()] == ["a_sharp.png"]
    assert "1 written" in r.out and "1 failed" in r.out


def test_a_broken_link_in_a_folder_is_reported(tiny_weights, tmp_path, capsys):
    photos, out = tmp_path / "photos", tmp_path / "out"
    save_image(photos / "a.png")
    (photos / "gone.jpg").symlink_to("nothere.jpg")
    (photos / "notes.txt").symlink_to("nothere.txt")  # not a photo: not worth a line
    r = run(capsys, "deblur", photos, "-o", out)
    assert r.code == 1, r
    assert r.err_lines == [
        f"error: {photos / 'gone.jpg'}: a broken link (what it points to, nothere.jpg, is missing)"
    ]
    assert [p.name for p in out.iterdir()] == ["a_sharp.png"]
    r = run(capsys, "deblur", photos / "gone.jpg")
    assert r.code == 1 and "a broken link" in r.err_lines[0], r


@pytest.mark.parametrize("order", ["folder first", "file first"])
def test_a_file_also_in_a_given_folder_does_not_depend_on_the_order(tiny_weights, tmp_path, capsys, order):
    """A file named explicitly is always processed and goes below its folder in -o, in either order:
    'in in/x_sharp.png' left x_sharp.png out, and 'in/sub/c.png in -r' put c's result flat into -o."""
    photos, out = tmp_path / "in", tmp_path / "out"
    save_image(photos / "a.png")
    save_image(photos / "x_sharp.png")
    save_image(photos / "sub" / "c.png")
    named = [photos / "x_sharp.png", photos / "sub" / "c.png"]
    args = [photos, *named] if order == "folder first" else [*named, photos]
    r = run(capsys, "deblur", *args, "-r", "-o", out)
    assert r.code == 0, r
    got = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert got == ["a_sharp.png", "sub/c_sharp.png", "x_sharp_sharp.png"]


def test_one_photo_named_twice_may_go_to_one_output_file(tiny_weights, tmp_path, capsys):
    photo = save_image(tmp_path / "a.png")
    r = run(capsys, "deblur", photo, photo, "-o", tmp_path / "x.png")
    assert r.code == 0, r
    assert (tmp_path / "x.png").is_file()


def test_results_found_in_the_folder_are_redone_with_overwrite(tiny_weights, tmp_path, capsys):
    """--suffix '' into a subfolder of the input: the second run's --overwrite failed on every photo,
    saying its output was named as an input (it had only been found in the folder)."""
    photos = tmp_path / "in"
    save_image(photos / "a.png", seed=1)
    clean = photos / "clean"
    assert run(capsys, "deblur", photos, "-r", "-o", clean, "--suffix", "").code == 0
    (clean / "a.png").write_bytes(b"stale")
    r = run(capsys, "deblur", photos, "-r", "-o", clean, "--suffix", "", "--overwrite")
    assert r.code == 0, r
    assert "1 written" in r.out and "left out" not in r.out  # -o below the folder is not looked into
    assert read_photo(clean / "a.png").pixels.shape[:2] == (H, W)
    assert sorted(p.relative_to(photos).as_posix() for p in photos.rglob("*")) == [
        "a.png",
        "clean",
        "clean/a.png",
    ]
    r = run(capsys, "deblur", f"{photos}/**/*.png", "-r", "-o", clean, "--suffix", "", "--overwrite")
    assert r.code == 0, r  # nor is it by a pattern
    assert "1 written" in r.out and not (clean / "clean").exists()


def test_same_output_hints_at_what_works(tiny_weights, tmp_path, capsys):
    """The hint said 'choose another --suffix or --format', which cannot part two photos of one name."""
    x, y, out = tmp_path / "x", tmp_path / "y", tmp_path / "out"
    save_image(x / "s.png", seed=1)
    save_image(y / "s.png", seed=2)
    r = run(capsys, "deblur", x / "s.png", y / "s.png", "-o", out)
    assert r.code == 1, r
    assert r.err_lines == [
        f"error: {y / 's.png'}: same output {out / 's_sharp.png'} as {x / 's.png'}; quote the pattern "
        "(e.g. '*/*.png'), so that -o mirrors their folders, or give it a run of its own, with another -o"
    ]
    r = run(capsys, "deblur", f"{tmp_path}/*/*.png", "-o", tmp_path / "mirrored")  # what the hint says
    assert r.code == 0, r
    got = sorted(str(p.relative_to(tmp_path / "mirrored")) for p in (tmp_path / "mirrored").rglob("*.png"))
    assert got == ["x/s_sharp.png", "y/s_sharp.png"]
    r = run(capsys, "deblur", x, y, "-o", out)  # two folders: each mirrored into -o itself
    assert r.code == 1 and r.err_lines[0].endswith("; give it a run of its own, with another -o"), r


@pytest.mark.parametrize("platform", ["darwin", "win32", "linux"])
def test_outputs_that_differ_only_in_case_are_one_output_where_the_file_system_says_so(
    tiny_weights, tmp_path, capsys, monkeypatch, platform
):
    """B.JPG and B.mpo give B_sharp.JPG and B_sharp.jpg: one file on macOS and Windows (the second
    replaced the first), two on Linux (where refusing the second would be a false conflict)."""
    if platform == "linux" and Path(str(tmp_path).swapcase()).exists():
        pytest.skip("this machine's own file system folds case")
    monkeypatch.setattr(cli, "CASE_INSENSITIVE", platform != "linux")
    photos, out = tmp_path / "in", tmp_path / "out"
    save_image(photos / "B.JPG", seed=1)
    shutil.copy(save_image(tmp_path / "b.jpg", seed=2), photos / "B.mpo")
    r = run(capsys, "deblur", photos, "-o", out)
    if platform == "linux":
        assert r.code == 0 and sorted(p.name for p in out.iterdir()) == ["B_sharp.JPG", "B_sharp.jpg"], r
        return
    assert r.code == 1, r
    assert (
        len(r.err_lines) == 1
        and "same output" in r.err_lines[0]
        and "give it a run of its own" in r.err_lines[0]
    )
    assert [p.name for p in out.iterdir()] == ["B_sharp.JPG"]


def test_recursive_with_a_pattern_without_double_star_is_said(tiny_weights, tmp_path, capsys, monkeypatch):
    save_image(tmp_path / "in" / "a.png")
    save_image(tmp_path / "in" / "sub" / "c.png")
    monkeypatch.chdir(tmp_path)
    r = run(capsys, "deblur", "in/*.png", "-r", "-o", "out")
    assert r.code == 0, r
    assert r.err_lines == [
        "warning: in/*.png: -r does not reach into subfolders through a pattern; write ** for that "
        "(quoted: 'photos/**/*.jpg')"
    ]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a_sharp.png"]


def test_control_characters_in_names_do_not_reach_the_terminal(tiny_weights, tmp_path, capsys):
    photos, out = tmp_path / "in", tmp_path / "out"
    save_image(photos / "esc\x1b[31mred.png")
    (photos / "new\nline.png").write_bytes(b"not a png")
    r = run(capsys, "deblur", photos, "-o", out)
    assert r.code == 1, r
    assert "\x1b" not in r.out + r.err and "esc\\x1b[31mred_sharp.png" in r.out
    assert r.err_lines == [  # a file's error is one line (PhotoError)
        f"error: {photos}/new line.png: not an image file (unknown or unsupported format)"
    ]


def test_a_closed_stdout_does_not_turn_success_into_failure(tiny_weights, tmp_path):
    """`blurvid deblur photos/ | head -1`: rich's broken-pipe handling exited 1 after every photo was written."""
    photos, out = tmp_path / "in", tmp_path / "out"
    for i in range(3):
        save_image(photos / f"{i}.png", seed=i)
    proc = subprocess.Popen(  # the tiny checkpoints: through the registry and cache the fixture names
        [sys.executable, "-m", "blurvid", "deblur", str(photos), "-o", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the summary is printed
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["0_sharp.png", "1_sharp.png", "2_sharp.png"]
    assert "Traceback" not in err


def test_animate_over_its_input_hints_only_at_its_own_options(tiny_weights, tmp_path, capsys):
    """The hint named --suffix, which animate does not have."""
    clip = tmp_path / "x.gif"
    Image.open(save_image(tmp_path / "x.png")).save(clip)
    before = clip.read_bytes()
    r = run(capsys, "animate", clip, "-o", clip, "--frames", "3")
    assert r.code == 1, r
    assert r.err_lines == [f"error: {clip}: the output would overwrite the input; choose another -o"]
    assert clip.read_bytes() == before


def test_a_bad_training_checkpoint_is_one_short_line(tmp_path, capsys):
    """eval --run on a training checkpoint without weights printed torch's list of ~100 missing keys."""
    import torch

    bad = tmp_path / "last.pt"
    torch.save({"config": {}, "model": {}, "iteration": 3}, bad)
    r = run(capsys, "eval", "deblur", "--synth", tmp_path, "--count", 1, "--size", 64, "--run", bad)
    assert r.code == 2, r
    assert len(r.err_lines) == 1 and len(r.err_lines[0]) < len(str(bad)) + 420, r.err_lines
    assert r.err_lines[0].startswith(f"error: {bad}: not a usable blurvid training checkpoint"), r.err_lines


def test_a_folder_that_refuses_files_is_found_before_the_work(tiny_weights, tmp_path, capsys, monkeypatch):
    """os.access says yes where Windows' Controlled Folder Access or macOS's privacy rules say no:
    each photo was processed for minutes and then failed."""
    import tempfile

    import blurvid.io

    photo = save_image(tmp_path / "a.jpg")
    guarded = tmp_path / "Pictures"
    guarded.mkdir()
    real = tempfile.TemporaryFile

    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        if Path(kwargs.get("dir", "")) == guarded:
            raise PermissionError(1, "Operation not permitted")
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    monkeypatch.setattr(blurvid.io, "read_photo", lambda p: pytest.fail("a photo was read"))
    r = run(capsys, "deblur", photo, "-o", guarded / "a.jpg")
    assert r.code == 2, r
    assert r.err_lines == [
        f"error: -o {guarded / 'a.jpg'}: cannot write there: cannot write into {guarded} (Operation not permitted)"
    ]


def test_a_name_the_console_cannot_encode_is_escaped_not_a_crash(tiny_weights, tmp_path):
    """stdout redirected on Windows is cp1252 (strict): listing 'Łódź_sharp.png' raised UnicodeEncodeError
    after all the work, with a traceback and exit 1."""
    photo = save_image(tmp_path / "Łódź.png")
    proc = subprocess.run(
        [sys.executable, "-m", "blurvid", "deblur", str(photo)],
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "cp1252"},
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode("cp1252", "replace")
    assert b"\\u0141\xf3d\\u017a_sharp.png" in proc.stdout  # \xf3: cp1252's own ó
    assert (tmp_path / "Łódź_sharp.png").is_file()


def test_a_config_file_with_a_byte_order_mark_is_read(tmp_path, capsys):
    """Notepad saves UTF-8 with a BOM: 'Expecting value'; a config in another encoding gave a traceback."""
    cfg = tmp_path / "c.json"
    cfg.write_text('{"iters": "many"}', encoding="utf-8-sig")
    r = run(capsys, "train", "deblur", "--config", cfg, "--no-progress")
    assert r.code == 2 and "Expecting value" not in r.err, r  # read: its bad value is what is refused
    cfg.write_bytes('{"data": ["Łódź"]}'.encode("utf-16"))
    r = run(capsys, "train", "deblur", "--config", cfg, "--no-progress")
    assert r.code == 2 and len(r.err_lines) == 1 and "cannot read the config" in r.err_lines[0], r
    r.assert_no_traceback()


def test_a_result_another_run_wrote_meanwhile_is_skipped_not_replaced(
    tiny_weights, tmp_path, capsys, monkeypatch
):
    """Two runs into one folder without --overwrite: each replaced the other's results and said 'written'."""
    photo = save_image(tmp_path / "a.png")
    target = tmp_path / "out" / "a_sharp.png"
    real = pipeline.Deblurrer.__call__

    def other_run_first(self, image, *args, **kwargs):  # type: ignore[no-untyped-def]
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(b"the other run's result")
        return real(self, image, *args, **kwargs)

    monkeypatch.setattr(pipeline.Deblurrer, "__call__", other_run_first)
    r = run(capsys, "deblur", photo, "-o", tmp_path / "out")
    assert r.code == 0, r
    assert "0 written, 1 skipped" in r.out
    assert target.read_bytes() == b"the other run's result"
    r = run(capsys, "deblur", photo, "-o", tmp_path / "out", "--overwrite")  # asked for: replaced
    assert r.code == 0 and "1 written" in r.out and read_photo(target).pixels.shape == (H, W, 3)


def test_animate_says_nothing_of_transparency_an_opaque_photo_lacks(tiny_weights, tmp_path, capsys):
    rgba = np.dstack([image_u8(H, W), np.full((H, W), 255, np.uint8)])  # RGBA, every pixel opaque
    Image.fromarray(rgba).save(tmp_path / "opaque.png")
    r = run(capsys, "animate", tmp_path / "opaque.png", "-n", 3, "-o", tmp_path / "f")
    assert r.code == 0 and r.err_lines == [], r


@pytest.mark.parametrize("name", ["clip.3gp", "clip.webm", "clip.wmv"])
def test_animate_to_a_video_format_it_does_not_write_is_refused_not_a_folder(
    tiny_weights, tmp_path, capsys, photo, name
):
    r = run(capsys, "animate", photo, "-n", 3, "-o", tmp_path / name)
    assert r.code == 2 and "does not write" in r.err_lines[0], r
    assert not (tmp_path / name).exists()


def test_a_frames_folder_holding_only_a_finder_file_counts_as_empty(tiny_weights, tmp_path, capsys, photo):
    target = tmp_path / "frames"
    target.mkdir()
    (target / ".DS_Store").write_bytes(b"Bud1")
    r = run(capsys, "animate", photo, "-n", 3, "-o", target)
    assert r.code == 0 and "1 written" in r.out, r
    assert sorted(p.name for p in target.iterdir()) == ["frame_0001.png", "frame_0002.png", "frame_0003.png"]


def test_a_broken_link_a_pattern_matches_is_reported(tiny_weights, tmp_path, capsys):
    save_image(tmp_path / "in" / "a.png")
    (tmp_path / "in" / "gone.png").symlink_to("nothere.png")
    r = run(capsys, "deblur", f"{tmp_path}/in/*.png", "-o", tmp_path / "out")
    assert r.code == 1, r
    assert r.err_lines == [
        f"error: {tmp_path / 'in' / 'gone.png'}: a broken link (what it points to, nothere.png, is missing)"
    ]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a_sharp.png"]


def test_two_unicode_spellings_of_one_name_are_one_output_where_names_fold(
    tiny_weights, tmp_path, capsys, monkeypatch
):
    """macOS takes 'é' as one character and as e + combining accent for the same name."""
    monkeypatch.setattr(cli, "CASE_INSENSITIVE", True)
    monkeypatch.setattr(cli, "UNICODE_FOLDS", True)
    composed, decomposed = "caf\u00e9.png", "cafe\u0301.png"
    save_image(tmp_path / "a" / composed, seed=1)
    save_image(tmp_path / "b" / decomposed, seed=2)
    r = run(
        capsys, "deblur", f"{tmp_path}/a/{composed}", f"{tmp_path}/b/{decomposed}", "-o", tmp_path / "out"
    )
    assert r.code == 1 and len(r.err_lines) == 1 and "same output" in r.err_lines[0], r


def test_a_pattern_through_a_folder_with_brackets_in_its_name(tiny_weights, tmp_path, capsys):
    """`D:\\Photos\\[2024] Wedding\\*.jpg`: glob took [2024] as a character class and matched nothing."""
    wedding = tmp_path / "[2024] Wedding"
    save_image(wedding / "a.png")
    save_image(wedding / "sub" / "b.png")
    r = run(capsys, "deblur", f"{wedding}/**/*.png", "-r", "-o", tmp_path / "out")
    assert r.code == 0, r
    got = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png"))
    assert got == ["a_sharp.png", "sub/b_sharp.png"]  # mirrored below the folder, as for any other


@pytest.mark.parametrize(
    ("fps", "why"),
    [
        ("nan", "nan is not a number of frames per second"),
        ("inf", "inf is not a"),
        ("0", "0 is not in the range 0.5 to 120"),
        ("121", "121 is not in the range"),
    ],
)
def test_animate_fps_out_of_range_says_why(tiny_weights, tmp_path, capsys, photo, fps, why):
    """--fps nan was refused as "should be less than or equal to 120"."""
    r = run(capsys, "animate", photo, "--fps", fps, "-o", tmp_path / "c.gif")
    assert r.code == 2 and why in " ".join(r.err.split()), r
    assert not (tmp_path / "c.gif").exists()


def test_a_ctrl_c_while_the_command_starts_is_one_line(monkeypatch, capsys):
    """A Ctrl-C in the first ~0.1 s, while typer and rich were imported, printed Python's traceback."""
    import builtins

    from blurvid import _entry

    real_import = builtins.__import__

    def interrupted(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "cli" or name.endswith(".cli"):
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted)
    with pytest.raises(SystemExit) as stop:
        _entry.main()
    assert stop.value.code == 130 and capsys.readouterr().err == "interrupted\n"


def test_a_missing_second_photo_still_asks_for_an_output_folder(tiny_weights, tmp_path, capsys, photo):
    """`animate nosuch.jpg cat.jpg -o qdir/` wrote cat's loose PNG frames into qdir/ (planned as one
    photo), where two photos that exist get qdir/<name>_motion.gif."""
    r = run(capsys, "animate", tmp_path / "nosuch.jpg", photo, "-n", 3, "-o", tmp_path / "qdir")
    assert r.code == 1 and "nosuch.jpg: no such file or folder" in r.err_lines[0], r
    assert [p.name for p in (tmp_path / "qdir").iterdir()] == [f"{photo.stem}_motion.gif"]
    r = run(capsys, "deblur", tmp_path / "nosuch.jpg", photo, "-o", tmp_path / "x.jpg")
    assert r.code == 2 and "several inputs need an output folder" in r.err, r


def test_a_folder_runs_unread_raw_files_are_named_with_what_to_do(tiny_weights, tmp_path, capsys):
    shoot = tmp_path / "shoot"
    save_image(shoot / "IMG_0001.JPG")
    for name in ("IMG_0001.CR2", "IMG_0002.CR2"):
        (shoot / name).write_bytes(b"\0" * 100)
    r = run(capsys, "deblur", shoot)
    assert r.code == 0, r
    assert "  camera RAW: IMG_0001.CR2, IMG_0002.CR2: export a TIFF" in r.out


def test_a_ctrl_c_before_the_command_takes_it_over_is_one_line(monkeypatch, capsys):
    """The start-up window also covers main()'s own first imports (weights, cli_train)."""
    from blurvid import _entry

    def interrupted_early(argv=None):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "main", interrupted_early)
    with pytest.raises(SystemExit) as stop:
        _entry.main()
    assert stop.value.code == 130 and capsys.readouterr().err == "interrupted\n"


def test_odd_paths_still_count_as_inputs_and_give_one_line(tiny_weights, tmp_path, capsys, photo):
    """A name too long for the file system was not counted (so -o x.jpg took the other photo), and
    '~nosuchuser/a.jpg' gave a RuntimeError traceback."""
    long = tmp_path / ("x" * 300 + ".jpg")
    r = run(capsys, "deblur", long, photo, "-o", tmp_path / "x.jpg")
    assert r.code == 2 and "several inputs need an output folder" in r.err, r
    r = run(capsys, "deblur", "~nosuchuser_blurvid/a.jpg")
    assert r.code == 1 and len(r.err_lines) == 1 and "~nosuchuser_blurvid/a.jpg" in r.err_lines[0], r
    r.assert_no_traceback()


@pytest.mark.parametrize("given", ["folder", "pattern"])
def test_a_photo_found_beside_its_namesake_is_never_overwritten(tiny_weights, tmp_path, capsys, given):
    """`--suffix '' --format png --overwrite` on a folder holding a.jpg and a.png: a.png was taken for
    a.jpg's earlier result, left out, and replaced by it (the user's photo was lost)."""
    photos = tmp_path / "in"
    a_jpg = save_image(photos / "a.jpg", seed=1)
    a_png = save_image(photos / "a.png", h=H + 8, seed=2)
    before = a_png.read_bytes()
    arg = photos if given == "folder" else f"{photos}/*"
    for extra in ([], ["--overwrite"]):
        r = run(capsys, "deblur", arg, "--suffix", "", "--format", "png", *extra)
        assert r.code == 1, r
        assert "left out" not in r.out  # a.png is no result of blurvid's
        assert f"error: {a_png}: the output would overwrite the input" in r.err
        assert f"error: {a_jpg}: its output {a_png} is also an input of this run" in r.err  # not skipped
        assert a_png.read_bytes() == before
    assert sorted(p.name for p in photos.iterdir()) == ["a.jpg", "a.png"]
    r = run(capsys, "deblur", a_jpg, a_png, "--suffix", "", "--format", "png", "--overwrite")  # named
    assert r.code == 1, r
    assert "left out" not in r.out and f"error: {a_jpg}: its output {a_png} is also an input" in r.err
    assert a_png.read_bytes() == before
    r = run(capsys, "deblur", arg)  # each in its own format, with the suffix: both done
    assert r.code == 0, r
    assert "2 written" in r.out
    assert a_png.read_bytes() == before


def test_quality_for_lossless_results_is_said_to_do_nothing(tiny_weights, tmp_path, capsys):
    """--quality with PNG results was ignored without a word."""
    photo = save_image(tmp_path / "a.png")
    r = run(capsys, "deblur", photo, "--quality", "80")
    assert r.code == 0, r
    assert "warning: --quality 80: PNG results are lossless; it applies to JPEG, WebP and AVIF only" in r.err
    r = run(capsys, "deblur", photo, "--quality", "80", "--format", "jpg")
    assert r.code == 0, r
    assert "--quality" not in r.err


def test_a_photo_in_the_o_folder_given_as_input_is_never_overwritten(tiny_weights, tmp_path, capsys):
    """`blurvid deblur raw/ edited/ -o edited --suffix '' --format png --overwrite`: edited/a.png, a
    photo found in a folder the user gave, was taken for raw/a.jpg's earlier result and replaced."""
    a_jpg = save_image(tmp_path / "raw" / "a.jpg", seed=1)
    edited = save_image(tmp_path / "edited" / "a.png", h=H + 8, seed=2)
    before = edited.read_bytes()
    args = [
        a_jpg.parent,
        edited.parent,
        "-o",
        edited.parent,
        "--suffix",
        "",
        "--format",
        "png",
        "--overwrite",
    ]
    r = run(capsys, "deblur", *args)
    assert r.code == 1, r
    assert f"error: {a_jpg}: its output {edited} is also an input of this run" in r.err
    assert edited.read_bytes() == before


@pytest.fixture
def network_inputs(monkeypatch) -> list[np.ndarray]:
    """The images the deblurring network is given, in order (copies), as the run goes."""
    seen: list[np.ndarray] = []
    real = pipeline.Deblurrer.__call__

    def spy(self, image, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(np.asarray(image).copy())
        return real(self, image, *args, **kwargs)

    monkeypatch.setattr(pipeline.Deblurrer, "__call__", spy)
    return seen


def test_deblur_to_jpeg_flattens_transparency_before_the_network(
    tiny_weights, tmp_path, capsys, network_inputs
):
    """The network saw the colour stored under transparent pixels (green here) and carried it into the
    edges; only the written result was flattened. It now deblurs what the photo shows, as animate does."""
    seen, rgba, src = network_inputs, LOGO, tmp_path / "logo.png"
    Image.fromarray(rgba).save(src)
    r = run(capsys, "deblur", src, "-o", tmp_path / "logo.jpg")
    assert r.code == 0, r
    assert r.err_lines == [
        f"warning: {tmp_path / 'logo.jpg'}: JPEG holds no transparency; the photo is flattened onto white"
    ]
    assert len(seen) == 1 and np.allclose(seen[0][-4:, -4:], 1.0)  # white under the transparency, not green
    out = np.asarray(Image.open(tmp_path / "logo.jpg")).astype(int)
    assert (np.abs(out[-4:, -4:] - 255) <= 8).all()


def test_deblur_to_png_shows_the_network_the_visible_colour_under_kept_transparency(
    tiny_weights, tmp_path, capsys, network_inputs
):
    """A PNG keeps its alpha, so nothing was flattened: the network saw the colour stored under the
    transparent pixels (green here) and its edge against the photo (benchmarks/alpha_fill.py: 3.3 dB
    lower beside that edge with black stored). It now sees the visible colour spread there; the file
    keeps its alpha and, where nothing shows, the colour it held."""
    seen, rgba, src = network_inputs, LOGO, tmp_path / "logo.png"
    Image.fromarray(rgba).save(src)
    r = run(capsys, "deblur", src)
    assert r.code == 0 and r.err_lines == [], r
    assert len(seen) == 1
    assert np.allclose(seen[0][-4:, -4:], np.float32([200, 30, 30]) / 255, atol=1e-6)  # not green
    out = np.asarray(Image.open(tmp_path / "logo_sharp.png"))
    assert out.shape == (H, W, 4)
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])
    np.testing.assert_array_equal(out[-4:, -4:], rgba[-4:, -4:])  # the stored green, still hidden


# ------------------------------------------------------------------ session 30's new-user audit


def test_a_bad_repo_id_for_download_is_one_line_not_one_per_checkpoint(tiny_weights, capsys, monkeypatch):
    r = run(capsys, "download", "--force", "--repo", "foo")
    assert r.code == 2 and len(r.err_lines) == 1 and "'foo' is not a Hugging Face Hub repo id" in r.err, r
    r.assert_no_traceback()
    r = run(capsys, "download", "--repo", "foo")  # verified copies need no hub: listed, as before
    assert r.code == 0 and "tiny-dm:" in r.out, r
    from blurvid import weights

    real = weights.prefetch

    def missing(name, repo_id=None, force=False):  # as if no copy were on disk: each needs the hub
        return real(name, repo_id=repo_id, force=True)

    monkeypatch.setattr(weights, "prefetch", missing)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # the repo id is refused before any download
    r = run(capsys, "download", "--repo", "foo")
    assert r.code == 2 and len(r.err_lines) == 1 and "'foo' is not a Hugging Face Hub repo id" in r.err, r


def test_flags_show_no_value_column_in_help(capsys):
    """typer 0.29 showed '--overwrite <bool>': `--overwrite true` then took 'true' for a photo."""
    for command in (["deblur"], ["animate"], ["train", "deblur"], ["eval"]):
        r = run(capsys, *command, "--help")
        assert r.code == 0, r
        flags = [
            line
            for line in r.out.splitlines()
            if re.search(r"--(overwrite|quiet|resume|noise|shake)\b", line)
        ]
        assert flags and not any("<bool>" in line for line in flags), (command, flags)


def test_missing_training_data_is_said_to_be_missing(tmp_path, capsys):
    for command in (["train", "deblur", "--data"], ["synth"]):
        r = run(capsys, *command, tmp_path / "nosuch", "-o", tmp_path / "out")
        assert r.code == 2 and len(r.err_lines) == 1, r
        assert f"{tmp_path / 'nosuch'}: no such file or folder" in r.err, r
    assert not (tmp_path / "out").exists()


def test_a_missing_autoencoder_run_is_named_as_a_run(tmp_path, capsys):
    from conftest import save_image

    save_image(tmp_path / "data" / "a.png", 96, 96)
    r = run(
        capsys, "train", "bie", "--data", tmp_path / "data", "--autoencoder", tmp_path / "nosuch",
        "-o", tmp_path / "run", "--iters", 1, "--no-progress",
    )  # fmt: skip
    assert r.code == 2 and len(r.err_lines) == 1 and "no such run folder or checkpoint" in r.err, r
    r.assert_no_traceback()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any folder")
def test_a_photo_in_a_folder_that_cannot_be_entered_says_so(tmp_path, capsys):
    from conftest import save_image

    photo = save_image(tmp_path / "locked" / "p.png")
    (tmp_path / "locked").chmod(0o600)
    try:
        r = run(capsys, "deblur", photo)
    finally:
        (tmp_path / "locked").chmod(0o700)
    assert r.code == 1 and f"{photo}: permission denied (check the permissions" in r.err, r


@pytest.mark.parametrize(
    ("extra", "hint"), [([], "try a smaller --tile"), (["--shake"], "try a smaller --shake-size")]
)
def test_out_of_memory_suggests_what_bounds_the_memory(
    tiny_weights, tmp_path, capsys, monkeypatch, extra, hint
):
    """--tile does not bound --shake's deconvolution (its tiles are 2048 px or more): it was suggested."""

    class Hungry:
        def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise MemoryError

    monkeypatch.setattr(cli, "_runtime", lambda *a, **k: Hungry())
    photo = save_image(tmp_path / "p.png")
    r = run(capsys, "deblur", photo, *extra)
    assert r.code == 1 and len(r.err_lines) == 1 and f"{photo}: out of memory; {hint}" in r.err, r


def test_an_unexpected_error_on_one_photo_of_a_folder_skips_only_that_photo(
    tiny_weights, tmp_path, capsys, monkeypatch
):
    """A bug or library error on one file (not a PhotoError) is one line naming it; the folder run goes
    on with the rest and exits 1."""
    real = cli._runtime

    def runtime(*args, **kwargs):  # type: ignore[no-untyped-def]
        sharpen = real(*args, **kwargs)

        def call(pixels, **kw):  # type: ignore[no-untyped-def]
            if pixels.shape[0] == 21:  # b.png
                raise RuntimeError("kernel exploded")
            return sharpen(pixels, **kw)

        return call

    monkeypatch.setattr(cli, "_runtime", runtime)
    folder = tmp_path / "in"
    for name, h in (("a", 24), ("b", 21), ("c", 24)):
        save_image(folder / f"{name}.png", h=h)
    r = run(capsys, "deblur", folder, "-o", tmp_path / "out")
    assert r.code == 1 and len(r.err_lines) == 1, r
    assert f"{folder / 'b.png'}: unexpected error: RuntimeError: kernel exploded" in r.err, r
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_sharp.png", "c_sharp.png"]
    assert "2 written, 1 failed" in r.out, r


def test_models_warns_of_a_bad_repo_id(tiny_weights, capsys):
    r = run(capsys, "models", "--repo", "foo")
    assert r.code == 0 and "tiny-dm" in r.out, r  # the copies on disk are still listed
    assert len(r.err_lines) == 1 and "warning: 'foo' is not a Hugging Face Hub repo id" in r.err, r


@pytest.mark.parametrize("suffix", [".gif", ".webp"])
def test_animate_passes_fps_and_once_to_the_video(tiny_weights, tmp_path, capsys, photo, suffix):
    """--fps and --once reached the video writer only through untested wiring (a frames folder
    checked --once; nothing checked --fps)."""
    out = tmp_path / f"c{suffix}"
    r = run(capsys, "animate", photo, "-o", out, "-n", 3, "--fps", 24, "--once")
    assert r.code == 0, r
    with Image.open(out) as im:
        assert im.info.get("loop", 1) == 1  # GIF: no loop block; WebP: play once
    durations = frame_durations(out)
    assert len(durations) == 3 and all(abs(d - 1000 / 24) < 10 for d in durations), durations


def test_format_names_are_taken_in_any_letter_case(tiny_weights, tmp_path, capsys, photo):
    r = run(capsys, "deblur", photo, "--format", "PNG", "-o", tmp_path / "out")
    assert r.code == 0 and (tmp_path / "out" / f"{photo.stem}_sharp.png").is_file(), r
    r = run(capsys, "animate", photo, "--format", "GIF", "-n", 3, "-o", tmp_path / "clips")
    assert r.code == 0 and [p.suffix for p in (tmp_path / "clips").iterdir()] == [".gif"], r


def test_a_folder_run_leaves_out_hidden_files_and_patterns_take_brackets(tiny_weights, tmp_path, capsys):
    """Hidden files (macOS's ._ twins, dot-files) are not photos of the folder; a pattern with [..]
    is a glob, as in the shell."""
    folder = tmp_path / "in"
    for name in ("p1.png", "p2.png", "p3.png", ".hidden.png", "._p1.png"):
        save_image(folder / name)
    r = run(capsys, "deblur", folder, "-o", tmp_path / "out")
    assert r.code == 0 and "3 written" in r.out, r
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "p1_sharp.png",
        "p2_sharp.png",
        "p3_sharp.png",
    ]
    r = run(capsys, "deblur", str(folder / "p[12].png"), "-o", tmp_path / "two")
    assert r.code == 0 and sorted(p.name for p in (tmp_path / "two").iterdir()) == [
        "p1_sharp.png",
        "p2_sharp.png",
    ], r


@pytest.mark.parametrize("fps", [0.5, 120])
def test_the_fps_range_includes_its_ends(tiny_weights, tmp_path, capsys, photo, fps):
    r = run(capsys, "animate", photo, "-o", tmp_path / "f", "-n", 3, "--fps", fps)
    assert r.code == 0, r
