"""Shared fixtures: tiny (untrained) checkpoints registered in a temporary registry, an empty registry,
and helpers that make small test photos.

The networks are far too small to deblur anything; tests that use them check files, sizes, metadata and
exit codes, never image quality. Nothing here reads or depends on the package's own weights/registry.json.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# ----------------------------------------------------------------------------------------- test photos

H, W = 37, 53  # odd sizes on purpose: the networks pad to their multiples and crop back


def image_u8(h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    """An ``(h, w, 3)`` uint8 RGB image with structure (gradients, a checkerboard, a bright disc)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = xx / max(w - 1, 1)
    g = yy / max(h - 1, 1)
    b = ((xx // 6 + yy // 6) % 2).astype(np.float32) * 0.8 + 0.1
    disc = ((yy - h * 0.4) ** 2 + (xx - w * 0.6) ** 2) < (min(h, w) * 0.2) ** 2
    rgb = np.stack([r, g, b], axis=-1)
    rgb[disc] = (1.0, 0.9, 0.2)
    rng = np.random.default_rng(seed)
    rgb = np.clip(rgb + rng.normal(0.0, 0.02, rgb.shape), 0.0, 1.0)
    return np.rint(rgb * 255).astype(np.uint8)


def image_f32(h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    """:func:`image_u8` as float32 in [0, 1] (for blurvid.io.write_photo)."""
    return image_u8(h, w, seed).astype(np.float32) / 255.0


def save_image(path: Path, h: int = H, w: int = W, seed: int = 0, **save_options: object) -> Path:
    """Write :func:`image_u8` with Pillow (format from the suffix); parent folders are created."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image_u8(h, w, seed)).save(path, **save_options)
    return path


def run_cli(*args: str) -> int:
    """Run ``blurvid ARGS`` in this process; its exit code (0 where it returns normally)."""
    from blurvid import cli

    try:
        cli.main(list(args))
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def frame_durations(path: Path) -> list[int]:
    """How long each frame of the animated GIF or WebP at ``path`` shows, in ms, as Pillow reads them."""
    from PIL import Image

    durations = []
    with Image.open(path) as im:
        for i in range(im.n_frames):
            im.seek(i)
            im.load()  # the WebP reader sets a frame's duration once it is decoded
            durations.append(im.info["duration"])
    return durations


def corrupt_exif_tiff(path: Path) -> Path:
    """An 8-bit TIFF of :func:`image_u8` whose Exif sub-IFD pointer points past the end of the file:
    Pillow reads the picture, and warns ``Corrupt EXIF data.  Expecting to read 2 bytes but only got 0.``"""
    import struct

    from PIL import Image

    exif = Image.Exif()
    exif[271] = "Blurcam"
    exif.get_ifd(0x8769)[0x9003] = "2024:01:02 03:04:05"
    Image.fromarray(image_u8()).save(path, exif=exif.tobytes())
    data = bytearray(path.read_bytes())
    (ifd0,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd0)
    for entry in range(ifd0 + 2, ifd0 + 2 + 12 * count, 12):
        if struct.unpack_from("<H", data, entry)[0] == 0x8769:
            struct.pack_into("<I", data, entry + 8, len(data) + 100)
    path.write_bytes(bytes(data))
    return path


def _s15(v: float) -> bytes:
    """An ICC s15Fixed16Number."""
    import struct

    return struct.pack(">i", round(v * 65536))


def _pad4(b: bytes) -> bytes:
    """``b`` padded with zeros to a multiple of 4 bytes, as ICC tag data is aligned."""
    return b + bytes(-len(b) % 4)


def _icc(device_class: bytes, colour_space: bytes, name: str, tags: list[tuple[bytes, bytes]]) -> bytes:
    """A minimal ICC v2 profile (PCS XYZ, D50) of ``device_class`` (b"mntr", b"prtr") and
    ``colour_space`` (b"RGB ", b"CMYK"): a description, a copyright and a D50 white point, then ``tags``
    (signature, tag data), which lcms reads."""
    import struct

    text = name.encode() + b"\0"
    desc = _pad4(b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(8) + bytes(3) + bytes(67))
    d50 = _s15(0.9642) + _s15(1.0) + _s15(0.8249)
    common = [
        (b"desc", desc),
        (b"cprt", _pad4(b"text" + bytes(4) + b"none\0")),
        (b"wtpt", b"XYZ " + bytes(4) + d50),
    ]
    tags = common + [(sig, _pad4(body)) for sig, body in tags]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    header = (
        struct.pack(">I", offset + len(data)) + b"lcms" + bytes([2, 0x10, 0, 0]) + device_class + colour_space
        + b"XYZ " + bytes(12) + b"acsp" + bytes(24) + bytes(4) + d50 + bytes(48)
    )  # fmt: skip
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def wide_gamut_icc(name: str = "Test wide gamut") -> bytes:
    """A minimal ICC v2 RGB display profile with Display P3's primaries and a 2.2 gamma: a colour space
    other than sRGB, as an iPhone's or Adobe RGB photo carries (Pillow can only create sRGB)."""
    import struct

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + bytes(4) + _s15(x) + _s15(y) + _s15(z)

    gamma = b"curv" + bytes(4) + struct.pack(">IH", 1, round(2.2 * 256)) + bytes(2)
    return _icc(b"mntr", b"RGB ", name, [
        (b"rXYZ", xyz(0.51512, 0.24120, -0.00105)),
        (b"gXYZ", xyz(0.29198, 0.69225, 0.04189)),
        (b"bXYZ", xyz(0.15710, 0.06657, 0.78407)),
        (b"rTRC", gamma),
        (b"gTRC", gamma),
        (b"bTRC", gamma),
    ])  # fmt: skip


def cmyk_icc() -> bytes:
    """A minimal ICC v2 CMYK printer profile (an A2B0 lut16 with a 2-point grid) whose inks are
    turned round: cyan ink takes away blue (a naive 1 - ink: red), magenta red, yellow green; black is
    black. Pillow cannot create CMYK profiles; lcms reads this one."""
    import struct

    import numpy as np

    # sRGB's primaries (D50), so that a corner of the grid is exactly an sRGB primary or secondary
    primaries = np.array([[0.4361, 0.2225, 0.0139], [0.3851, 0.7169, 0.0971], [0.1431, 0.0606, 0.7141]])
    grid = b""
    for c, m, y, k in np.ndindex(2, 2, 2, 2):  # the first channel varies slowest
        rgb = np.array([1 - m, 1 - y, 1 - c]) * (1 - k)
        grid += struct.pack(">3H", *(min(round(v * 32768), 65535) for v in rgb @ primaries))  # u1Fixed15
    ramp = struct.pack(">2H", 0, 65535)  # identity input and output curves
    identity = b"".join(_s15(float(i == j)) for i in range(3) for j in range(3))
    # 4 inputs, 3 outputs, 2 grid points a side, a matrix, curves of 2 entries
    shape = bytes([4, 3, 2, 0]) + identity + struct.pack(">2H", 2, 2)
    return _icc(
        b"prtr", b"CMYK", "Test CMYK", [(b"A2B0", b"mft2" + bytes(4) + shape + ramp * 4 + grid + ramp * 3)]
    )


def to_srgb(rgb: tuple[int, int, int], icc: bytes) -> np.ndarray:
    """One colour in the profile ``icc`` converted to sRGB by lcms (what a colour-managed viewer shows)."""
    from io import BytesIO

    from PIL import Image, ImageCms

    src = ImageCms.ImageCmsProfile(BytesIO(icc))
    im = Image.new("RGB", (1, 1), rgb)
    return np.asarray(ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode="RGB"))[
        0, 0
    ]


# ---------------------------------------------------------------------------------------- checkpoints

TINY_DM = {"widths": (8, 8, 8, 8), "growth": (4, 4, 4, 4), "rdbs": (1, 1, 1, 1), "rdb_layers": 2}
TINY_VIDEO = {"widths": (4, 4, 8, 8), "hidden": 8, "bie_widths": (4, 4, 4, 8, 8, 8)}


@pytest.fixture(scope="session")
def _tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Build the tiny networks once per session: a cache folder with their files and a registry.json."""
    import torch

    from blurvid import weights
    from blurvid.models import BlurredImageEncoder, DeblurNet, DMConfig, RecurrentVideoDecoder, VideoConfig

    root = tmp_path_factory.mktemp("tiny_weights")
    cache, registry = root / "cache", root / "registry.json"
    with torch.random.fork_rng():
        torch.manual_seed(0)
        vc = VideoConfig(**TINY_VIDEO)
        nets = {
            "dm": DeblurNet(DMConfig(**TINY_DM)),
            "bie": BlurredImageEncoder(vc),
            "rvd": RecurrentVideoDecoder(vc),
        }
        # Untrained flow heads start near zero, which makes all frames (nearly) identical; GIF and WebP
        # encoders merge identical frames, so give the heads a few pixels of flow to get distinct frames.
        for head in [nets["rvd"].decoder.flow8, *nets["rvd"].decoder.flows]:
            torch.nn.init.normal_(head.weight, std=0.3)
    for arch, net in nets.items():
        config = net.config.to_dict()
        name = f"tiny-{arch}"
        sha = weights.save_checkpoint(
            cache / f"{name}.safetensors", net.state_dict(), arch=arch, config=config
        )
        spec = weights.CheckpointSpec(
            name=name,
            arch=arch,
            file=f"{name}.safetensors",
            sha256=sha,
            config=config,
            license="MIT",
            source="tests/conftest.py",
            description="tiny untrained test network",
            default=True,
        )
        weights.register_checkpoint(spec, registry)
    return {"cache": cache, "registry": registry}


def _isolate(monkeypatch: pytest.MonkeyPatch, empty_pkg: Path, registry: Path, cache: Path) -> None:
    """Point blurvid.weights at ``registry`` + ``cache`` only: the package's own weights folder (and
    whatever registry.json it ships) is replaced by the empty folder ``empty_pkg``."""
    from blurvid import weights

    monkeypatch.setattr(weights, "package_weights_dir", lambda: empty_pkg)
    monkeypatch.setenv("BLURVID_REGISTRY", str(registry))
    monkeypatch.setenv("BLURVID_CACHE_DIR", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a test must never reach the network
    monkeypatch.delenv("BLURVID_HF_REPO", raising=False)


@pytest.fixture
def tiny_weights(_tiny_checkpoints, tmp_path_factory, monkeypatch):
    """The tiny dm / bie / rvd checkpoints are the registered defaults (names ``tiny-<arch>``)."""
    from blurvid import pipeline

    pipeline.clear_model_cache()
    empty_pkg = tmp_path_factory.mktemp("empty_package_weights")
    _isolate(monkeypatch, empty_pkg, _tiny_checkpoints["registry"], _tiny_checkpoints["cache"])
    yield _tiny_checkpoints
    pipeline.clear_model_cache()


@pytest.fixture
def no_weights(tmp_path_factory, monkeypatch):
    """No checkpoint registered anywhere (the package's own registry does not leak in)."""
    from blurvid import pipeline

    root = tmp_path_factory.mktemp("no_weights")
    registry = root / "registry.json"
    registry.write_text('{"checkpoints": {}}\n', encoding="utf-8")
    cache, empty_pkg = root / "cache", root / "package"
    cache.mkdir()
    empty_pkg.mkdir()
    pipeline.clear_model_cache()
    _isolate(monkeypatch, empty_pkg, registry, cache)
    yield {"cache": cache, "registry": registry}
    pipeline.clear_model_cache()
