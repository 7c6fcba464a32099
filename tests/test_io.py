"""Tests of blurvid.io: photo and video reading/writing on tiny generated files."""

from __future__ import annotations

import dataclasses
import os
import re
import struct
import subprocess
import sys
import time
import zlib
from io import BytesIO
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps, PngImagePlugin

import blurvid.io as bio
from blurvid.io import Photo, PhotoError, read_photo, write_photo, write_video

RNG = np.random.default_rng(1234)
NEEDS_AVIF = pytest.mark.skipif(not bio.AVIF_SUPPORTED, reason="this Pillow reads and writes no AVIF")
AVIF_8 = pytest.param(".avif", 8, marks=NEEDS_AVIF)
SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def smooth_rgb(h: int = 24, w: int = 36) -> np.ndarray:
    """A smooth float RGB image (JPEG-friendly), values well inside [0, 1]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([0.1 + 0.8 * xx / (w - 1), 0.1 + 0.8 * yy / (h - 1), 0.5 + 0.3 * np.sin(xx / 5)], axis=2)


def random_u16(shape: tuple[int, ...]) -> np.ndarray:
    """uint16 values that are never multiples of 257 (so 8-bit precision cannot reproduce them)."""
    v = RNG.integers(0, 65535, shape, dtype=np.uint16)
    v[v % 257 == 0] += 1
    return v


def like_photo(
    *,
    bit_depth: int = 8,
    grey: bool = False,
    icc: bytes | None = None,
    exif: bytes | None = None,
    alpha: np.ndarray | None = None,
    path: Path | None = None,
    shape: tuple[int, int] = (24, 36),
) -> Photo:
    return Photo(np.zeros((*shape, 3), np.float32), alpha, bit_depth, grey, icc, exif, "PNG", path)


def make_exif(**tags: object) -> bytes:
    names = {"Make": 271, "Model": 272, "Orientation": 274}
    exif = Image.Exif()
    for name, value in tags.items():
        exif[names[name]] = value
    return exif.tobytes()


def exif_tags(raw: bytes | None) -> Image.Exif:
    assert raw is not None
    exif = Image.Exif()
    exif.load(raw)
    return exif


def u8(x: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)


def u16(x: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(x, 0, 1) * 65535).astype(np.uint16)


def ffmpeg_encode_still(path: Path, values: np.ndarray, extra: list[str]) -> None:
    """Write uint16 RGB with the bundled ffmpeg: an encoder independent of blurvid's own."""
    h, w, _ = values.shape
    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-loglevel",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb48le",
        "-s",
        f"{w}x{h}",
        "-i",
        "pipe:0",
        *extra,
        "-frames:v",
        "1",
        "-update",
        "1",
        str(path),
    ]
    subprocess.run(cmd, input=values.astype("<u2").tobytes(), check=True, capture_output=True)


def assert_one_line_naming(err: pytest.ExceptionInfo[PhotoError], path: Path) -> None:
    text = str(err.value)
    assert path.name in text
    assert len(text.splitlines()) == 1
    assert text.startswith(str(path))


# --- 8 bit


@pytest.mark.parametrize("suffix", [".png", ".tif", ".bmp"])
def test_8bit_lossless_round_trip(tmp_path: Path, suffix: str) -> None:
    x = RNG.random((17, 23, 3)).astype(np.float32)
    out = write_photo(tmp_path / f"a{suffix}", x)
    photo = read_photo(out)
    assert photo.pixels.dtype == np.float32 and photo.pixels.shape == (17, 23, 3)
    assert photo.bit_depth == 8 and not photo.grey and photo.alpha is None
    np.testing.assert_array_equal(u8(photo.pixels), u8(x))


def test_webp_lossless_at_quality_100_and_lossy_below(tmp_path: Path) -> None:
    x = RNG.random((17, 23, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        u8(read_photo(write_photo(tmp_path / "a.webp", x, quality=100)).pixels), u8(x)
    )
    s = smooth_rgb()
    lossy = read_photo(write_photo(tmp_path / "b.webp", s, quality=80))
    assert lossy.format == "WEBP"
    assert np.abs(lossy.pixels - s).mean() < 0.03


@pytest.mark.parametrize("alpha", [False, True])
def test_a_lossless_webp_stays_lossless_unless_a_quality_is_given(tmp_path: Path, alpha: bool) -> None:
    x = RNG.random((17, 23, 3)).astype(np.float32)
    a = np.linspace(0, 1, 17 * 23, dtype=np.float32).reshape(17, 23) if alpha else None
    lossless = read_photo(write_photo(tmp_path / "in.webp", x, alpha=a, quality=100))
    lossy = read_photo(write_photo(tmp_path / "lossy.webp", x, alpha=a, quality=90))
    assert (lossless.compression, lossy.compression) == ("lossless", "lossy")
    kept = read_photo(write_photo(tmp_path / "kept.webp", x, like=lossless))
    assert kept.compression == "lossless"
    np.testing.assert_array_equal(u8(kept.pixels), u8(x))
    assert (
        read_photo(write_photo(tmp_path / "asked.webp", x, like=lossless, quality=90)).compression == "lossy"
    )
    assert read_photo(write_photo(tmp_path / "from_lossy.webp", x, like=lossy)).compression == "lossy"
    with Image.open(write_photo(tmp_path / "as.tif", x, like=lossless)) as im:
        assert im.info["compression"] == "raw"  # a WebP's 'lossless' is not a TIFF compression


def test_jpeg_round_trip_is_close_and_uses_444_at_high_quality(tmp_path: Path) -> None:
    s = smooth_rgb()
    photo = read_photo(write_photo(tmp_path / "a.jpg", s, quality=95))
    assert photo.format == "JPEG" and photo.bit_depth == 8
    assert np.abs(photo.pixels - s).mean() < 0.01
    with Image.open(tmp_path / "a.jpg") as im:
        assert im.layer[0][1:3] == (1, 1)  # luma not subsampled relative to chroma: 4:4:4
    write_photo(tmp_path / "b.jpeg", s, quality=70)
    with Image.open(tmp_path / "b.jpeg") as im:
        assert im.layer[0][1:3] == (2, 2)  # 4:2:0


def test_float_to_int_rounds_and_clips(tmp_path: Path) -> None:
    x = np.array([[[-0.5, 2.0, np.nan], [0.6 / 255, 1.49 / 255, 0.51 / 255]]], dtype=np.float32)
    photo = read_photo(write_photo(tmp_path / "r.png", x))
    assert u8(photo.pixels).tolist() == [[[0, 255, 0], [1, 1, 1]]]


# --- 16 bit


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("channels", ["rgb", "rgba", "grey", "grey+alpha"])
def test_16bit_round_trip_is_exact(tmp_path: Path, suffix: str, channels: str) -> None:
    grey = channels.startswith("grey")
    v = random_u16((13, 19, 4))
    rgb = np.repeat(v[:, :, :1], 3, axis=2) if grey else v[:, :, :3]
    alpha = v[:, :, 3] / 65535 if channels.endswith("alpha") else None
    out = write_photo(
        tmp_path / f"w{suffix}", rgb / 65535, alpha=alpha, like=like_photo(bit_depth=16, grey=grey)
    )
    photo = read_photo(out)
    assert photo.bit_depth == 16
    np.testing.assert_array_equal(u16(photo.pixels), rgb)
    if alpha is None:
        assert photo.alpha is None
    else:
        assert photo.alpha is not None
        np.testing.assert_array_equal(u16(photo.alpha), v[:, :, 3])
    # grey is written as grey (a 16-bit grey+alpha TIFF is the one exception: Pillow cannot open it).
    assert photo.grey == (grey and not (suffix == ".tif" and alpha is not None))
    with Image.open(out) as im:  # other readers see a valid 16-bit file too
        im.load()
        assert im.size == (19, 13)
        if grey and alpha is None:
            np.testing.assert_array_equal(np.asarray(im).astype(np.uint16), v[:, :, 0])


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("ff.png", []),
        ("ff_lzw.tif", ["-compression_algo", "lzw"]),
        ("ff_deflate.tif", ["-compression_algo", "deflate"]),
    ],
)
def test_16bit_rgb_from_another_encoder_is_read_exactly(tmp_path: Path, name: str, extra: list[str]) -> None:
    v = random_u16((11, 14, 3))
    ffmpeg_encode_still(tmp_path / name, v, extra)
    photo = read_photo(tmp_path / name)
    assert photo.bit_depth == 16 and not photo.grey
    np.testing.assert_array_equal(u16(photo.pixels), v)


def test_16bit_grey_png_from_pillow_is_read_exactly(tmp_path: Path) -> None:
    v = random_u16((9, 12))
    Image.fromarray(v).save(tmp_path / "g.png")
    photo = read_photo(tmp_path / "g.png")
    assert photo.grey and photo.bit_depth == 16
    np.testing.assert_array_equal(u16(photo.pixels), np.repeat(v[:, :, None], 3, axis=2))


def test_16bit_falls_back_to_8bit_precision_without_ffmpeg(tmp_path: Path, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    v = random_u16((6, 9, 3))
    write_photo(tmp_path / "w.png", v / 65535, bit_depth=16)

    def no_ffmpeg() -> str:
        raise RuntimeError("no ffmpeg here")

    monkeypatch.setattr(bio, "_ffmpeg_exe", no_ffmpeg)
    photo = read_photo(tmp_path / "w.png")
    assert photo.bit_depth == 16  # the source's depth, even though only 8 bits could be decoded
    np.testing.assert_array_equal(u8(photo.pixels), (v >> 8).astype(np.uint8))
    assert "8-bit precision" in caplog.text


def planar_tiff16(v: np.ndarray) -> bytes:
    """An uncompressed little-endian 16-bit RGB TIFF of ``v`` (H, W, 3) uint16 stored plane by plane
    (PlanarConfiguration 2, Photoshop's "Per Channel" order): one strip per plane."""
    import struct

    h, w, _ = v.shape
    planes = [np.ascontiguousarray(v[:, :, c]).astype("<u2").tobytes() for c in range(3)]
    bps_at = 8
    offsets_at, counts_at = bps_at + 6, bps_at + 18
    data_at = counts_at + 12
    offsets = [data_at + i * len(planes[0]) for i in range(3)]
    ifd_at = data_at + 3 * len(planes[0])
    tags = [  # (tag, type, count, value or offset); SHORT values sit in the low half of the field
        (256, 3, 1, w), (257, 3, 1, h), (258, 3, 3, bps_at), (259, 3, 1, 1), (262, 3, 1, 2),
        (273, 4, 3, offsets_at), (277, 3, 1, 3), (278, 3, 1, h), (279, 4, 3, counts_at), (284, 3, 1, 2),
    ]  # fmt: skip
    out = b"II*\0" + struct.pack("<I", ifd_at) + struct.pack("<3H", 16, 16, 16)
    out += struct.pack("<3I", *offsets) + struct.pack("<3I", *(len(q) for q in planes)) + b"".join(planes)
    out += struct.pack("<H", len(tags))
    out += b"".join(struct.pack("<HHII", t, ty, n, val) for t, ty, n, val in tags) + struct.pack("<I", 0)
    return out


def test_a_16bit_tiff_stored_plane_by_plane_reads_exactly_or_not_at_all(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Pillow misreads such a file as 8-bit planes (a striped, scrambled picture that once came back with
    exit 0): ffmpeg's decode is taken as it is, and without ffmpeg the file is refused."""
    v = random_u16((6, 9, 3))
    (tmp_path / "planar.tif").write_bytes(planar_tiff16(v))
    photo = read_photo(tmp_path / "planar.tif")
    assert photo.bit_depth == 16
    np.testing.assert_array_equal(np.rint(photo.pixels * 65535).astype(np.uint16), v)

    def no_ffmpeg() -> str:
        raise RuntimeError("no ffmpeg here")

    monkeypatch.setattr(bio, "_ffmpeg_exe", no_ffmpeg)
    with pytest.raises(bio.PhotoError, match="stored plane by plane"):
        read_photo(tmp_path / "planar.tif")


def chunky_tiff(v: np.ndarray, sample_format: int, order: str = "<") -> bytes:
    """An uncompressed RGB TIFF of ``v`` (H, W, 3), its samples stored as ``v``'s dtype (e.g. float32)
    with SampleFormat ``sample_format`` (1 unsigned, 3 floating point), pixel by pixel, one strip."""
    import struct

    h, w, _ = v.shape
    pixels = np.ascontiguousarray(v).astype(v.dtype.newbyteorder(order)).tobytes()
    bits = 8 * v.dtype.itemsize
    ifd_at = 8
    bps_at = ifd_at + 2 + 12 * 10 + 4
    fmt_at, data_at = bps_at + 6, bps_at + 12
    tags = [
        (256, 3, 1, w), (257, 3, 1, h), (258, 3, 3, bps_at), (259, 3, 1, 1), (262, 3, 1, 2),
        (273, 4, 1, data_at), (277, 3, 1, 3), (278, 3, 1, h), (279, 4, 1, len(pixels)), (339, 3, 3, fmt_at),
    ]  # fmt: skip
    short = {t for t, ty, n, _ in tags if ty == 3 and n == 1}  # a SHORT value sits in the field's first half
    out = (b"II" if order == "<" else b"MM") + struct.pack(order + "HI", 42, ifd_at)
    out += struct.pack(order + "H", len(tags))
    for t, ty, n, val in tags:
        out += struct.pack(
            order + ("HHIHH" if t in short else "HHII"), t, ty, n, val, *((0,) if t in short else ())
        )
    out += struct.pack(order + "I", 0) + struct.pack(order + "3H", bits, bits, bits)
    return out + struct.pack(order + "3H", sample_format, sample_format, sample_format) + pixels


@pytest.mark.parametrize(
    ("dtype", "sample_format", "order", "what"),
    [
        (np.float32, 3, "<", "32-bit floating-point"),
        (np.float32, 3, ">", "32-bit floating-point"),
        (np.float16, 3, "<", "16-bit floating-point"),
        (np.uint32, 1, "<", "32-bit integer"),
    ],
)
def test_a_colour_tiff_of_float_or_32bit_samples_is_refused_as_such(
    tmp_path: Path, dtype, sample_format, order, what
) -> None:  # type: ignore[no-untyped-def]
    """An HDR merge's or a 32-bit editor's RGB TIFF was called 'truncated or damaged'."""
    v = (np.random.default_rng(0).random((6, 9, 3)) * (1 if sample_format == 3 else 1e6)).astype(dtype)
    (tmp_path / "hdr.tif").write_bytes(chunky_tiff(v, sample_format, order))
    with pytest.raises(
        bio.PhotoError, match=f"cannot read {what} samples in a colour photo; save it as a 16-bit"
    ):
        read_photo(tmp_path / "hdr.tif")
    u16 = random_u16((6, 9, 3))  # the same layout with 16-bit integers reads exactly
    (tmp_path / "u16.tif").write_bytes(chunky_tiff(u16, 1, order))
    np.testing.assert_array_equal(np.rint(read_photo(tmp_path / "u16.tif").pixels * 65535), u16)


def test_a_32bit_integer_grey_tiff_of_16bit_values_reads_as_16bit_data(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    v = np.linspace(200, 18500, 6 * 9).reshape(6, 9).astype(np.int32)
    Image.fromarray(v).save(tmp_path / "sci.tif")  # mode "I": 32 bits per sample
    with caplog.at_level("WARNING", logger="blurvid"):
        photo = read_photo(tmp_path / "sci.tif")
    np.testing.assert_allclose(photo.pixels[:, :, 1], v / 65535, atol=1e-6)
    assert "32-bit integer values all within 0..65535; read as 16-bit data" in caplog.text
    caplog.clear()
    Image.fromarray(v * 65536).save(tmp_path / "full.tif")  # real 32-bit values: the 32-bit scale
    with caplog.at_level("WARNING", logger="blurvid"):
        photo = read_photo(tmp_path / "full.tif")
    np.testing.assert_allclose(photo.pixels[:, :, 1], v * 65536 / (2**32 - 1), atol=1e-6)
    assert caplog.text == ""
    caplog.clear()
    Image.fromarray(v * 8).save(tmp_path / "18bit.tif")  # up to 148000: was black (3.4e-5 at most)
    with caplog.at_level("WARNING", logger="blurvid"):
        photo = read_photo(tmp_path / "18bit.tif")
    np.testing.assert_allclose(photo.pixels[:, :, 1], v * 8 / (2**18 - 1), atol=1e-6)
    assert "32-bit integer values all within 0..262143; read as 18-bit data" in caplog.text


def test_bit_depth_defaults_to_like_and_8_for_jpeg(tmp_path: Path) -> None:
    like16 = like_photo(bit_depth=16)
    x = random_u16((24, 36, 3)) / 65535
    assert read_photo(write_photo(tmp_path / "a.png", x, like=like16)).bit_depth == 16
    assert read_photo(write_photo(tmp_path / "b.png", x, like=like16, bit_depth=8)).bit_depth == 8
    assert read_photo(write_photo(tmp_path / "c.png", x, bit_depth=16)).bit_depth == 16
    assert read_photo(write_photo(tmp_path / "d.jpg", x, like=like16)).bit_depth == 8


# --- orientation


def stored_image() -> np.ndarray:
    return RNG.integers(0, 256, (4, 6, 3), dtype=np.uint8)  # non-square, H=4, W=6


@pytest.mark.parametrize(("orientation", "expected"), [
    (3, lambda a: a[::-1, ::-1]),          # rotated 180
    (6, lambda a: np.rot90(a, -1)),        # stored rotated: display turned 90 deg clockwise
    (8, lambda a: np.rot90(a, 1)),         # display turned 90 deg counter-clockwise
])  # fmt: skip
def test_orientation_rotates_pixels(tmp_path: Path, orientation: int, expected) -> None:  # type: ignore[no-untyped-def]
    a = stored_image()
    Image.fromarray(a).save(tmp_path / "o.png", exif=make_exif(Orientation=orientation, Make="Cam"))
    photo = read_photo(tmp_path / "o.png")
    np.testing.assert_array_equal(u8(photo.pixels), expected(a))
    tags = exif_tags(photo.exif)
    assert tags.get(274) in (1, None)
    assert tags.get(271) == "Cam"


def test_a_16bit_grey_png_transparency_key_turns_upright_with_its_pixels(tmp_path: Path) -> None:
    """A 16-bit grey PNG's tRNS key becomes an alpha plane on a path of its own: a sideways photo's
    alpha must turn with the pixels (else its shape differs and the result is written opaque)."""
    values = RNG.integers(0, 65536, (4, 6), dtype=np.uint16)
    values[0, :3] = values[3, 5] = 3000  # the transparent key
    Image.fromarray(values).save(tmp_path / "t.png", transparency=3000, exif=make_exif(Orientation=6))
    photo = read_photo(tmp_path / "t.png")
    assert photo.bit_depth == 16 and photo.pixels.shape == (6, 4, 3) and photo.alpha is not None
    np.testing.assert_array_equal(photo.alpha, np.rot90(values != 3000, -1).astype(np.float32))
    np.testing.assert_allclose(photo.pixels[:, :, 0], np.rot90(values, -1) / 65535, atol=1e-6)
    write_photo(tmp_path / "out.png", photo.pixels, like=photo)
    with Image.open(tmp_path / "out.png") as out:
        assert out.size == (4, 6) and ("A" in out.mode or "transparency" in out.info)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_orientations_match_pillow_exif_transpose(tmp_path: Path, orientation: int) -> None:
    Image.fromarray(stored_image()).save(tmp_path / "o.png", exif=make_exif(Orientation=orientation))
    with Image.open(tmp_path / "o.png") as im:
        expected = np.asarray(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(u8(read_photo(tmp_path / "o.png").pixels), expected)


def test_orientation_of_jpeg_and_of_16bit_png(tmp_path: Path) -> None:
    a = stored_image()
    Image.fromarray(a).save(tmp_path / "o.jpg", exif=make_exif(Orientation=6), quality=95)
    with Image.open(tmp_path / "o.jpg") as im:
        expected = np.asarray(ImageOps.exif_transpose(im))
    photo = read_photo(tmp_path / "o.jpg")
    assert photo.pixels.shape == (6, 4, 3)
    np.testing.assert_array_equal(u8(photo.pixels), expected)
    # 16-bit colour goes through ffmpeg: the orientation must still be applied exactly once.
    v = random_u16((4, 6, 3))
    with open(tmp_path / "o16.png", "wb") as fh:
        bio._encode_png16(fh, v, None, make_exif(Orientation=8))
    photo16 = read_photo(tmp_path / "o16.png")
    np.testing.assert_array_equal(u16(photo16.pixels), np.rot90(v, 1))
    assert exif_tags(photo16.exif).get(274) in (1, None)


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_16bit_tiff_orientation_keeps_16_bits(
    tmp_path: Path, orientation: int, channels: int, caplog
) -> None:  # type: ignore[no-untyped-def]
    """Pillow turns a TIFF upright as it loads it and drops the tag; ffmpeg's 16-bit raster is as
    stored. It was compared unturned, "disagreed", and the photo was read at 8 bits."""
    v = random_u16((4, 6, channels))
    with open(tmp_path / "o.tif", "wb") as fh:  # blurvid writes upright files: orientation 1, set below
        bio._encode_tiff16(fh, v, None, make_exif(Orientation=1), dpi=(300.0, 150.0))
    data = bytearray((tmp_path / "o.tif").read_bytes())
    (ifd0,) = struct.unpack_from("<I", data, 4)
    entries = [ifd0 + 2 + 12 * i for i in range(struct.unpack_from("<H", data, ifd0)[0])]
    (at,) = [e for e in entries if struct.unpack_from("<H", data, e)[0] == 274]
    struct.pack_into("<H", data, at + 8, orientation)
    (tmp_path / "o.tif").write_bytes(data)
    with caplog.at_level("WARNING"):
        photo = read_photo(tmp_path / "o.tif")
    assert "8-bit precision" not in caplog.text
    upright = bio._apply_orientation(v, orientation)
    np.testing.assert_array_equal(u16(photo.pixels), upright[:, :, :3])
    if channels == 4:
        assert photo.alpha is not None
        np.testing.assert_array_equal(np.rint(photo.alpha * 65535).astype(np.uint16), upright[:, :, 3])
    assert photo.dpi == ((150.0, 300.0) if orientation >= 5 else (300.0, 150.0))


def test_pixels_are_the_float_of_the_stored_integers_turned_upright(tmp_path: Path) -> None:
    # read_photo turns the integers upright and divides in place (less memory): the very floats of
    # dividing the upright integers, for 8-bit colour + alpha and 16-bit colour + alpha
    rgba8 = RNG.integers(0, 256, (5, 7, 4), dtype=np.uint8)
    Image.fromarray(rgba8).save(tmp_path / "o8.png", exif=make_exif(Orientation=6))
    photo = read_photo(tmp_path / "o8.png")
    turned = np.rot90(rgba8, -1)
    assert np.array_equal(photo.pixels, turned[:, :, :3].astype(np.float32) / np.float32(255))
    assert photo.alpha is not None and np.array_equal(
        photo.alpha, turned[:, :, 3].astype(np.float32) / np.float32(255)
    )
    v = random_u16((5, 7, 4))
    with open(tmp_path / "o16.png", "wb") as fh:
        bio._encode_png16(fh, v, None, make_exif(Orientation=8))
    photo16 = read_photo(tmp_path / "o16.png")
    turned16 = np.rot90(v, 1)
    assert photo16.pixels.flags.c_contiguous and photo16.pixels.dtype == np.float32
    assert np.array_equal(photo16.pixels, turned16[:, :, :3].astype(np.float32) / np.float32(65535))
    assert np.array_equal(photo16.alpha, turned16[:, :, 3].astype(np.float32) / np.float32(65535))


def _quantize_at_once(values: np.ndarray, bits: int) -> np.ndarray:
    """write_photo's float -> integer conversion as it was before it worked in bands (session 22)."""
    top = 255.0 if bits == 8 else 65535.0
    clean = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return np.rint(np.clip(clean, 0.0, 1.0) * np.float32(top)).astype(np.uint8 if bits == 8 else np.uint16)


def test_quantize_in_bands_gives_the_bytes_of_converting_at_once(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    v = RNG.uniform(-0.2, 1.2, (13, 11, 3)).astype(np.float32)
    v[0, 0, 0], v[5, 3, 1], v[12, 10, 2], v[7, 7, 0] = (
        np.nan,
        np.inf,
        -np.inf,
        0.5 / 255,
    )  # a tie rounds to even
    cases = [v, v.astype(np.float64), v.transpose(1, 0, 2), v[:, :, 1], v[::2, ::3]]
    for band in (1, 7, 33, 1 << 22):  # elements per band: one row at a time ... all at once
        monkeypatch.setattr(bio, "_BAND_ELEMENTS", band)
        for values in cases:
            for bits in (8, 16):
                got, want = bio._quantize(values, bits), _quantize_at_once(values, bits)
                assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want)
        out = np.zeros((13, 11, 5), np.uint16)
        bio._quantize(v, 16, out=out[:, :, 1:4])  # into a slice of a larger array
        assert np.array_equal(out[:, :, 1:4], _quantize_at_once(v, 16)) and not out[:, :, [0, 4]].any()


@pytest.mark.parametrize(("suffix", "depth"), [(".png", 8), (".tif", 8), (".png", 16), (".tif", 16)])
def test_written_bytes_do_not_depend_on_the_band_size(
    tmp_path: Path, monkeypatch, suffix: str, depth: int
) -> None:  # type: ignore[no-untyped-def]
    # colour and alpha are converted into one integer array band by band: the file of converting at once
    rgb, alpha = RNG.random((9, 14, 3), dtype=np.float32), RNG.random((9, 14), dtype=np.float32)
    like = like_photo(bit_depth=depth, shape=(9, 14))
    whole = write_photo(tmp_path / f"whole{suffix}", rgb, alpha=alpha, like=like).read_bytes()
    monkeypatch.setattr(bio, "_BAND_ELEMENTS", 5)
    assert write_photo(tmp_path / f"bands{suffix}", rgb, alpha=alpha, like=like).read_bytes() == whole
    photo = read_photo(tmp_path / f"bands{suffix}")
    q = _quantize_at_once(np.concatenate([rgb, alpha[:, :, None]], 2), depth)
    top = 255 if depth == 8 else 65535
    assert np.array_equal(np.rint(photo.pixels * top), q[:, :, :3])
    assert photo.alpha is not None and np.array_equal(np.rint(photo.alpha * top), q[:, :, 3])


# --- metadata


@pytest.mark.parametrize(
    ("suffix", "depth"),
    [(".jpg", 8), (".png", 8), (".tif", 8), (".webp", 8), (".png", 16), (".tif", 16), AVIF_8],
)
def test_icc_and_exif_are_copied(tmp_path: Path, suffix: str, depth: int) -> None:
    exif = make_exif(Make="Blurcam", Model="Z 9", Orientation=1)
    like = like_photo(bit_depth=depth, icc=SRGB_ICC, exif=exif)
    out = write_photo(tmp_path / f"m{suffix}", smooth_rgb(), like=like)
    with Image.open(out) as im:
        assert im.info.get("icc_profile") == SRGB_ICC
    photo = read_photo(out)
    assert photo.bit_depth == depth
    assert photo.icc_profile == SRGB_ICC
    tags = exif_tags(photo.exif)
    assert tags.get(271) == "Blurcam" and tags.get(272) == "Z 9"
    assert tags.get(274) in (1, None)


def test_exif_sub_ifd_survives_a_16bit_tiff(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[271] = "Blurcam"
    exif.get_ifd(0x8769)[0x9003] = "2024:01:02 03:04:05"  # DateTimeOriginal lives in the Exif sub-IFD
    out = write_photo(tmp_path / "s.tif", smooth_rgb(), like=like_photo(bit_depth=16, exif=exif.tobytes()))
    tags = exif_tags(read_photo(out).exif)
    assert tags.get(271) == "Blurcam"
    assert tags.get_ifd(0x8769).get(0x9003) == "2024:01:02 03:04:05"


def test_orientation_in_like_exif_is_reset_on_write(tmp_path: Path) -> None:
    like = like_photo(exif=make_exif(Orientation=6, Make="Cam"))
    out = write_photo(tmp_path / "o.jpg", smooth_rgb(), like=like)
    with Image.open(out) as im:
        assert im.getexif().get(274) == 1
    assert read_photo(out).pixels.shape == (24, 36, 3)  # not rotated again


@pytest.mark.parametrize(
    ("suffix", "depth"), [(".jpg", 8), (".png", 8), (".png", 16), (".tif", 16), (".webp", 8), AVIF_8]
)
def test_exif_pixel_dimensions_follow_the_rotated_output(tmp_path: Path, suffix: str, depth: int) -> None:
    """A portrait shot stored landscape (Orientation 6): the result is upright, and its EXIF must not
    keep stating the stored 36x24 size, nor any other tag but the orientation changed."""
    exif = Image.Exif()
    exif[274] = 6
    exif[271] = "Cam"
    sub = exif.get_ifd(0x8769)
    sub[0xA002], sub[0xA003], sub[0x9003] = 36, 24, "2024:01:02 03:04:05"
    Image.fromarray(u8(smooth_rgb())).save(tmp_path / "in.jpg", exif=exif.tobytes())
    photo = read_photo(tmp_path / "in.jpg")
    assert photo.pixels.shape == (36, 24, 3)
    out = write_photo(tmp_path / f"out{suffix}", photo.pixels, like=photo, bit_depth=depth)
    tags = exif_tags(read_photo(out).exif)
    fields = tags.get_ifd(0x8769)
    assert (fields[0xA002], fields[0xA003]) == (24, 36)
    assert tags.get(274) in (1, None) and tags.get(271) == "Cam" and fields[0x9003] == "2024:01:02 03:04:05"


def test_exif_pixel_dimensions_too_wide_for_their_field_are_rewritten() -> None:
    exif = Image.Exif()
    exif[274] = 3
    exif.get_ifd(0x8769)[0xA002] = 36  # written as a SHORT, which cannot hold 70,000
    exif.get_ifd(0x8769)[0xA003] = 24
    out = exif_tags(bio._exif_for_output(exif.tobytes(), (70_000, 20)))
    assert out.get(274) == 1
    assert (out.get_ifd(0x8769)[0xA002], out.get_ifd(0x8769)[0xA003]) == (70_000, 20)


def exif_next_ifd(raw: bytes) -> int:
    """The offset of IFD1 (the thumbnail's IFD) in raw EXIF with its header; 0 when there is none."""
    import struct

    tiff = raw[6:]
    order = "<" if tiff[:2] == b"II" else ">"
    (ifd0,) = struct.unpack_from(order + "I", tiff, 4)
    (count,) = struct.unpack_from(order + "H", tiff, ifd0)
    return struct.unpack_from(order + "I", tiff, ifd0 + 2 + 12 * count)[0]


def test_the_exif_thumbnail_of_the_blurred_source_is_not_carried_over(tmp_path: Path) -> None:
    """A camera's EXIF holds a small JPEG of the photo (IFD1): of the blurred source, and lying on its
    side once the result is turned upright. Viewers show it; the result's EXIF must not link it."""
    import struct
    from io import BytesIO

    thumb = BytesIO()
    Image.fromarray(u8(smooth_rgb())).resize((16, 12)).save(thumb, format="JPEG")
    jpeg = thumb.getvalue()
    make = b"Cam\0"

    def ifd(entries: list[tuple[int, int, int, bytes]], next_ifd: int) -> bytes:
        body = b"".join(struct.pack("<HHI", t, ty, n) + v for t, ty, n, v in entries)
        return struct.pack("<H", len(entries)) + body + struct.pack("<I", next_ifd)

    # header 8 | IFD0 (2 entries, 30 bytes) at 8 | "Cam" at 38 | IFD1 (3 entries, 42 bytes) at 42 | JPEG at 84
    ifd0 = ifd([(271, 2, 4, make), (274, 3, 1, struct.pack("<HH", 6, 0))], 42)
    thumb_at, thumb_len = struct.pack("<I", 84), struct.pack("<I", len(jpeg))
    ifd1 = ifd([(259, 3, 1, struct.pack("<HH", 6, 0)), (513, 4, 1, thumb_at), (514, 4, 1, thumb_len)], 0)
    raw = b"Exif\0\0II*\0" + struct.pack("<I", 8) + ifd0 + make + ifd1 + jpeg
    assert exif_next_ifd(raw) == 42
    Image.fromarray(u8(smooth_rgb())).save(tmp_path / "in.jpg", exif=raw)
    photo = read_photo(tmp_path / "in.jpg")
    out = read_photo(write_photo(tmp_path / "out.jpg", photo.pixels, like=photo)).exif
    assert out is not None and exif_next_ifd(out) == 0
    assert exif_tags(out).get(271) == "Cam" and exif_tags(out).get(274) in (1, None)


def test_exif_without_pixel_dimensions_gains_none(tmp_path: Path) -> None:
    raw = make_exif(Orientation=8, Make="Cam")
    out = bio._exif_for_output(raw, (5, 7))
    assert len(out) == len(raw) and 0x8769 not in exif_tags(out)
    assert exif_tags(out).get(274) == 1


def test_grey_icc_is_not_put_on_colour_output(tmp_path: Path) -> None:
    grey_icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()  # not an RGB profile
    out = write_photo(tmp_path / "c.png", smooth_rgb(), like=like_photo(icc=grey_icc))
    with Image.open(out) as im:
        assert "icc_profile" not in im.info


# --- alpha & grey


@pytest.mark.parametrize("suffix", [".png", ".tif", ".webp"])
def test_rgba_alpha_round_trip(tmp_path: Path, suffix: str) -> None:
    rgba = RNG.integers(0, 256, (10, 12, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / f"in{suffix}", **({"lossless": True} if suffix == ".webp" else {}))
    photo = read_photo(tmp_path / f"in{suffix}")
    assert photo.alpha is not None and photo.alpha.shape == (10, 12) and photo.alpha.dtype == np.float32
    np.testing.assert_array_equal(u8(photo.alpha), rgba[:, :, 3])
    out = write_photo(
        tmp_path / f"out{suffix}", photo.pixels, like=photo, quality=100
    )  # alpha carried from like
    with Image.open(out) as im:
        assert im.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(im)[:, :, 3], rgba[:, :, 3])


@pytest.mark.parametrize("suffix", [".jpg", ".bmp"])
def test_jpeg_flattens_alpha_onto_white_with_a_warning(tmp_path: Path, caplog, suffix) -> None:  # type: ignore[no-untyped-def]
    """The alpha was dropped, showing the colour stored under transparent pixels (animate flattened)."""
    rgb = smooth_rgb()
    alpha = np.full((24, 36), 0.5, np.float32)
    alpha[:, :10] = 0.0
    with caplog.at_level("WARNING"):
        out = write_photo(tmp_path / f"a{suffix}", rgb, alpha=alpha)
    back = read_photo(out)
    assert back.alpha is None
    assert (
        len(caplog.records) == 1 and "holds no transparency; the photo is flattened onto white" in caplog.text
    )
    tol = 0.05 if suffix == ".jpg" else 1 / 255  # JPEG rings at the step to white
    np.testing.assert_allclose(back.pixels[:, :10], 1.0, atol=tol)  # fully transparent: white
    np.testing.assert_allclose(back.pixels[:, 12:], 0.5 * rgb[:, 12:] + 0.5, atol=tol)


def test_palette_with_transparency_gives_alpha(tmp_path: Path) -> None:
    im = Image.fromarray(RNG.integers(0, 4, (6, 8), dtype=np.uint8), mode="L").convert("P")
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9])
    im.info["transparency"] = 3
    im.save(tmp_path / "p.png", transparency=3)
    photo = read_photo(tmp_path / "p.png")
    assert photo.alpha is not None and not photo.grey
    index = np.asarray(Image.open(tmp_path / "p.png"))
    np.testing.assert_array_equal(photo.alpha == 0, index == 3)


def test_16bit_png_transparent_colour_gives_alpha(tmp_path: Path) -> None:
    """A 16-bit RGB PNG's tRNS colour is a 16-bit value: Pillow matched it against its 8-bit decode,
    so no pixel came out transparent."""
    v = random_u16((5, 7, 3))
    v[1, 2] = v[3, 4] = (29649, 28372, 22510)
    v[0, 0] = (29649, 28372, 22511)  # one level off in blue: opaque
    with open(tmp_path / "t.png", "wb") as fh:
        bio._encode_png16(fh, v, None, None)
    data = (tmp_path / "t.png").read_bytes()
    at = data.index(b"IDAT") - 4
    payload = struct.pack(">3H", 29649, 28372, 22510)
    chunk = struct.pack(">I", 6) + b"tRNS" + payload + struct.pack(">I", zlib.crc32(b"tRNS" + payload))
    (tmp_path / "t.png").write_bytes(data[:at] + chunk + data[at:])
    photo = read_photo(tmp_path / "t.png")
    assert photo.bit_depth == 16 and photo.alpha is not None
    assert sorted(zip(*np.nonzero(photo.alpha == 0), strict=True)) == [(1, 2), (3, 4)]
    assert photo.alpha.max() == 1.0
    np.testing.assert_array_equal(u16(photo.pixels), v)


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path: Path) -> None:
    Image.new("CMYK", (8, 6), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=95)
    photo = read_photo(tmp_path / "c.jpg")
    assert photo.pixels.shape == (6, 8, 3) and not photo.grey
    np.testing.assert_allclose(photo.pixels[3, 4], [1, 0, 0], atol=0.02)


def test_a_cmyk_jpeg_s_own_profile_converts_it_to_srgb(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    """The ink the file's profile describes decides the colour, not a naive 1 - ink: magenta and
    yellow make red naively, blue through this profile. The result is sRGB and says so."""
    from conftest import cmyk_icc

    icc = cmyk_icc()
    im = Image.new("CMYK", (8, 6), (0, 255, 255, 0))
    im.paste((255, 0, 0, 0), (0, 0, 4, 6))  # left half cyan: yellow through the profile, cyan naively
    im.save(tmp_path / "c.jpg", quality=95, icc_profile=icc)
    with caplog.at_level("WARNING"):
        photo = read_photo(tmp_path / "c.jpg")
    assert caplog.text == ""
    np.testing.assert_allclose(photo.pixels[3, 6], [0, 0, 1], atol=0.03)
    np.testing.assert_allclose(photo.pixels[3, 1], [1, 1, 0], atol=0.03)
    assert photo.icc_profile is not None and photo.icc_profile[16:20] == b"RGB "
    written = ImageCms.ImageCmsProfile(BytesIO(photo.icc_profile))
    assert ImageCms.getProfileDescription(written).startswith("sRGB")
    # a profile lcms cannot use (its tag table cut off): the naive conversion, and a warning says so
    im.save(tmp_path / "bad.jpg", quality=95, icc_profile=icc[:140])
    with caplog.at_level("WARNING"):
        photo = read_photo(tmp_path / "bad.jpg")
    assert "CMYK profile could not be used" in caplog.text
    np.testing.assert_allclose(photo.pixels[3, 6], [1, 0, 0], atol=0.03)
    np.testing.assert_allclose(photo.pixels[3, 1], [0, 1, 1], atol=0.03)
    assert photo.icc_profile is None


def test_lab_tiff_is_converted_to_rgb(tmp_path: Path) -> None:
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[:, :4] = (200, 30, 40)  # a red and a blue half
    rgb[:, 4:] = (20, 60, 220)
    Image.fromarray(rgb).convert("LAB").save(tmp_path / "lab.tif")
    with Image.open(tmp_path / "lab.tif") as im:
        assert im.mode == "LAB"
    photo = read_photo(tmp_path / "lab.tif")
    assert photo.pixels.shape == (6, 8, 3) and not photo.grey
    np.testing.assert_allclose(photo.pixels[3, 1], np.array([200, 30, 40]) / 255, atol=0.03)
    np.testing.assert_allclose(photo.pixels[3, 6], np.array([20, 60, 220]) / 255, atol=0.03)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif"])
def test_grey_in_grey_out(tmp_path: Path, suffix: str) -> None:
    g = RNG.integers(0, 256, (9, 11), dtype=np.uint8)
    Image.fromarray(g).save(tmp_path / "g.png")
    photo = read_photo(tmp_path / "g.png")
    assert photo.grey and photo.bit_depth == 8
    assert photo.pixels.shape == (9, 11, 3)
    np.testing.assert_array_equal(u8(photo.pixels), np.repeat(g[:, :, None], 3, axis=2))
    out = write_photo(tmp_path / f"out{suffix}", photo.pixels, like=photo)
    with Image.open(out) as im:
        assert im.mode == "L"
    back = read_photo(out)
    assert back.grey
    if suffix != ".jpg":
        np.testing.assert_array_equal(u8(back.pixels[:, :, 0]), g)


# --- errors


def test_error_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PhotoError) as err:
        read_photo(tmp_path / "nope.jpg")
    assert_one_line_naming(err, tmp_path / "nope.jpg")


def test_error_directory(tmp_path: Path) -> None:
    (tmp_path / "d.png").mkdir()
    with pytest.raises(PhotoError) as err:
        read_photo(tmp_path / "d.png")
    assert_one_line_naming(err, tmp_path / "d.png")
    assert "directory" in str(err.value)


def test_error_empty_file(tmp_path: Path) -> None:
    (tmp_path / "e.jpg").write_bytes(b"")
    with pytest.raises(PhotoError) as err:
        read_photo(tmp_path / "e.jpg")
    assert_one_line_naming(err, tmp_path / "e.jpg")
    assert "empty" in str(err.value)


def test_error_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "t.jpg").write_text("hello, I am text\nsecond line\n")
    with pytest.raises(PhotoError) as err:
        read_photo(tmp_path / "t.jpg")
    assert_one_line_naming(err, tmp_path / "t.jpg")
    assert "not an image" in str(err.value)


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif", ".webp"])
def test_error_truncated_image(tmp_path: Path, suffix: str) -> None:
    full = tmp_path / f"full{suffix}"
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(full)
    data = full.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(PhotoError) as err:
        read_photo(cut)
    assert_one_line_naming(err, cut)


@pytest.mark.parametrize(("suffix", "name"), [(".png", "PNG"), (".tif", "TIFF"), (".gif", "GIF")])
def test_error_header_cut_short_names_the_format(tmp_path: Path, suffix: str, name: str) -> None:
    """A photo cut off inside its header is a damaged photo of that format, not "not an image file"."""
    full = tmp_path / f"full{suffix}"
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(full)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(full.read_bytes()[:12])
    with pytest.raises(PhotoError) as err:
        read_photo(cut)
    assert_one_line_naming(err, cut)
    assert f"truncated or damaged {name} file" in str(err.value)
    (tmp_path / "text.png").write_bytes(b"hello, I am words")
    with pytest.raises(PhotoError, match="not an image file"):
        read_photo(tmp_path / "text.png")


def test_error_truncated_even_if_pillow_is_told_to_accept_truncation(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    full = tmp_path / "full.jpg"
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(full)
    (tmp_path / "cut.jpg").write_bytes(full.read_bytes()[:1500])
    with pytest.raises(PhotoError):
        read_photo(tmp_path / "cut.jpg")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the caller's setting is put back


def test_error_truncated_16bit_png(tmp_path: Path) -> None:
    write_photo(tmp_path / "full.png", random_u16((40, 40, 3)) / 65535, bit_depth=16)
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(PhotoError) as err:
        read_photo(tmp_path / "cut.png")
    assert_one_line_naming(err, tmp_path / "cut.png")


def test_error_decompression_bomb(tmp_path: Path) -> None:
    Image.new("RGB", (40, 30)).save(tmp_path / "big.png")
    for limit in (1000, 500, 100):  # just over the limit (our check), and far over it (Pillow's)
        with pytest.raises(PhotoError) as err:
            read_photo(tmp_path / "big.png", max_pixels=limit)
        assert_one_line_naming(err, tmp_path / "big.png")
        assert "too large" in str(err.value)
    assert read_photo(tmp_path / "big.png", max_pixels=1200).pixels.shape == (30, 40, 3)


def test_error_unreadable(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "secret.png"
    Image.new("RGB", (4, 4)).save(path)
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        path.chmod(0)
    else:  # root reads everything: simulate the OS refusing

        def refuse(self: Path) -> bytes:
            raise PermissionError(13, "Permission denied", str(self))

        monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(PhotoError) as err:
        read_photo(path)
    assert_one_line_naming(err, path)
    assert "permission" in str(err.value).lower()


def test_error_message_with_newline_in_name_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "two\nlines.jpg"
    with pytest.raises(PhotoError) as err:
        read_photo(path)
    assert len(str(err.value).splitlines()) == 1


def test_write_refuses_to_overwrite_its_input(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    Image.fromarray(RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(src)
    before = src.read_bytes()
    photo = read_photo(src)
    for same in (src, tmp_path / "sub" / ".." / "in.png"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        with pytest.raises(PhotoError) as err:
            write_photo(same, photo.pixels, like=photo)
        assert "in.png" in str(err.value)
    assert src.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "sub"]


def test_write_unknown_suffix_and_unwritable_folder(tmp_path: Path) -> None:
    with pytest.raises(PhotoError) as err:
        write_photo(tmp_path / "x.xyz", smooth_rgb())
    assert_one_line_naming(err, tmp_path / "x.xyz")
    (tmp_path / "file").write_text("not a folder")
    target = tmp_path / "file" / "out.png"  # its "folder" is a file: cannot be created or written
    with pytest.raises(PhotoError) as err:
        write_photo(target, smooth_rgb())
    assert_one_line_naming(err, target)


def test_write_creates_missing_folders(tmp_path: Path) -> None:
    out = write_photo(tmp_path / "a" / "b" / "c.png", smooth_rgb())
    assert out.is_file()
    assert read_photo(out).pixels.shape == (24, 36, 3)


@pytest.mark.parametrize("depth", [8, 16])
def test_write_is_atomic(tmp_path: Path, monkeypatch, depth: int) -> None:  # type: ignore[no-untyped-def]
    def broken_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        Path(str(fp)).write_bytes(b"half a file")
        raise RuntimeError("encoder exploded")

    def broken_png16(fh, *args: object) -> None:  # type: ignore[no-untyped-def]
        fh.write(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    monkeypatch.setattr(bio, "_encode_png16", broken_png16)
    with pytest.raises((RuntimeError, PhotoError)):
        write_photo(tmp_path / "new.png", smooth_rgb(), bit_depth=depth)
    assert list(tmp_path.iterdir()) == []
    # an existing file at the destination is left untouched
    (tmp_path / "old.png").write_bytes(b"old content")
    with pytest.raises((RuntimeError, PhotoError)):
        write_photo(tmp_path / "old.png", smooth_rgb(), bit_depth=depth)
    assert [p.name for p in tmp_path.iterdir()] == ["old.png"]
    assert (tmp_path / "old.png").read_bytes() == b"old content"


def test_a_written_file_reaches_the_disk_before_it_takes_its_name(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A power cut after the rename must not leave an empty file under the photo's name: the temporary
    is flushed (fsync) before it is renamed, for both the replacing and the new-file paths."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace, real_publish = os.fsync, bio.fsutil.replace, bio._publish_new

    def fsync(fd: int) -> None:
        events.append(
            ("fsync", os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else "")
        )
        real_fsync(fd)

    def renamed(real):  # type: ignore[no-untyped-def]
        def call(src, dst, *a):  # type: ignore[no-untyped-def]
            events.append(("rename", str(src)))
            return real(src, dst, *a)

        return call

    monkeypatch.setattr(bio.os, "fsync", fsync)
    monkeypatch.setattr(bio.fsutil, "replace", renamed(real_replace))
    monkeypatch.setattr(bio, "_publish_new", renamed(real_publish))
    for replace in (True, False):
        events.clear()
        write_photo(tmp_path / f"p{replace}.png", smooth_rgb(), replace=replace)
        kinds = [k for k, _ in events]
        assert kinds.index("fsync") < kinds.index("rename"), events
        tmp = events[kinds.index("rename")][1]
        assert ".tmp" in tmp and all(path in ("", tmp) for k, path in events if k == "fsync")


def test_written_file_permissions_follow_umask(tmp_path: Path) -> None:
    if os.name != "posix":
        pytest.skip("POSIX permissions")
    out = write_photo(tmp_path / "p.png", smooth_rgb())
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_unicode_path_with_spaces(tmp_path: Path) -> None:
    folder = tmp_path / "папка с пробелом"
    out = write_photo(folder / "фото с пробелом.png", smooth_rgb())
    assert out.name == "фото с пробелом.png"
    assert read_photo(out).pixels.shape == (24, 36, 3)
    v = random_u16((5, 7, 3))  # the 16-bit colour path runs ffmpeg on this name
    out16 = write_photo(folder / "фото с пробелом 16.png", v / 65535, bit_depth=16)
    np.testing.assert_array_equal(u16(read_photo(out16).pixels), v)


def test_is_image_path() -> None:
    assert bio.is_image_path("a/B.JPG") and bio.is_image_path("x.tiff") and bio.is_image_path(Path("y.webp"))
    assert (
        not bio.is_image_path("clip.mp4")
        and not bio.is_image_path("notes")
        and not bio.is_image_path(".tmp.png")
    )
    avif = {".avif"} if bio.AVIF_SUPPORTED else set()
    jpeg = {".jpg", ".jpeg", ".jfif", ".jpe"}
    assert jpeg | {".png", ".tif", ".tiff", ".webp", ".bmp"} | avif == set(bio.IMAGE_SUFFIXES)
    assert {bio.photo_format("x" + s.upper()) for s in jpeg} == {"JPEG"}
    assert bio.is_image_path("IMG_0001.AVIF") == bio.AVIF_SUPPORTED


# --- video


def video_frames(n: int = 5, h: int = 17, w: int = 23) -> list[np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return [np.stack([(xx + 3 * i) % w / w, yy / h, np.full_like(xx, i / n)], axis=2) for i in range(n)]


def test_video_kind(tmp_path: Path) -> None:
    assert (
        bio.video_kind("a.gif") == "gif"
        and bio.video_kind("a.MP4") == "mp4"
        and bio.video_kind("a.webp") == "webp"
    )
    assert bio.video_kind(tmp_path / "frames") == "frames"
    (tmp_path / "v1.2").mkdir()
    assert bio.video_kind(tmp_path / "v1.2") == "frames"
    with pytest.raises(PhotoError) as err:
        bio.video_kind(tmp_path / "clip.avi")
    assert_one_line_naming(err, tmp_path / "clip.avi")


@pytest.mark.parametrize("loop", [True, False])
def test_gif(tmp_path: Path, loop: bool) -> None:
    frames = video_frames()
    out = write_video(tmp_path / "v.gif", frames, fps=10, loop=loop)
    with Image.open(out) as im:
        assert im.n_frames == 5 and im.size == (23, 17)
        assert im.info.get("duration") == 100
        assert ("loop" in im.info) == loop
        if loop:
            assert im.info["loop"] == 0
        im.seek(2)
        decoded = np.asarray(im.convert("RGB")).astype(np.float32) / 255
    assert np.abs(decoded - frames[2]).mean() < 0.04  # shared palette + ordered dither stays close


@pytest.mark.parametrize("loop", [True, False])
def test_animated_webp(tmp_path: Path, loop: bool) -> None:
    out = write_video(tmp_path / "v.webp", video_frames(), fps=8, loop=loop, quality=90)
    with Image.open(out) as im:
        assert im.n_frames == 5 and im.size == (23, 17)
        assert im.info.get("loop") == (0 if loop else 1)  # 0: for ever; 1: play once


@pytest.mark.parametrize(("suffix", "step"), [(".gif", 10), (".webp", 1)])
def test_frame_times_keep_the_frame_rate_where_ms_do_not_divide(
    tmp_path: Path, suffix: str, step: int
) -> None:
    """At 12 fps a frame lasts 83.3 ms: rounding each frame alone (80 ms in GIF's 10 ms steps) would
    play a second of motion in 0.96 s; the durations keep the running sum on the frame clock."""
    from conftest import frame_durations

    frames = [video_frames()[i % 5] for i in range(12)]
    durations = frame_durations(write_video(tmp_path / f"v{suffix}", frames, fps=12, loop=True))
    assert len(durations) == 12 and sum(durations) == 1000
    assert all(d % step == 0 and abs(d - 1000 / 12) < step for d in durations)


def probe_video(path: Path) -> tuple[str, int, int, int]:
    """(input stream description, width, height, decoded frame count) by a full decode with ffmpeg."""
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-f", "rawvideo",
           "-pix_fmt", "rgb24", "pipe:1"]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, check=True)
    stream = next(line for line in result.stderr.decode().splitlines() if "Video:" in line)
    found = re.search(r", (\d+)x(\d+)[, ]", stream)
    assert found is not None, stream
    width, height = int(found.group(1)), int(found.group(2))
    return stream, width, height, len(result.stdout) // (width * height * 3)


@pytest.mark.parametrize(("h", "w"), [(16, 24), (17, 23)])
def test_mp4_plays_and_pads_odd_sizes(tmp_path: Path, h: int, w: int) -> None:
    out = write_video(tmp_path / "видео с пробелом.mp4", video_frames(6, h, w), fps=12)
    stream, width, height, count = probe_video(out)
    assert count == 6
    assert (width, height) == (w + w % 2, h + h % 2)
    assert "h264" in stream and "yuv420p" in stream and "12 fps" in stream
    assert [p.name for p in tmp_path.iterdir()] == ["видео с пробелом.mp4"]


def test_frame_folder_and_its_replacement_rules(tmp_path: Path) -> None:
    target = tmp_path / "frames"
    write_video(target, video_frames(5))
    names = sorted(p.name for p in target.iterdir())
    assert names == [f"frame_{i:04d}.png" for i in range(1, 6)]
    with Image.open(target / "frame_0003.png") as im:
        assert im.size == (23, 17)
    write_video(target, video_frames(3))  # only frame_*.png inside: replaced, stale frames gone
    assert sorted(p.name for p in target.iterdir()) == [f"frame_{i:04d}.png" for i in range(1, 4)]
    (target / "notes.txt").write_text("mine")
    with pytest.raises(PhotoError) as err:
        write_video(target, video_frames(2))
    assert_one_line_naming(err, target)
    assert (target / "notes.txt").exists() and len(list(target.iterdir())) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]  # no temporary folders left


def test_video_is_atomic(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def broken_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        Path(str(fp)).write_bytes(b"GIF89a half")
        raise RuntimeError("encoder exploded")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    for name in ("v.gif", "v.webp", "frames"):
        with pytest.raises(RuntimeError):
            write_video(tmp_path / name, video_frames(2))
    assert list(tmp_path.iterdir()) == []


def test_video_rejects_bad_frames(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_video(tmp_path / "v.gif", [])
    with pytest.raises(ValueError):
        write_video(tmp_path / "v.gif", [np.zeros((4, 4, 3)), np.zeros((4, 5, 3))])
    assert list(tmp_path.iterdir()) == []


def test_write_video_takes_uint8_frames_like_floats(tmp_path):
    rng = np.random.default_rng(0)
    floats = [rng.random((10, 14, 3), dtype=np.float32) for _ in range(3)]
    a, b = tmp_path / "a", tmp_path / "b"
    bio.write_video(a, floats)
    bio.write_video(b, [bio.to_uint8(f) for f in floats])
    for name in ("frame_0001.png", "frame_0003.png"):
        assert np.array_equal(np.asarray(Image.open(a / name)), np.asarray(Image.open(b / name)))
    assert bio.to_uint8(np.array([[[0.0, 0.5, 1.0]]])).tolist() == [[[0, 128, 255]]]


# ---------------------------------------------------------------------------- session 19 audit fixes


@pytest.mark.parametrize("quality", [90, 94, 100])
def test_jpeg_of_fine_grain_at_high_quality_is_written(tmp_path: Path, quality: int) -> None:
    """Pillow's optimising JPEG encoder has a fixed 1-2 bytes/pixel buffer that heavy grain at 4:4:4
    overflows; the write must still succeed and decode to the same size."""
    grain = np.clip(np.random.default_rng(0).normal(0.5, 0.25, (160, 240, 3)), 0, 1).astype(np.float32)
    out = write_photo(tmp_path / f"g{quality}.jpg", grain, quality=quality)
    with Image.open(out) as im:
        assert im.size == (240, 160) and im.format == "JPEG"
        im.load()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_jpeg_of_a_smooth_photo_keeps_optimised_huffman_tables(tmp_path: Path) -> None:
    out = write_photo(tmp_path / "s.jpg", smooth_rgb(120, 160), quality=95)
    plain = Image.fromarray((smooth_rgb(120, 160) * 255).round().astype(np.uint8))
    plain.save(tmp_path / "plain.jpg", quality=95, subsampling=0)
    assert out.stat().st_size < (tmp_path / "plain.jpg").stat().st_size


def test_an_animation_is_refused_and_a_one_frame_gif_is_a_photo(tmp_path: Path) -> None:
    frames = [Image.fromarray((RNG.random((16, 20, 3)) * 255).astype(np.uint8)) for _ in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "a.webp", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "two.gif", save_all=True, append_images=frames[1:2])
    for name in ("a.gif", "a.webp"):
        with pytest.raises(PhotoError, match=r"is an animation \(3 frames\), not a still photo"):
            read_photo(tmp_path / name)
    with pytest.raises(PhotoError, match=r"is an animation \(2 frames\)"):  # two frames are one too many
        read_photo(tmp_path / "two.gif")
    frames[0].save(tmp_path / "one.gif")
    assert read_photo(tmp_path / "one.gif").pixels.shape == (16, 20, 3)


def test_video_frames_in_a_wide_gamut_profile_are_converted_to_srgb(tmp_path: Path) -> None:
    """No video format carries a profile: P3 values written as they are would look desaturated."""
    from conftest import to_srgb, wide_gamut_icc

    icc = wide_gamut_icc()
    frame = np.zeros((8, 10, 3), np.uint8)
    frame[:] = (220, 60, 40)
    expected = to_srgb((220, 60, 40), icc)
    assert abs(expected.astype(int) - (220, 60, 40)).max() > 15  # the conversion matters
    write_video(tmp_path / "f", [frame, frame], icc=icc)
    got = np.asarray(Image.open(tmp_path / "f" / "frame_0001.png"))[4, 5]
    assert abs(got.astype(int) - expected).max() <= 1
    write_video(tmp_path / "s", [frame, frame], icc=SRGB_ICC)  # sRGB: untouched
    assert (np.asarray(Image.open(tmp_path / "s" / "frame_0001.png"))[4, 5] == (220, 60, 40)).all()


def test_bmp_holds_no_profile_so_wide_gamut_colours_are_converted(tmp_path: Path) -> None:
    from conftest import to_srgb, wide_gamut_icc

    icc = wide_gamut_icc()
    pixels = np.zeros((6, 7, 3), np.float32)
    pixels[:] = np.array((220, 60, 40)) / 255
    write_photo(tmp_path / "c.bmp", pixels, like=like_photo(icc=icc, shape=(6, 7)))
    got = np.asarray(Image.open(tmp_path / "c.bmp"))[3, 3]
    assert abs(got.astype(int) - to_srgb((220, 60, 40), icc)).max() <= 1
    write_photo(tmp_path / "c.png", pixels, like=like_photo(icc=icc, shape=(6, 7)))  # PNG keeps the profile
    with Image.open(tmp_path / "c.png") as im:
        assert im.info["icc_profile"] == icc and tuple(np.asarray(im)[3, 3]) == (220, 60, 40)


def test_is_frame_folder(tmp_path: Path) -> None:
    assert not bio.is_frame_folder(tmp_path)  # empty
    write_video(tmp_path / "f", video_frames(2))
    assert bio.is_frame_folder(tmp_path / "f")
    (tmp_path / "f" / "notes.txt").write_text("x")
    assert not bio.is_frame_folder(tmp_path / "f")
    assert not bio.is_frame_folder(tmp_path / "missing")
    user = tmp_path / "extracted"  # frames another program wrote (ffmpeg -i clip.mp4 frame_%04d.png)
    user.mkdir()
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(user / "frame_0001.png")
    assert not bio.is_frame_folder(user)
    with pytest.raises(
        bio.PhotoError, match=r"'frame_0001\.png', which blurvid did not write; not replacing it"
    ):
        write_video(user, video_frames(2))
    assert [p.name for p in user.iterdir()] == ["frame_0001.png"]


XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:tiff="http://ns.adobe.com/tiff/1.0/"'
    b' xmp:Rating="4" tiff:Orientation="6"><dc:subject xmlns:dc="http://purl.org/dc/elements/1.1/">'
    + "<rdf:Bag><rdf:li>Велосипед</rdf:li></rdf:Bag></dc:subject>".encode()
    + b"</rdf:Description></rdf:RDF></x:xmpmeta>"
)


@pytest.mark.parametrize(
    ("suffix", "depth"),
    [(".jpg", 8), (".png", 8), (".png", 16), (".tif", 8), (".tif", 16), (".webp", 8), AVIF_8],
)
def test_xmp_exif_and_dpi_are_carried_with_orientation_reset(tmp_path: Path, suffix: str, depth: int) -> None:
    """Ratings and keywords (XMP) survive beside the EXIF (an 8-bit TIFF lost its EXIF when it had XMP),
    with the XMP orientation reset as EXIF's is (pixels are upright); so does the print resolution, turned
    with the pixels (WebP holds none)."""
    exif = Image.Exif()
    exif[274] = 6
    exif[271] = "Canon"
    Image.fromarray((smooth_rgb() * 255).astype(np.uint8)).save(
        tmp_path / "in.jpg", xmp=XMP, exif=exif, dpi=(300, 240)
    )
    photo = read_photo(tmp_path / "in.jpg")
    assert photo.pixels.shape == (36, 24, 3)  # rotated upright
    assert photo.xmp == XMP.replace(b'tiff:Orientation="6"', b'tiff:Orientation="1"')
    assert photo.dpi == (240, 300)
    out = write_photo(tmp_path / f"out{suffix}", photo.pixels, like=photo, bit_depth=depth)
    back = read_photo(out)
    assert back.xmp == photo.xmp and back.bit_depth == depth
    assert "Велосипед".encode() in back.xmp
    with Image.open(out) as im:
        assert im.getexif().get(271) == "Canon" and im.getexif().get(274, 1) == 1
    if suffix in (".webp", ".avif"):
        assert back.dpi is None
    else:
        assert back.dpi is not None and np.allclose(back.dpi, (240, 300), atol=0.01)


def test_xmp_element_form_orientation_is_reset_too(tmp_path: Path) -> None:
    xmp = XMP.replace(b' tiff:Orientation="6">', b"><tiff:Orientation>8</tiff:Orientation>")
    Image.fromarray((smooth_rgb() * 255).astype(np.uint8)).save(tmp_path / "in.webp", xmp=xmp)
    assert b"<tiff:Orientation>1</tiff:Orientation>" in read_photo(tmp_path / "in.webp").xmp


def test_a_float_tiff_outside_0_1_is_read_clipped_with_a_warning(tmp_path: Path, caplog) -> None:
    values = np.linspace(-0.5, 2.0, 20 * 30, dtype=np.float32).reshape(20, 30)
    Image.fromarray(values, mode="F").save(tmp_path / "hdr.tif")
    with caplog.at_level("WARNING", logger="blurvid"):
        photo = read_photo(tmp_path / "hdr.tif")
    assert photo.pixels.min() == 0 and photo.pixels.max() == 1 and photo.bit_depth == 16
    assert [r.getMessage().split(": ", 1)[1] for r in caplog.records] == [
        "60.0 % of its floating-point values lie outside 0..1 and are clipped"
    ]
    # on a 0..255 scale it was read almost all white, written with exit 0: now it is refused, also
    # with a black border (2 % of the values within 0..1)
    scaled = np.linspace(0.0, 255.0, 20 * 30, dtype=np.float32).reshape(20, 30)
    scaled[:, :1] = 0.0
    Image.fromarray(scaled, mode="F").save(tmp_path / "255.tif")
    with pytest.raises(
        bio.PhotoError, match=r"lie on another scale than 0..1 \(median 123.2, from 0 to 255\)"
    ):
        read_photo(tmp_path / "255.tif")


def test_a_multi_page_tiff_reads_its_first_page_with_a_warning(tmp_path: Path, caplog) -> None:
    pages = [Image.fromarray(np.full((10, 12, 3), v, np.uint8)) for v in (10, 200, 90)]
    pages[0].save(tmp_path / "pages.tif", save_all=True, append_images=pages[1:])
    with caplog.at_level("WARNING", logger="blurvid"):
        photo = read_photo(tmp_path / "pages.tif")
    assert np.allclose(photo.pixels, 10 / 255)
    assert [r.getMessage().split(": ", 1)[1] for r in caplog.records] == [
        "has 3 pages; only the first is read"
    ]


@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize("compression", ["tiff_lzw", "tiff_adobe_deflate", "packbits", "raw"])
def test_a_compressed_tiff_gives_a_compressed_lossless_result(
    tmp_path: Path, compression: str, depth: int
) -> None:
    """LZW / Deflate / PackBits in, a lossless compressed TIFF out (it came out uncompressed): 8-bit as
    read, 16-bit as Deflate with the horizontal predictor, every value kept."""
    rgb = smooth_rgb()
    Image.fromarray((rgb * 255).astype(np.uint8)).save(tmp_path / "in.tif", compression=compression)
    photo = read_photo(tmp_path / "in.tif")
    out = write_photo(tmp_path / "out.tif", rgb, like=photo, bit_depth=depth)
    with Image.open(out) as im:
        expected = "raw" if compression == "raw" else compression if depth == 8 else "tiff_adobe_deflate"
        assert im.info["compression"] == expected
    back = read_photo(out)
    assert back.bit_depth == depth
    np.testing.assert_array_equal(back.pixels, bio._quantize(rgb, depth) / np.float32(2**depth - 1))


def test_gif_keeps_highlights_and_one_colour_table(tmp_path: Path) -> None:
    """Near-white highlights beside a warm picture kept their colour (median cut had averaged them
    into a yellowish box); the palette is written once, not again in every frame."""
    rng = np.random.default_rng(0)
    warm = np.stack(
        [
            rng.uniform(0.4, 0.9, (120, 160)),
            rng.uniform(0.3, 0.7, (120, 160)),
            rng.uniform(0.1, 0.4, (120, 160)),
        ],
        2,
    )
    warm[:8, :8] = 1.0  # a small specular highlight (0.3 % of the picture)
    frames = [np.roll(warm, k, axis=1).astype(np.float32) for k in range(4)]
    out = write_video(tmp_path / "h.gif", frames, fps=12)
    with Image.open(out) as im:
        first = np.asarray(im.convert("RGB")).astype(int)
    assert first[:8, :8].min() >= 240  # white stays white, in every channel (median cut: 232, 218, 160)
    assert _gif_local_colour_tables(out.read_bytes()) == [False] * 4


def _gif_local_colour_tables(data: bytes) -> list[bool]:
    """For each image of a GIF, whether it carries its own colour table (walks the block structure)."""
    pos, tables = 13, []
    if data[10] & 0x80:  # the global colour table
        pos += 3 * 2 ** ((data[10] & 7) + 1)

    def skip_sub_blocks(i: int) -> int:
        while data[i]:
            i += data[i] + 1
        return i + 1

    while data[pos] != 0x3B:  # trailer
        if data[pos] == 0x21:  # extension: label, then sub-blocks
            pos = skip_sub_blocks(pos + 2)
        else:  # 0x2C image descriptor: 9 bytes, maybe a local table, LZW code size, sub-blocks
            flags = data[pos + 9]
            tables.append(bool(flags & 0x80))
            pos += 10 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
            pos = skip_sub_blocks(pos + 1)
    return tables


def test_video_frames_must_be_8_bit_or_float(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="uint8 or float"):
        write_video(tmp_path / "x.gif", [np.full((8, 8, 3), 30000, np.uint16)] * 2)


def test_gif_above_50_fps_and_webp_above_90_fps_warn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from conftest import frame_durations

    frames = [smooth_rgb(), 1 - smooth_rgb()]
    with caplog.at_level("WARNING", logger="blurvid"):
        write_video(tmp_path / "fast.gif", frames, fps=60)
        write_video(tmp_path / "ok.webp", frames, fps=90)
    assert [r.getMessage().split(": ", 1)[1] for r in caplog.records] == [
        "a GIF plays at most 50 frames per second; 60 fps plays slower (use .mp4, or .webp up to 90 fps)"
    ]
    caplog.clear()
    with caplog.at_level("WARNING", logger="blurvid"):
        write_video(tmp_path / "fast.webp", frames, fps=120)
    assert "a WebP plays at most 90 frames per second; 120 fps plays slower (use .mp4)" in caplog.text
    assert frame_durations(tmp_path / "fast.webp") == [11, 11]  # what it plays at: 11 ms frames


# --- files a photographer has that blurvid does not read: camera RAW, HEIC, JPEG XL; TIFF pages


def tiff_page(value: int, size: tuple[int, int] = (12, 8), **tags: tuple[int, object]) -> bytes:
    """A one-page 8-bit RGB TIFF of one grey ``value``, with extra IFD tags given as
    ``t<number>=(type, value)`` (e.g. ``t254=(TiffTags.LONG, 1)``: a reduced-resolution page)."""
    from io import BytesIO

    from PIL import TiffImagePlugin

    ifd = TiffImagePlugin.ImageFileDirectory_v2()
    for name, (typ, v) in tags.items():
        ifd.tagtype[int(name[1:])] = typ
        ifd[int(name[1:])] = v
    out = BytesIO()
    Image.new("RGB", size, (value,) * 3).save(out, format="TIFF", tiffinfo=ifd)
    return out.getvalue()


def tiff_pages(path: Path, pages: list[bytes]) -> Path:
    """Chain one-page TIFFs into one multi-page TIFF at ``path`` (each page keeps its own tags)."""
    from PIL import TiffImagePlugin

    with TiffImagePlugin.AppendingTiffWriter(str(path), new=True) as tf:
        for page in pages:
            tf.write(page)
            tf.newFrame()
    return path


@pytest.mark.parametrize("name", ["IMG_0001.CR2", "DSC_0001.NEF", "_DSC0001.ARW", "P1000001.RW2", "x.dng"])
def test_a_camera_raw_file_is_refused_by_its_name_with_what_to_do(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    # a DNG is a TIFF Pillow would open (at its preview); the others random bytes, as Pillow sees them
    path.write_bytes(tiff_page(90) if name.endswith(".dng") else RNG.bytes(3000))
    with pytest.raises(PhotoError) as err:
        read_photo(path)
    assert_one_line_naming(err, path)
    assert err.value.reason == bio.RAW_REASON
    assert bio.RAW_REASON == (
        "camera RAW files are not supported; export a TIFF (16-bit keeps the most) or JPEG from your RAW "
        "converter first"
    )


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(tiff_page(90, t50706=(1, b"\x01\x04\x00\x00")), id="DNGVersion"),
        pytest.param(tiff_page(90, t254=(4, 1), t50706=(1, b"\x01\x04\x00\x00")), id="DNG-preview-IFD0"),
        pytest.param(tiff_page(90, t254=(4, 1), t330=(4, 8)), id="preview-with-SubIFDs"),  # NEF, ARW, PEF
        pytest.param(b"II*\x00\x10\x00\x00\x00CR\x02\x00" + bytes(200), id="CR2"),
        pytest.param(b"IIRO\x08\x00\x00\x00" + bytes(200), id="ORF"),
        pytest.param(b"\x00\x00\x00\x18ftypcrx " + bytes(200), id="CR3"),
        pytest.param(b"FUJIFILMCCD-RAW 0201" + bytes(200), id="RAF"),
    ],
)
def test_a_camera_raw_file_under_a_tiff_name_is_refused_not_read_at_its_preview(
    tmp_path: Path, data: bytes
) -> None:
    """Pillow opens a DNG (a TIFF) at its first IFD: a small preview, or the sensor's raw samples."""
    path = tmp_path / "renamed.tif"
    path.write_bytes(data)
    with pytest.raises(PhotoError) as err:
        read_photo(path)
    assert_one_line_naming(err, path)
    assert err.value.reason == bio.RAW_REASON


def test_a_tiff_is_read_at_its_first_full_size_page(tmp_path: Path, caplog) -> None:
    """Reduced-resolution previews (NewSubfileType 1) and transparency masks (4) are not pages of the
    photo: passed over, and not counted in the warning about pages left unread."""
    from PIL import TiffTags

    preview, mask = {"t254": (TiffTags.LONG, 1)}, {"t254": (TiffTags.LONG, 4)}
    path = tiff_pages(
        tmp_path / "preview_first.tif",
        [tiff_page(10, (6, 4), **preview), tiff_page(200), tiff_page(50, **mask)],
    )
    with caplog.at_level("WARNING", logger="blurvid"):
        photo = read_photo(path)
    assert (photo.width, photo.height) == (12, 8) and np.allclose(photo.pixels, 200 / 255)
    assert caplog.records == []
    path = tiff_pages(
        tmp_path / "two_photos.tif", [tiff_page(30), tiff_page(10, (6, 4), **preview), tiff_page(70)]
    )
    with caplog.at_level("WARNING", logger="blurvid"):
        photo = read_photo(path)
    assert np.allclose(photo.pixels, 30 / 255)
    assert [r.getMessage().split(": ", 1)[1] for r in caplog.records] == [
        "has 2 pages; only the first is read"
    ]


def test_a_16bit_tiff_after_a_preview_keeps_its_16_bits(tmp_path: Path, caplog) -> None:
    """ffmpeg, which decodes the 16 bits, reads a TIFF's first page only: it is given a copy whose
    header points at the full-size page (before, such a file was read at 8 bits, with a warning)."""
    from PIL import TiffTags

    values = u16(RNG.random((8, 12, 3)))
    ffmpeg_encode_still(tmp_path / "wide.tif", values, ["-pix_fmt", "rgb48le"])
    preview = tiff_page(10, (6, 4), t254=(TiffTags.LONG, 1))
    path = tiff_pages(tmp_path / "preview_then_wide.tif", [preview, (tmp_path / "wide.tif").read_bytes()])
    with caplog.at_level("WARNING", logger="blurvid"):
        photo = read_photo(path)
    assert caplog.records == []
    assert photo.bit_depth == 16 and (photo.width, photo.height) == (12, 8)
    np.testing.assert_allclose(photo.pixels, values / 65535, atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preview_then_wide.tif", "wide.tif"]


@pytest.mark.parametrize("big", [False, True], ids=["TIFF", "BigTIFF"])
def test_tiff_page_header_makes_a_later_page_the_first(big: bool) -> None:
    from io import BytesIO

    pages = [Image.new("RGB", (5, 4), (v,) * 3) for v in (30, 60, 90)]
    out = BytesIO()
    pages[0].save(out, format="TIFF", save_all=True, append_images=pages[1:], big_tiff=big)
    data = out.getvalue()
    for index, value in enumerate((30, 60, 90)):
        header = bio._tiff_page_header(data, index)
        assert header is not None and len(header) == (16 if big else 8)
        with Image.open(BytesIO(header + data[len(header) :])) as im:
            assert im.getpixel((0, 0)) == (value,) * 3
    assert bio._tiff_page_header(data, 3) is None  # past the last page
    assert bio._tiff_page_header(data[:40], 2) is None  # the chain runs out of the file
    assert bio._tiff_page_header(b"\x89PNG\r\n\x1a\n" + bytes(20), 1) is None


def test_a_tiff_holding_only_a_preview_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "thumb.tif"
    path.write_bytes(tiff_page(90, t254=(4, 1)))
    with pytest.raises(PhotoError) as err:
        read_photo(path)
    assert_one_line_naming(err, path)
    assert err.value.reason.startswith("holds only a reduced-resolution preview (TIFF NewSubfileType 1)")


HEIF_BOX = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"


@pytest.mark.parametrize(
    ("name", "data", "what"),
    [
        ("IMG_0001.HEIC", HEIF_BOX + bytes(200), "HEIC / HEIF"),  # an iPhone's
        ("IMG_0001.jpg", HEIF_BOX + bytes(200), "HEIC / HEIF"),  # by content, whatever its name
        ("mif1.heif", b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic" + bytes(200), "HEIC / HEIF"),
        ("IMG_0001.HIF", b"not a real file", "HEIC / HEIF"),  # Canon / Sony; by its name
        ("x.jxl", b"\xff\x0a" + bytes(200), "JPEG XL"),
        ("x.png", b"\x00\x00\x00\x0cJXL \r\n\x87\n" + bytes(200), "JPEG XL"),
    ],
)
def test_heic_and_jpeg_xl_are_refused_with_what_to_do(
    tmp_path: Path, name: str, data: bytes, what: str
) -> None:
    if {".heic", ".jxl"} & set(Image.registered_extensions()):
        pytest.skip("a HEIF or JPEG XL plugin is registered in this Pillow")
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(PhotoError) as err:
        read_photo(path)
    assert_one_line_naming(err, path)
    assert (
        err.value.reason
        == f"{what} is not supported by this installation's Pillow; convert it to JPEG or TIFF first"
    )
    # a folder run leaves such files out by their name (and counts them)
    assert (bio.unsupported(path) is not None) == (path.suffix.lower() in (".heic", ".heif", ".hif", ".jxl"))


def test_avif_without_pillow_support_is_refused_with_what_to_do(tmp_path: Path, monkeypatch) -> None:
    """A Pillow built without libavif identifies an AVIF only to say that it cannot read it."""
    from PIL import AvifImagePlugin

    path = tmp_path / "x.avif"
    path.write_bytes(b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + bytes(200))
    monkeypatch.setattr(AvifImagePlugin, "SUPPORTED", False)
    monkeypatch.delitem(Image.EXTENSION, ".avif", raising=False)
    with pytest.raises(PhotoError) as err:
        read_photo(path)
    assert err.value.reason.startswith("AVIF is not supported by this installation's Pillow")
    assert bio.unsupported(path) is not None and bio.unsupported(tmp_path / "x.jpg") is None


def test_a_registered_heif_plugin_is_used_not_refused(tmp_path: Path, monkeypatch) -> None:
    """blurvid adds no HEIF plugin, but one registered in the process (pillow-heif's) reads .heic files."""
    from PIL import ImageFile

    values = RNG.integers(0, 256, (6, 8, 3), dtype=np.uint8)

    class FakeHeif(ImageFile.ImageFile):
        format = "HEIF"
        format_description = "a stand-in for pillow-heif"

        def _open(self) -> None:
            self._size, self._mode = (8, 6), "RGB"
            self.tile = [ImageFile._Tile("raw", (0, 0, 8, 6), len(HEIF_BOX), ("RGB", 0, 1))]

    monkeypatch.setattr(Image, "ID", [*Image.ID, "HEIF"])
    monkeypatch.setitem(Image.OPEN, "HEIF", (FakeHeif, lambda prefix: prefix[4:12] == b"ftypheic"))
    monkeypatch.setitem(Image.EXTENSION, ".heic", "HEIF")
    path = tmp_path / "IMG_0001.HEIC"
    path.write_bytes(HEIF_BOX + values.tobytes())
    photo = read_photo(path)
    assert photo.format == "HEIF" and bio.unsupported(path) is None
    np.testing.assert_array_equal(u8(photo.pixels), values)


@NEEDS_AVIF
def test_avif_is_written_at_the_quality_asked_with_alpha_and_refused_when_animated(tmp_path: Path) -> None:
    """AVIF (Pillow 13 reads and writes it): lossy at ``quality``, 4:4:4 from 90, alpha kept."""
    rgb = smooth_rgb(48, 64)
    alpha = np.linspace(0, 1, 48 * 64, dtype=np.float32).reshape(48, 64)
    sizes = {}
    for quality in (95, 60):
        out = write_photo(tmp_path / f"q{quality}.avif", rgb, alpha=alpha, quality=quality)
        photo = read_photo(out)
        assert photo.format == "AVIF" and (photo.width, photo.height) == (64, 48)
        assert photo.alpha is not None and np.abs(photo.alpha - alpha).max() < 0.03
        sizes[quality] = out.stat().st_size
        if quality == 95:
            assert np.abs(photo.pixels - rgb).mean() < 0.01
    assert sizes[60] < sizes[95]
    frames = [Image.fromarray(u8(np.roll(rgb, 8 * i, axis=1))) for i in range(3)]
    frames[0].save(tmp_path / "anim.avif", save_all=True, append_images=frames[1:])
    with pytest.raises(PhotoError) as err:
        read_photo(tmp_path / "anim.avif")
    assert_one_line_naming(err, tmp_path / "anim.avif")
    assert err.value.reason == "is an animation (3 frames), not a still photo"


def test_a_pillow_warning_is_one_logged_line_naming_the_file(tmp_path: Path, caplog) -> None:
    """Pillow's "Corrupt EXIF data" came out as Python's two-line UserWarning text on stderr."""
    import warnings

    from conftest import corrupt_exif_tiff, image_u8

    path = corrupt_exif_tiff(tmp_path / "odd.tif")
    with warnings.catch_warnings(record=True) as escaped, caplog.at_level("DEBUG", logger="blurvid"):
        warnings.simplefilter("always")
        photo = read_photo(path)
    assert escaped == []
    np.testing.assert_array_equal(u8(photo.pixels), image_u8())
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", f"{path}: Pillow: Corrupt EXIF data. Expecting to read 2 bytes but only got 0.")
    ]
    assert "UserWarning: Corrupt EXIF data" in caplog.records[0].detail  # for BLURVID_DEBUG


def test_reading_photos_in_threads_leaves_python_warnings_working(tmp_path: Path, caplog) -> None:
    """Each read swapped the process's warning state in and out; interleaved across threads, the state
    they left behind sent every later warning into a list nobody read, and took other threads'
    warnings for Pillow's about the photo."""
    import threading
    import warnings

    from conftest import corrupt_exif_tiff

    odd = corrupt_exif_tiff(tmp_path / "odd.tif")
    plain = tmp_path / "p.png"
    Image.fromarray(RNG.integers(0, 255, (60, 80, 3), np.uint8)).save(plain)
    filters, show = list(warnings.filters), warnings.showwarning
    seen: list[str] = []

    def collect(message, category, filename, lineno, file=None, line=None) -> None:  # type: ignore[no-untyped-def]
        seen.append(str(message))

    warnings.showwarning = collect  # the program's own handler, set once (no catch_warnings of its own)
    warnings.simplefilter("always")
    try:
        with caplog.at_level("WARNING", logger="blurvid"):
            readers = [
                threading.Thread(target=lambda: [read_photo(f) for f in (plain, odd) * 10]) for _ in range(4)
            ]
            for t in readers:
                t.start()
            for _ in range(50):  # the program's main thread warns while the photos are read
                warnings.warn("the service's own warning", UserWarning, stacklevel=1)
            for t in readers:
                t.join()
        assert warnings.showwarning is collect and warnings.filters[0][0] == "always"
        warnings.warn("still seen", UserWarning, stacklevel=1)
    finally:
        warnings.filters[:] = filters
        warnings.showwarning = show
    assert seen == ["the service's own warning"] * 50 + ["still seen"]
    logged = {r.getMessage() for r in caplog.records}
    assert logged == {f"{odd}: Pillow: Corrupt EXIF data. Expecting to read 2 bytes but only got 0."}


def test_exif_too_large_for_jpeg_is_copied_without_its_maker_note(tmp_path: Path, caplog) -> None:
    """A TIFF's or PNG's EXIF may exceed a JPEG's 64 kB segment, mostly by the camera's maker note: the
    camera, date and exposure are kept (all EXIF was dropped); what still does not fit is dropped."""
    exif = Image.Exif()
    exif[271] = "Nikon"
    fields = exif.get_ifd(0x8769)
    fields.update({0x9003: "2024:01:02 03:04:05", 0x829A: (1, 250), 0x927C: RNG.bytes(70_000)})
    with caplog.at_level("WARNING", logger="blurvid"):
        out = write_photo(tmp_path / "m.jpg", smooth_rgb(), like=like_photo(exif=exif.tobytes()))
    with Image.open(out) as im:
        kept = im.getexif()
        assert kept.get(271) == "Nikon" and 0x927C not in kept.get_ifd(0x8769)
        assert kept.get_ifd(0x8769).get(0x9003) == "2024:01:02 03:04:05"
        assert kept.get_ifd(0x8769).get(0x829A) == (1, 250)
    assert [r.getMessage().split(": ", 1)[1] for r in caplog.records] == [
        f"EXIF is too large for JPEG ({len(exif.tobytes())} bytes); copied without the maker note and any thumbnail"
    ]
    exif[270] = "x" * 70_000  # a description no JPEG holds
    caplog.clear()
    with caplog.at_level("WARNING", logger="blurvid"):
        out = write_photo(tmp_path / "d.jpg", smooth_rgb(), like=like_photo(exif=exif.tobytes()))
    assert read_photo(out).exif is None
    assert caplog.records[0].getMessage().endswith("bytes); not copied")


@pytest.mark.parametrize(
    ("suffix", "depth", "transparent", "warned"),
    [
        (".jpg", 16, False, ["holds 8 bits per channel"]),
        (".webp", 16, False, ["holds 8 bits per channel"]),
        (".jpg", 8, True, ["holds no transparency"]),
        (".bmp", 16, True, ["holds 8 bits per channel", "holds no transparency"]),
        (".jpg", 8, False, []),  # opaque alpha: nothing is lost
        (".png", 16, True, []),
        (".tif", 16, True, []),
    ],
)
def test_a_format_that_loses_bits_or_alpha_says_so(
    tmp_path: Path, caplog, suffix, depth, transparent, warned
) -> None:  # type: ignore[no-untyped-def]
    """A 16-bit or transparent photo written as JPEG / WebP / BMP lost its 16 bits or its alpha silently."""
    alpha = np.ones((24, 36), np.float32)
    if transparent:
        alpha[3:9, 4:12] = 0.0
    with caplog.at_level("WARNING"):
        write_photo(tmp_path / f"o{suffix}", smooth_rgb(), like=like_photo(bit_depth=depth, alpha=alpha))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == len(warned)
    for text in warned:
        assert any(text in line and f"o{suffix}" in line for line in lines)


def _png_with(tmp_path: Path, name: str, chunks: list[tuple[bytes, bytes]], depth: int = 8) -> Path:
    rgb = smooth_rgb()
    path = tmp_path / name
    if depth == 16:
        with open(path, "wb") as fh:
            bio._encode_png16(fh, np.rint(rgb * 65535).astype(np.uint16), None, None, colour=tuple(chunks))
    else:
        info = PngImagePlugin.PngInfo()
        for kind, payload in chunks:
            info.add(kind, payload)
        Image.fromarray(np.rint(rgb * 255).astype(np.uint8)).save(path, pnginfo=info)
    return path


LINEAR = (b"gAMA", struct.pack(">I", 100000))
CHRM = (b"cHRM", struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000))


@pytest.mark.parametrize("depth", [8, 16])
def test_png_gamma_and_chromaticities_are_carried_to_png(tmp_path: Path, depth: int) -> None:
    """A PNG's gAMA (here linear tones) was dropped, so viewers showed the result with other tones."""
    photo = read_photo(_png_with(tmp_path, "g.png", [LINEAR, CHRM], depth))
    assert photo.png_colour == (LINEAR, CHRM)
    out = write_photo(tmp_path / "out.png", photo.pixels, like=photo)
    with Image.open(out) as im:
        assert im.info.get("gamma") == 1.0 and im.info.get("chromaticity") is not None
    assert read_photo(out).png_colour == (LINEAR, CHRM)


def test_png_gamma_is_ignored_under_srgb_and_warned_about_in_other_formats(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    srgb = (b"sRGB", b"\x00")
    assert (
        read_photo(_png_with(tmp_path, "s.png", [(b"gAMA", struct.pack(">I", 45455)), srgb])).png_colour
        is None
    )
    usual = read_photo(_png_with(tmp_path, "u.png", [(b"gAMA", struct.pack(">I", 45455))]))
    linear = read_photo(_png_with(tmp_path, "l.png", [LINEAR]))
    with caplog.at_level("WARNING"):
        write_photo(tmp_path / "u.jpg", usual.pixels, like=usual)  # sRGB's tones anyway: nothing to say
        assert not caplog.records
        write_photo(tmp_path / "l.jpg", linear.pixels, like=linear)
    assert len(caplog.records) == 1 and "gamma (1, not" in caplog.records[0].getMessage()


def _iptc_jpeg(path: Path) -> bytes:
    """A JPEG with a Photoshop APP13 segment (an IPTC record and a thumbnail resource) and a comment."""

    def dataset(number: int, value: bytes) -> bytes:
        return b"\x1c\x02" + bytes([number]) + struct.pack(">H", len(value)) + value

    record = dataset(120, b"Heron at dawn") + dataset(116, "© Ana Pérez".encode())
    resources = b""
    for resource, payload in ((0x040C, b"thumbnail of the blurred photo"), (0x0404, record)):
        resources += (
            b"8BIM" + struct.pack(">HHI", resource, 0, len(payload)) + payload + b"\0" * (len(payload) & 1)
        )
    body = b"Photoshop 3.0\0" + resources
    buf = BytesIO()
    Image.fromarray(np.rint(smooth_rgb() * 255).astype(np.uint8)).save(
        buf, "JPEG", quality=90, comment=b"shot by me"
    )
    data = buf.getvalue()
    path.write_bytes(data[:2] + b"\xff\xed" + struct.pack(">H", len(body) + 2) + body + data[2:])
    return record


def test_iptc_record_and_comment_are_carried_to_jpeg(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    """IPTC captions / copyright and the JPEG comment were dropped silently."""
    from PIL import IptcImagePlugin

    record = _iptc_jpeg(tmp_path / "in.jpg")
    photo = read_photo(tmp_path / "in.jpg")
    assert photo.iptc == record and photo.comment == b"shot by me"
    out = write_photo(tmp_path / "out.jpg", photo.pixels, like=photo)
    with Image.open(out) as im:
        info = IptcImagePlugin.getiptcinfo(im)
        assert info[(2, 120)] == b"Heron at dawn" and info[(2, 116)] == "© Ana Pérez".encode()
        assert im.info.get("comment") == b"shot by me"
        assert b"thumbnail of the blurred photo" not in out.read_bytes()  # only the IPTC resource
    assert read_photo(out).iptc == record
    with caplog.at_level("WARNING"):
        write_photo(tmp_path / "out.png", photo.pixels, like=photo)
    assert [r.getMessage().split(": ", 1)[1] for r in caplog.records] == [
        "the source's IPTC record (captions, copyright) is copied only to JPEG results"
    ]


def test_iptc_record_fills_one_app13_segment_at_most(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    """The bound used to be XMP's (a few bytes off), and an oversized record was said to be for JPEG only."""
    from blurvid.io import _JPEG_MAX_IPTC

    _iptc_jpeg(tmp_path / "in.jpg")
    photo = read_photo(tmp_path / "in.jpg")
    for size in (_JPEG_MAX_IPTC - 1, _JPEG_MAX_IPTC):  # odd and even: the resource's padding byte
        record = b"\x1c\x02\x78" + struct.pack(">H", size - 5) + b"x" * (size - 5)
        out = write_photo(
            tmp_path / f"{size}.jpg", photo.pixels, like=dataclasses.replace(photo, iptc=record)
        )
        assert read_photo(out).iptc == record
    big = dataclasses.replace(photo, iptc=b"x" * (_JPEG_MAX_IPTC + 1))
    with caplog.at_level("WARNING"):
        out = write_photo(tmp_path / "big.jpg", photo.pixels, like=big)
    assert read_photo(out).iptc is None
    assert [r.getMessage().split(": ", 1)[1] for r in caplog.records] == [
        f"the IPTC record is too large for one JPEG segment ({_JPEG_MAX_IPTC + 1} bytes); not copied"
    ]


@pytest.mark.parametrize("target", ["photo", "frames"])
def test_an_interrupt_just_after_the_temporary_is_made_leaves_nothing(
    tmp_path: Path, monkeypatch, target
) -> None:  # type: ignore[no-untyped-def]
    """Ctrl-C between making the hidden temporary file (frames: folder) and the try that removes it on
    failure left it behind (3 of 9 runs in an audit), while the CLI said nothing was left."""
    name, real = ("close", os.close) if target == "photo" else ("mkdir", os.mkdir)
    calls = []

    def then_interrupt(*args, **kwargs):  # type: ignore[no-untyped-def]
        real(*args, **kwargs)
        if not calls:
            calls.append(args)
            raise KeyboardInterrupt

    monkeypatch.setattr(bio.os, name, then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        if target == "photo":
            write_photo(tmp_path / "o.png", smooth_rgb())
        else:
            bio.write_video(tmp_path / "frames", [np.zeros((4, 6, 3), np.float32)] * 2)
    monkeypatch.undo()
    assert calls and sorted(tmp_path.iterdir()) == []


def test_an_ffmpeg_failure_names_its_cause_not_its_last_line(tmp_path: Path) -> None:
    """The message quoted ffmpeg's last line ('Nothing was written into output file...'), not libx264's reason."""
    frames = [np.zeros((2, 16386, 3), np.uint8)] * 2  # past libx264's limit; write_video refuses it earlier
    with pytest.raises(bio.PhotoError, match=r"invalid width x height \(16386x2\)"):
        bio._encode_mp4(tmp_path / "x.mp4", tmp_path / "x.tmp.mp4", frames, 12.0, 90)
    with pytest.raises(bio.PhotoError, match="an MP4 holds at most 16384 px a side"):
        bio.write_video(tmp_path / "x.mp4", frames)
    assert not (tmp_path / "x.mp4").exists()


def test_gif_colours_are_not_darkened(tmp_path: Path) -> None:
    """Pillow's palette lookup maps levels 4k..4k+3 as 4k: every GIF came out ~1.5 levels darker."""
    rng = np.random.default_rng(0)
    base = np.clip(smooth_rgb(96, 128) * 255 + rng.normal(0, 3, (96, 128, 3)), 0, 255).astype(np.uint8)
    frames = [np.roll(base, 2 * i, axis=1) for i in range(4)]
    out = bio.write_video(tmp_path / "c.gif", frames)
    with Image.open(out) as im:
        decoded = []
        for i in range(len(frames)):
            im.seek(i)
            decoded.append(np.asarray(im.convert("RGB")).astype(np.float64))
    error = np.stack(decoded) - np.stack(frames).astype(np.float64)
    assert abs(error.mean()) < 0.4, error.mean()  # it was -1.1 (-1.2 to -1.5 on the examples' clips)
    assert np.abs(error.mean(axis=(0, 1, 2))).max() < 0.8, error.mean(axis=(0, 1, 2))


def test_to_uint8_refuses_other_integer_types() -> None:
    """uint16 1000 came out as 255 (white): it was clipped as if it were a float in [0, 1]."""
    assert bio.to_uint8(np.array([[[0.0, 0.5, 1.0]]], np.float32)).tolist() == [[[0, 128, 255]]]
    assert bio.to_uint8(np.full((1, 1, 3), 7, np.uint8)).tolist() == [[[7, 7, 7]]]
    for dtype in (np.uint16, np.int32, bool):
        with pytest.raises(ValueError, match="expected a float image in \\[0, 1\\] or uint8"):
            bio.to_uint8(np.ones((1, 1, 3), dtype))


def test_a_file_browsers_own_files_do_not_keep_frames_from_being_replaced(tmp_path: Path) -> None:
    """Finder's .DS_Store (or Windows' Thumbs.db) in a frames folder made `animate --overwrite` refuse it."""
    frames = [np.full((8, 8, 3), v, np.uint8) for v in (10, 200)]
    out = bio.write_video(tmp_path / "clip_motion", frames)
    (out / ".DS_Store").write_bytes(b"\\0\\0\\0\\1Bud1")
    (out / "Thumbs.db").write_bytes(b"x")
    assert bio.is_frame_folder(out)
    bio.write_video(out, frames[:1])
    assert sorted(p.name for p in out.iterdir()) == ["frame_0001.png"]
    (out / "notes.txt").write_text("mine")
    assert not bio.is_frame_folder(out)


def test_a_write_that_must_not_replace_leaves_what_appeared_meanwhile(tmp_path: Path) -> None:
    """Two runs into one folder without --overwrite replaced each other's results, both saying 'written'."""
    target = tmp_path / "a_sharp.png"
    assert bio.write_photo(target, smooth_rgb(), replace=False) == target  # a new file: written
    before = target.read_bytes()
    with pytest.raises(bio.OutputExists, match="appeared while this one was made"):
        bio.write_photo(target, 1 - smooth_rgb(), replace=False)
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["a_sharp.png"]
    frames = [np.full((8, 8, 3), v, np.uint8) for v in (10, 200)]
    gif = bio.write_video(tmp_path / "c.gif", frames, replace=False)
    with pytest.raises(bio.OutputExists):
        bio.write_video(gif, frames[::-1], replace=False)
    folder = tmp_path / "f"
    folder.mkdir()  # an empty folder is a target to fill
    bio.write_video(folder, frames, replace=False)
    with pytest.raises(bio.OutputExists, match="exists; left as it is"):
        bio.write_video(folder, frames[:1], replace=False)
    assert sorted(p.name for p in folder.iterdir()) == ["frame_0001.png", "frame_0002.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_sharp.png", "c.gif", "f"]  # nothing hidden left


def test_an_interrupt_while_frames_are_swapped_puts_the_old_ones_back(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A stop just after the old frames were moved aside removed the output folder (the old frames left
    in a hidden folder) while the CLI said nothing was left half-written."""
    frames = [np.full((8, 8, 3), v, np.uint8) for v in (10, 200)]
    out = bio.write_video(tmp_path / "clip_motion", frames)
    real, calls = os.replace, []

    def replace(a, b):  # type: ignore[no-untyped-def]
        real(a, b)
        calls.append(b)
        if len(calls) == 1:  # the old frames have just been moved aside
            raise KeyboardInterrupt

    monkeypatch.setattr(bio.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        bio.write_video(out, frames[:1])
    monkeypatch.setattr(bio.os, "replace", real)
    assert sorted(p.name for p in out.iterdir()) == ["frame_0001.png", "frame_0002.png"]  # the old frames
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip_motion"]


def test_a_killed_runs_hidden_temporaries_are_swept_once_stale(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """SIGKILL mid-write left .a_sharp.<hex>.tmp.png (a full-size file) and frame folders for good."""
    monkeypatch.setattr(bio, "STALE_S", 1.0)  # a day in use; the status-change time cannot be set back
    stale = [
        tmp_path / ".a_sharp.0123abcd.tmp.png",
        tmp_path / ".clip.89abcdef.tmp",
        tmp_path / ".clip.89abcdef.old",
    ]
    stale[0].write_bytes(b"half")
    for d in stale[1:]:
        d.mkdir()
        (d / "frame_0001.png").write_bytes(b"x")
    (tmp_path / ".b_sharp.0123abcd.tmp.png").write_bytes(b"another output's")  # the folder is swept whole
    (tmp_path / ".hidden.jpg").write_bytes(b"the user's")  # no temporary's name: never touched
    time.sleep(1.2)
    fresh = tmp_path / ".a_sharp.feedbeef.tmp.png"  # a live run's
    fresh.write_bytes(b"live")
    bio.write_photo(tmp_path / "a_sharp.png", smooth_rgb())
    bio.write_video(tmp_path / "clip", [np.zeros((8, 8, 3), np.uint8)] * 2)
    left = sorted(p.name for p in tmp_path.iterdir())
    # a frames swap's .old folder is never swept: one in use can look old (Windows' ctime is its creation)
    assert left == [".a_sharp.feedbeef.tmp.png", ".clip.89abcdef.old", ".hidden.jpg", "a_sharp.png", "clip"]
    calls = []
    real = os.scandir
    monkeypatch.setattr(bio.os, "scandir", lambda p: calls.append(p) or real(p))
    bio.write_photo(tmp_path / "b_sharp.png", smooth_rgb())  # once per folder and process, not per write
    assert calls == []


def test_frames_another_run_puts_in_an_emptied_target_are_never_removed(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The empty-target step unlinked every file in the folder: another run's frames, published between
    the emptiness check and the unlinks, were deleted, and both runs said 'written'."""
    target = tmp_path / "frames"
    target.mkdir()
    (target / ".DS_Store").write_bytes(b"Bud1")
    mine = [np.full((8, 8, 3), 10, np.uint8)] * 3
    theirs = [np.full((8, 8, 3), 200, np.uint8)] * 2
    real = bio.folder_content

    def other_run_publishes(folder):  # type: ignore[no-untyped-def]
        found = real(folder)
        publishing = sys._getframe(1).f_code.co_name == "_publish_new_folder"  # its emptiness check
        if publishing and not (target / "frame_0001.png").exists():
            for i, f in enumerate(theirs, start=1):  # the other run's frames land right after the check
                Image.fromarray(f).save(target / f"frame_{i:04d}.png")
        return found

    monkeypatch.setattr(bio, "folder_content", other_run_publishes)
    with pytest.raises(bio.OutputExists):
        bio.write_video(target, mine, replace=False)
    monkeypatch.setattr(bio, "folder_content", real)
    assert sorted(p.name for p in target.iterdir()) == ["frame_0001.png", "frame_0002.png"]
    assert np.asarray(Image.open(target / "frame_0001.png"))[0, 0, 0] == 200  # theirs, kept


def test_ffmpegs_failure_line_loses_its_context_prefix_on_every_platform(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    fake = tmp_path / "ffmpeg"
    fake.write_text(
        "#!/bin/sh\ncat > /dev/null\n"
        "echo '[libx264 @ 000001e4c1b6e0c0] broken encoder settings' >&2\n"  # Windows builds: no 0x
        "echo 'Error opening output files: Invalid argument' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setattr(bio, "_ffmpeg_exe", lambda: str(fake))
    with pytest.raises(bio.PhotoError, match=r"could not encode the MP4 \(broken encoder settings\)$"):
        bio.write_video(tmp_path / "c.mp4", [np.zeros((8, 8, 3), np.uint8)] * 2)


def test_write_photo_scales_integer_alpha_and_refuses_alpha_out_of_range(tmp_path: Path) -> None:
    px = np.full((6, 8, 3), 0.5, np.float32)
    out = write_photo(tmp_path / "a.png", px, alpha=np.full((6, 8), 128, np.uint8))  # was written opaque
    np.testing.assert_allclose(read_photo(out).alpha, 128 / 255, atol=1e-6)
    out = write_photo(tmp_path / "b.png", px, alpha=np.full((6, 8), 32768, np.uint16), bit_depth=16)
    np.testing.assert_allclose(read_photo(out).alpha, 32768 / 65535, atol=1e-6)
    for bad in (
        np.full((6, 8), 128.0, np.float32),
        np.full((6, 8), np.nan, np.float32),
        np.ones((6, 8), np.int64),
    ):
        with pytest.raises(ValueError, match="alpha"):
            write_photo(tmp_path / "c.png", px, alpha=bad)
    assert not (tmp_path / "c.png").exists()


def test_write_photo_to_a_folder_says_so(tmp_path: Path) -> None:
    (tmp_path / "out.png").mkdir()
    for target in (tmp_path, tmp_path / "out.png"):  # "unsupported photo format ''" for the first
        with pytest.raises(PhotoError, match="is a directory"):
            write_photo(target, np.zeros((4, 4, 3), np.float32))


def test_a_profile_left_out_of_a_result_is_said(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    """A damaged ICC profile, or one for other data, was dropped from the result without a word."""
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    colour = Image.fromarray(RNG.integers(0, 256, (8, 10, 3), dtype=np.uint8))
    colour.save(tmp_path / "bad.jpg", icc_profile=b"x" * 200)
    Image.fromarray(RNG.integers(0, 256, (8, 10), dtype=np.uint8)).save(
        tmp_path / "grey.png", icc_profile=srgb
    )
    colour.save(tmp_path / "good.jpg", icc_profile=srgb)
    for name, why in (
        ("bad.jpg", "is damaged"),
        ("grey.png", "describes RGB, not grey, data"),
        ("good.jpg", None),
    ):
        photo = read_photo(tmp_path / name)
        caplog.clear()
        with caplog.at_level("WARNING", logger="blurvid"):
            out = write_photo(tmp_path / f"out_{name}.png", photo.pixels, like=photo)
        kept = Image.open(out).info.get("icc_profile")
        if why is None:
            assert caplog.text == "" and kept == srgb
        else:
            assert f"the source's ICC profile {why}; it is left out" in caplog.text and not kept


def test_png_text_is_kept_in_png_results(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    """A PNG's title, author and copyright (tEXt / zTXt / iTXt) were dropped from its result."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "Dusk")
    info.add_text("Copyright", "© Ann Example", zip=True)
    info.add_itxt("Author", "Zoë", lang="en")
    info.add_itxt(bio._PNG_XMP_KEY, '<x:xmpmeta xmlns:x="adobe:ns:meta/"/>')
    info.add_text("Raw profile type exif", "\nexif\n      6\n457869660000\n", zip=True)  # ImageMagick's copy
    Image.fromarray(RNG.integers(0, 256, (8, 10, 3), dtype=np.uint8)).save(tmp_path / "a.png", pnginfo=info)
    photo = read_photo(tmp_path / "a.png")
    assert photo.png_text is not None and [kind for kind, _ in photo.png_text] == [b"tEXt", b"zTXt", b"iTXt"]
    want = {"Title": "Dusk", "Copyright": "© Ann Example", "Author": "Zoë"}
    for depth in (8, 16):
        out = write_photo(tmp_path / f"out{depth}.png", photo.pixels, like=photo, bit_depth=depth)
        with Image.open(out) as im:
            assert {k: v for k, v in im.text.items() if k != bio._PNG_XMP_KEY} == want, depth
        assert out.read_bytes().count(bio._PNG_XMP_KEY.encode()) == 1  # the XMP once, not twice
    with caplog.at_level("WARNING", logger="blurvid"):
        write_photo(tmp_path / "out.jpg", photo.pixels, like=photo)
    assert "the source's PNG text (title, author, copyright ...) is copied only to PNG results" in caplog.text


def test_xmp_pixel_dimensions_follow_the_result(tmp_path: Path) -> None:
    """A photo turned upright kept the stored sides in its XMP exif:PixelXDimension / Y (EXIF's were set)."""
    sized = XMP.replace(
        b' xmp:Rating="4"',
        b' xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:PixelXDimension="36" xmp:Rating="4"',
    ).replace(b"</rdf:Description>", b"<exif:PixelYDimension>24</exif:PixelYDimension></rdf:Description>")
    exif = Image.Exif()
    exif[274] = 6
    Image.fromarray((smooth_rgb() * 255).astype(np.uint8)).save(tmp_path / "in.jpg", xmp=sized, exif=exif)
    photo = read_photo(tmp_path / "in.jpg")
    assert photo.pixels.shape == (36, 24, 3)  # 24 wide, 36 high now
    for suffix in (".jpg", ".png"):
        back = read_photo(write_photo(tmp_path / f"out{suffix}", photo.pixels, like=photo)).xmp
        assert back is not None
        assert (
            b'exif:PixelXDimension="24"' in back
            and b"<exif:PixelYDimension>36</exif:PixelYDimension>" in back
        )
        assert back.replace(b'"24"', b'"36"').replace(b">36<", b">24<") == photo.xmp  # nothing else changed


def test_a_grey_profile_left_out_of_a_16bit_grey_alpha_tiff_is_said(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    """16-bit grey + alpha TIFF is written as RGBA, where a grey profile does not fit: it was dropped
    without a word (the 8-bit file keeps it)."""
    gray = bytearray(128)
    gray[16:20], gray[36:40] = b"GRAY", b"acsp"
    alpha = np.ones((24, 36), np.float32)
    alpha[:4] = 0.5
    like = like_photo(bit_depth=16, grey=True, icc=bytes(gray), alpha=alpha)
    with caplog.at_level("WARNING", logger="blurvid"):
        write_photo(tmp_path / "g.tif", smooth_rgb(), like=like)
    assert "the source's grey ICC profile does not fit the RGBA this TIFF is written as" in caplog.text


def test_a_damaged_grey_float_tiff_is_not_said_to_have_unreadable_samples(tmp_path: Path) -> None:
    """blurvid reads grey floating-point TIFFs: one Pillow cannot open is damaged, not unsupported."""
    Image.fromarray(np.zeros((6, 9), np.float32), mode="F").save(tmp_path / "g.tif")
    data = bytearray((tmp_path / "g.tif").read_bytes())
    tags = bio._tiff_first_ifd(bytes(data))
    assert tags[bio._SAMPLE_FORMAT_TAG] == 3 and (tags.get(bio._SAMPLES_PER_PIXEL_TAG) or 1) == 1
    assert bio._tiff_samples_not_read(bytes(data)) is None


def test_8bit_values_widen_to_16_bits_exactly() -> None:
    """255 must become 65535 (x257), not 65280 (x256): white stays white in a 16-bit file."""
    values = np.array([[0, 1, 128, 255]], np.uint8)
    np.testing.assert_array_equal(bio._quantize(values, 16), [[0, 257, 32896, 65535]])
    assert bio._quantize(values, 16).dtype == np.uint16 and bio._quantize(values, 8) is values


def test_8bit_grey_alpha_and_a_grey_transparency_key_give_alpha(tmp_path: Path) -> None:
    grey = RNG.integers(0, 256, (5, 7), dtype=np.uint8)
    grey[grey == 40] = 41
    grey[0, :2] = 40
    a = RNG.integers(0, 256, (5, 7), dtype=np.uint8)
    Image.fromarray(np.dstack([grey, a]), "LA").save(tmp_path / "la.png")
    photo = read_photo(tmp_path / "la.png")
    assert photo.grey and photo.alpha is not None
    np.testing.assert_allclose(photo.alpha, a / 255, atol=1e-6)
    Image.fromarray(grey, "L").save(tmp_path / "key.png", transparency=40)
    keyed = read_photo(tmp_path / "key.png")
    assert keyed.alpha is not None
    np.testing.assert_array_equal(keyed.alpha, (grey != 40).astype(np.float32))


@pytest.mark.parametrize("shape", [(5, 7), (1, 9), (13, 3)])
def test_fill_transparent_spreads_the_visible_colour_and_keeps_what_shows(shape) -> None:
    """The network saw the colour stored under transparency (black, green) as an edge beside the
    visible pixels; now it sees their colour spread there, and they themselves are unchanged."""
    h, w = shape
    rng = np.random.default_rng(0)
    image = rng.random((h, w, 3), dtype=np.float32)
    alpha = np.ones((h, w), np.float32)
    alpha[:, w // 2 + 1 :] = 0  # hidden: the right part
    alpha[0, 0] = 0.5  # partly visible: keeps its colour
    image[:, w // 2 + 1 :] = (0, 1, 0)  # green stored under it
    out = bio.fill_transparent(image, alpha)
    assert out.shape == image.shape and out.dtype == np.float32
    shown = alpha > 0
    np.testing.assert_array_equal(out[shown], image[shown])
    # under the transparency: between the visible colours' extremes, nothing of the green
    lo, hi = image[shown].min(axis=0), image[shown].max(axis=0)
    assert (out[~shown] >= lo - 1e-6).all() and (out[~shown] <= hi + 1e-6).all()
    # a flat visible colour spreads exactly; the hidden colour comes back with keep_hidden
    flat = np.where(shown[:, :, None], np.float32(0.25), image)
    np.testing.assert_allclose(bio.fill_transparent(flat, alpha), 0.25, atol=1e-6)
    back = bio.keep_hidden(out.copy(), image, alpha)
    np.testing.assert_array_equal(back, image)


def test_fill_transparent_leaves_an_opaque_or_wholly_transparent_image_as_it_is() -> None:
    image = np.zeros((4, 6, 3), np.float32)
    assert bio.fill_transparent(image, np.ones((4, 6), np.float32)) is image
    assert bio.fill_transparent(image, np.zeros((4, 6), np.float32)) is image
