"""Reading and writing photos and videos: the only module of blurvid that touches Pillow or ffmpeg.

It imports no torch, so that the command line starts fast. Every problem with a user's file comes out
as :class:`PhotoError`, whose text is a single line ``'<path>: <what is wrong>'``.

Pixels are always float32 in [0, 1]: photos are ``(H, W, 3)`` RGB with the EXIF orientation applied,
alpha is a separate ``(H, W)`` plane.

16 bits per channel
-------------------
Pillow 13 reads 16-bit greyscale PNG/TIFF exactly (mode ``I;16``), but cuts 16-bit *colour* PNG/TIFF
(48/64 bit RGB/RGBA, and 16-bit grey+alpha) down to 8 bits, and it cannot write them at all. So:

* reading: Pillow still opens the file, fully decodes it (which catches truncation and corruption),
  and gives the metadata; then the ffmpeg binary that imageio-ffmpeg bundles decodes the same file
  to ``rgb48le``/``rgba64le`` raw video over a pipe. The 16-bit result is used only if its size
  matches and its high bytes agree with Pillow's 8-bit decode (so it is the same picture, with the
  same orientation); otherwise we log a warning and keep Pillow's 8-bit data. ffmpeg's PNG and TIFF
  decoders cover every PNG and the usual TIFF compressions (none, LZW, Deflate, PackBits).
* writing: every 16-bit output (grey, grey+alpha, RGB, RGBA) goes through the small PNG encoder
  (zlib, adaptive per-row filters) and baseline TIFF encoder (uncompressed, IFD serialised by
  Pillow's ``ImageFileDirectory_v2``) in this module, so that ICC profile and EXIF are written exactly
  as on the 8-bit paths (ffmpeg's image encoders cannot carry them).

No new dependency was needed: ``tifffile``/``pypng`` would only replace these ~150 lines, and the
ffmpeg binary is already required for MP4.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import math
import os
import re
import shutil
import struct
import subprocess
import tempfile
import threading
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image, ImageFile, PngImagePlugin, TiffImagePlugin, TiffTags, UnidentifiedImageError, features

from . import fsutil

__all__ = [
    "AVIF_SUPPORTED",
    "IMAGE_SUFFIXES",
    "RAW_REASON",
    "RAW_SUFFIXES",
    "OutputExists",
    "Photo",
    "PhotoError",
    "Unsupported",
    "check_video_size",
    "file_warnings",
    "folder_content",
    "has_transparency",
    "is_frame_file",
    "is_frame_folder",
    "is_image_path",
    "read_photo",
    "to_uint8",
    "unsupported",
    "video_kind",
    "write_photo",
    "write_video",
]

_log = logging.getLogger(__name__)

AVIF_SUPPORTED: bool = bool(features.check("avif"))
"""Whether this Pillow reads and writes AVIF (Pillow >= 11.3 built with libavif)."""

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jfif", ".jpe", ".png", ".tif", ".tiff", ".webp", ".bmp"}
    | ({".avif"} if AVIF_SUPPORTED else set())
)
"""Lower-case suffixes of the photo formats blurvid reads (and writes); .avif where Pillow has AVIF."""

# fmt: off
RAW_SUFFIXES: frozenset[str] = frozenset(
    "." + s for s in (
        "3fr ari arw cr2 cr3 crw dcr dng erf fff gpr iiq kdc mef mos mrw nef nrw orf pef raf raw rw2 rwl "
        "sr2 srf srw x3f"
    ).split()
)
"""Lower-case suffixes of camera RAW files: :func:`read_photo` refuses them with :data:`RAW_REASON`."""
# fmt: on


@dataclass(frozen=True)
class Unsupported:
    """A kind of photo file blurvid does not read: ``label`` names it ('camera RAW', 'HEIC', ...),
    ``what`` says that it is not supported, ``hint`` what to do instead; ``suffix`` is the suffix a
    Pillow plugin that reads it registers (None: never read, even with a plugin)."""

    label: str
    what: str
    hint: str
    suffix: str | None = None

    @property
    def reason(self) -> str:
        """The one-line reason :func:`read_photo` gives: ``'<what>; <hint>'``."""
        return f"{self.what}; {self.hint}"


_CONVERT_FIRST = "convert it to JPEG or TIFF first"
_RAW = Unsupported(
    "camera RAW",
    "camera RAW files are not supported",
    "export a TIFF (16-bit keeps the most) or JPEG from your RAW converter first",
)
_HEIF = Unsupported(
    "HEIC", "HEIC / HEIF is not supported by this installation's Pillow", _CONVERT_FIRST, ".heic"
)
_JXL = Unsupported(
    "JPEG XL", "JPEG XL is not supported by this installation's Pillow", _CONVERT_FIRST, ".jxl"
)
_AVIF = Unsupported("AVIF", "AVIF is not supported by this installation's Pillow", _CONVERT_FIRST, ".avif")
_UNREADABLE_SUFFIXES = {".heic": _HEIF, ".heif": _HEIF, ".hif": _HEIF, ".jxl": _JXL, ".avif": _AVIF}
_HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
)

RAW_REASON = _RAW.reason
"""Why a camera RAW file is refused, and what to do instead (the part of the message after the path)."""

_WRITE_FORMATS: dict[str, str] = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".jfif": "JPEG",  # what Windows names JPEGs saved from a browser
    ".jpe": "JPEG",
    ".png": "PNG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
    ".bmp": "BMP",
    **({".avif": "AVIF"} if AVIF_SUPPORTED else {}),
}
_SIXTEEN_BIT_FORMATS = frozenset({"PNG", "TIFF"})
# lossless TIFF compressions a result is written with as its photo was (others become Deflate)
_TIFF_COMPRESSIONS = ("tiff_lzw", "tiff_adobe_deflate", "tiff_deflate", "packbits")
_MAX_SIDE = {
    "JPEG": 65_500, "WEBP": 16_383, "AVIF": 65_536, "BMP": 2**31 - 1, "PNG": 2**31 - 1, "TIFF": 2**31 - 1
}  # fmt: skip
_VIDEO_SUFFIXES: dict[str, str] = {".gif": "gif", ".mp4": "mp4", ".m4v": "mp4", ".webp": "webp"}
_FRAME_NAME = re.compile(r"frame_\d+\.png")
# formats whose several frames are an animation (a multi-frame MPO or TIFF is a photo with previews or pages)
_ANIMATION_FORMATS = frozenset({"GIF", "PNG", "WEBP", "AVIF"})

_EXIF_HEADER = b"Exif\x00\x00"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ORIENTATION_TAG = 0x0112
_EXIF_IFD_TAG = 0x8769
_GPS_IFD_TAG = 0x8825
_INTEROP_IFD_TAG = 0xA005
_PIXEL_X_TAG = 0xA002  # Exif IFD: PixelXDimension, the valid width of the image
_PIXEL_Y_TAG = 0xA003
_MAKER_NOTE_TAG = 0x927C  # Exif IFD: the camera maker's own data, often tens of kB
_NEW_SUBFILE_TYPE_TAG = 254  # TIFF: bit 0 a reduced-resolution version of another image, bit 2 a mask
_SUBFILE_TYPE_TAG = 255  # its predecessor: 2 a reduced-resolution image
_PHOTOMETRIC_TAG = 262
_BITS_PER_SAMPLE_TAG = 258
_SAMPLES_PER_PIXEL_TAG = 277
_SAMPLE_FORMAT_TAG = 339  # 1 unsigned, 2 signed integers, 3 IEEE floating point
_SUB_IFDS_TAG = 330
_DNG_VERSION_TAG = 50706
# IFD0 tags of a TIFF that are photo metadata (everything else there describes the TIFF's own layout).
_TIFF_METADATA_TAGS = frozenset({270, 271, 272, 274, 305, 306, 315, 316, 33432, _EXIF_IFD_TAG, _GPS_IFD_TAG})
# Tags that describe a TIFF's pixel layout: never copied from EXIF into a TIFF we write.
# fmt: off
_TIFF_LAYOUT_TAGS = frozenset({
    254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281, 284, 317, 320,
    322, 323, 324, 325, 338, 339, 340, 341, 513, 514, 530, 531, 532, 34675,
})
# fmt: on
_JPEG_MAX_EXIF = 65_533
_JPEG_MAX_XMP = 65_504 - 29  # one APP1 segment, less the "http://ns.adobe.com/xap/1.0/\0" name
_PNG_XMP_KEY = "XML:com.adobe.xmp"
_XMP_TAG = 700
_FFMPEG_TIMEOUT_S = 3600

# Pillow's decompression-bomb limit and truncation switch are process globals: read_photo sets them
# for its own decode under this lock and puts them back afterwards.
_PIL_LOCK = threading.Lock()
_WARNINGS_LOCK = threading.RLock()  # file_warnings blocks, one thread at a time (nested ones in it)


# --------------------------------------------------------------------------------------------------
# Public types


class PhotoError(Exception):
    """A user-facing problem with one file.

    ``str(e)`` is ONE line: ``'<path>: <what is wrong>'``; no traceback is needed to understand it.
    Build it as ``PhotoError(path, "what is wrong")``; ``PhotoError("whole message")`` also works
    (then ``e.path`` is None). ``e.path`` is the path as a string, ``e.reason`` the part after it.
    """

    def __init__(self, path: str | os.PathLike[str] | None, reason: str | None = None) -> None:
        if reason is None:
            self.path: str | None = None
            self.reason: str = _one_line(str(path))
            message = self.reason
        else:
            self.path = None if path is None else str(path)
            self.reason = _one_line(reason)
            message = self.reason if path is None else f"{_one_line(str(path))}: {self.reason}"
        super().__init__(message)


class OutputExists(PhotoError):
    """A write that must not replace its target (``replace=False``) found it there when its result was
    ready: another run wrote it meanwhile. Nothing was changed."""


@dataclass(eq=False, repr=False)
class Photo:
    """A decoded photo and the metadata needed to write a result "like" it.

    Attributes:
        pixels: float32 ``(H, W, 3)`` RGB in [0, 1], EXIF orientation already applied.
        alpha: float32 ``(H, W)`` in [0, 1] when the input had alpha (or a transparent colour), else None.
        bit_depth: 8 or 16, bits per channel of the source file.
        grey: the source was greyscale (L / I;16 / LA ...); the three channels of ``pixels`` are equal
            and writers write grey back.
        icc_profile: ICC profile describing ``pixels``, or None.
        exif: raw EXIF (``b"Exif\\0\\0"`` + TIFF structure) with Orientation reset to 1, or None.
        format: Pillow's format name of the source: 'JPEG', 'PNG', 'TIFF', 'WEBP', 'BMP', ...
        path: where it was read from, or None.
        xmp: the raw XMP packet (rating, keywords, caption, rights...) with ``tiff:Orientation`` reset
            to 1, or None.
        dpi: the print resolution (horizontal, vertical) in pixels per inch the file states, or None.
        compression: a TIFF's compression as Pillow names it ('tiff_lzw', 'tiff_adobe_deflate',
            'packbits', ...; 'raw' for none); for a WebP 'lossless' or 'lossy'; else None.
        png_colour: a PNG's gAMA and cHRM chunks (type + payload each), kept when it has no ICC
            profile or sRGB chunk (then viewers read its tones from them); else None.
        iptc: a JPEG's IPTC-IIM record (caption, keywords, copyright, as Photo Mechanic and older
            Photoshop write it; the payload of Photoshop's resource 0x0404), or None.
        comment: a JPEG's comment (COM segment), or None.
        png_text: a PNG's text chunks (tEXt / zTXt / iTXt: title, author, copyright ...; type +
            payload each, in file order) other than its XMP, copied to PNG results; else None.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int
    grey: bool
    icc_profile: bytes | None
    exif: bytes | None
    format: str
    path: Path | None
    xmp: bytes | None = None
    dpi: tuple[float, float] | None = None
    compression: str | None = None
    png_colour: tuple[tuple[bytes, bytes], ...] | None = None
    iptc: bytes | None = None
    comment: bytes | None = None
    png_text: tuple[tuple[bytes, bytes], ...] | None = None

    @property
    def height(self) -> int:
        """Height in pixels (after orientation)."""
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        """Width in pixels (after orientation)."""
        return int(self.pixels.shape[1])

    def __repr__(self) -> str:
        return (
            f"Photo({self.format} {self.width}x{self.height}, {self.bit_depth}-bit"
            f"{', grey' if self.grey else ''}{', alpha' if self.alpha is not None else ''}"
            f"{', icc' if self.icc_profile else ''}{', exif' if self.exif else ''}"
            f"{', xmp' if self.xmp else ''}, path={self.path!r})"
        )


# --------------------------------------------------------------------------------------------------
# Paths


def is_image_path(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` names a photo blurvid can read, judged by its suffix (any case).

    Hidden names (starting with '.', e.g. our own temporary files or macOS '._' files) and existing
    directories are not photos. The file itself is not opened.
    """
    p = Path(path)
    return p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and not p.is_dir()


def unsupported(path: str | os.PathLike[str]) -> Unsupported | None:
    """The kind of photo file blurvid does not read that ``path`` names, judged by its suffix (any
    case): a camera RAW file (:data:`RAW_SUFFIXES`) always; HEIC / HEIF (.heic .heif .hif), JPEG XL
    (.jxl) and AVIF when this Pillow has no plugin registered for them. None for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix in RAW_SUFFIXES:
        return _RAW
    kind = _UNREADABLE_SUFFIXES.get(suffix)
    return kind if kind is not None and not _pillow_reads(kind) else None


def _pillow_reads(kind: Unsupported) -> bool:
    """Whether a Pillow plugin for ``kind`` is registered (pillow-heif, a JPEG XL plugin, AVIF support)."""
    return kind.suffix is not None and kind.suffix in Image.registered_extensions()


def _unreadable_kind(p: Path, data: bytes) -> Unsupported | None:
    """Why Pillow could not open ``data``, when it is a format this Pillow lacks a plugin for: by its
    content (the ISO-BMFF brands of HEIF / AVIF, JPEG XL's signatures) or else by the suffix of ``p``."""
    kind: Unsupported | None = None
    if data[4:8] == b"ftyp" and len(data) >= 12:
        (size,) = struct.unpack_from(">I", data, 0)
        brands = {data[8:12]} | {data[i : i + 4] for i in range(16, min(len(data), max(size, 16)) - 3, 4)}
        kind = _AVIF if brands & {b"avif", b"avis"} else _HEIF if brands & _HEIF_BRANDS else None
    elif data.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")):
        kind = _JXL
    kind = kind or _UNREADABLE_SUFFIXES.get(p.suffix.lower())
    return kind if kind is not None and not _pillow_reads(kind) else None


_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "PNG"),
    (0, b"\xff\xd8\xff", "JPEG"),
    (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"),
    (8, b"WEBP", "WebP"),
    (0, b"GIF8", "GIF"),
)


def _signature_format(data: bytes) -> str | None:
    """The image format that ``data``'s first bytes announce (PNG, JPEG, TIFF, WebP, GIF, AVIF), or
    None: for a file Pillow could not open, it tells a damaged photo from a file that is no photo."""
    for offset, magic, name in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return name
    if data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis"):
        return "AVIF"
    return None


def photo_format(path: str | os.PathLike[str]) -> str | None:
    """The format :func:`write_photo` writes at ``path`` ('JPEG' for .jpg and .jpeg, ...), or None."""
    return _WRITE_FORMATS.get(Path(path).suffix.lower())


# the largest side each video format takes: libwebp's limit; libx264's (after padding to even); GIF's
VIDEO_MAX_SIDE = {"webp": 16383, "mp4": 16384, "gif": 65535}


def check_video_size(path: str | os.PathLike[str], height: int, width: int) -> None:
    """Raise PhotoError when the video :func:`video_kind` names at ``path`` cannot hold ``height`` x
    ``width`` frames (a WebP side over 16,383 px, an MP4 side over 16,384 after padding to even);
    cheap, so that a command can check before it makes the frames."""
    kind = video_kind(path)
    limit = VIDEO_MAX_SIDE.get(kind)
    side = max(height + height % 2, width + width % 2) if kind == "mp4" else max(height, width)
    if limit is not None and side > limit:
        raise PhotoError(
            path,
            f"a{'n' if kind == 'mp4' else ''} {kind.upper() if kind != 'webp' else 'WebP'} holds at most "
            f"{limit} px a side, these frames are {width} x {height}; use a smaller --size or another format",
        )


def video_kind(path: str | os.PathLike[str]) -> str:
    """Which kind of video :func:`write_video` makes at ``path``: 'gif', 'mp4', 'webp' or 'frames'.

    'frames' (a folder of PNG frames) for an existing directory, a path ending in a separator, or a
    path without suffix. Raises PhotoError for any other suffix.
    """
    text = os.fspath(path)
    p = Path(text)
    if p.is_dir() or text.endswith(("/", os.sep)) or not p.suffix:
        return "frames"
    kind = _VIDEO_SUFFIXES.get(p.suffix.lower())
    if kind is None:
        raise PhotoError(
            path, f"unknown video format '{p.suffix}' (use .gif, .mp4, .webp, or a folder for PNG frames)"
        )
    return kind


# --------------------------------------------------------------------------------------------------
# Reading


def read_photo(path: str | os.PathLike[str], *, max_pixels: int = 250_000_000) -> Photo:
    """Decode the photo at ``path`` completely.

    The format is sniffed from the content, not the suffix. EXIF orientation is applied (all 8),
    greyscale is replicated to 3 channels (``grey=True``), palette images are expanded, alpha comes
    back as its own plane, 16-bit PNG and TIFF keep their full precision, CMYK is converted to sRGB
    (through its ICC profile when it has one).

    A TIFF gives its first full-size page: pages marked as reduced-resolution previews
    (NewSubfileType bit 0) or transparency masks are passed over, and a warning says when further
    full-size pages are left unread.

    Raises:
        PhotoError: missing file, a directory, an empty file, not an image, a truncated or corrupt
            image, more than ``max_pixels`` pixels (decompression bomb), no permission to read; a
            camera RAW file, by its suffix (:data:`RAW_SUFFIXES`) or its content (a DNG, or a
            TIFF-based RAW under another name), with :data:`RAW_REASON`; HEIC / HEIF, JPEG XL or
            AVIF that this Pillow cannot read (:func:`unsupported`), saying so; a TIFF that holds
            only reduced-resolution previews. Its text is one line naming the file. No raw Pillow
            or OS error escapes.
    """
    p = Path(path)
    data = _read_bytes(p)
    if unsupported(p) is _RAW or _raw_kind(data) is not None:
        # Pillow would open some of them as TIFF and give their embedded thumbnail or CFA garbage
        raise PhotoError(p, RAW_REASON)
    with file_warnings(p, "Pillow"):
        im = _open_and_load(p, data, max_pixels)
        try:
            return _photo_from_image(p, data, im)
        except MemoryError as exc:
            raise PhotoError(p, "not enough memory to decode this image") from exc
        except PhotoError:
            raise
        except Exception as exc:  # Pillow raises many kinds of errors on odd files
            raise PhotoError(p, f"cannot decode image ({_describe(exc)})") from exc
        finally:
            im.close()


@contextlib.contextmanager
def file_warnings(p: Path, source: str = "") -> Iterator[None]:
    """Turn the Python warnings raised inside (Pillow's "Corrupt EXIF data", ...) into one logged line
    each, ``'<path>: <source>: <text>'`` (``'<path>: <text>'`` without a source), instead of Python's
    two-line warning text on stderr; repeats are dropped. When the block fails, its error says what
    matters and they are logged at DEBUG only. Each record carries Python's own text of the warning
    (file and line) as ``record.detail``. Thread-safe: such blocks in several threads run one at a time
    (reading photos in threads is serialised), and catch only their own thread's warnings."""
    # Python's warning state is one per process (catch_warnings is not thread-safe): blocks of several
    # threads take turns, so that each restores what it found (interleaved, the state they left behind
    # swallowed every later warning), and only this thread's warnings are caught; others' are shown
    owner, caught = threading.get_ident(), []
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("always")
        shown = warnings.showwarning

        def show(
            message: Warning | str,
            category: type[Warning],
            filename: str,
            lineno: int,
            file: Any = None,
            line: str | None = None,
        ) -> None:
            if threading.get_ident() == owner:
                caught.append(warnings.WarningMessage(message, category, filename, lineno, file, line))
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        ok = False
        try:
            yield
            ok = True
        finally:
            seen = set()
            for w in caught:
                text = " ".join(str(w.message).split())
                if text in seen:
                    continue
                seen.add(text)
                detail = warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line)
                level = logging.WARNING if ok else logging.DEBUG
                _log.log(
                    level, "%s: %s%s", p, f"{source}: " if source else "", text, extra={"detail": detail}
                )


def _read_bytes(p: Path) -> bytes:
    try:
        if p.is_dir():
            raise PhotoError(p, "is a directory, not an image file")
        if not p.exists():
            raise PhotoError(p, "no such file")
        if not p.is_file():
            raise PhotoError(p, "not a regular file")
        data = p.read_bytes()
    except PhotoError:
        raise
    except PermissionError as exc:
        raise PhotoError(p, "permission denied (cannot read the file)") from exc
    except OSError as exc:
        raise PhotoError(p, f"cannot read file ({_os_reason(exc)})") from exc
    if not data:
        raise PhotoError(p, "empty file (0 bytes)")
    return data


def _raw_kind(data: bytes) -> str | None:
    """Which camera RAW format ``data`` is by its content ('DNG', 'CR2', 'ORF', ...), or None.

    Besides the RAW formats' own signatures, a TIFF counts as RAW when its first IFD has a DNGVersion
    tag, stores colour-filter-array or linear raw samples, or is a reduced-resolution preview with
    SubIFDs (how NEF, ARW and PEF hide their sensor data from TIFF readers)."""
    if data.startswith((b"IIRO", b"IIRS", b"MMOR")):
        return "ORF"
    if data.startswith(b"IIU\x00"):
        return "RW2"
    if data.startswith(b"FUJIFILMCCD-RAW"):
        return "RAF"
    if data.startswith(b"FOVb"):
        return "X3F"
    if data.startswith(b"\x00MRM"):
        return "MRW"
    if data[4:12] == b"ftypcrx ":
        return "CR3"
    if data[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    if data[8:10] == b"CR":
        return "CR2"
    tags = _tiff_first_ifd(data)
    if _DNG_VERSION_TAG in tags:
        return "DNG"
    if tags.get(_PHOTOMETRIC_TAG) in (32803, 34892):  # CFA, LinearRaw
        return "RAW"
    if (tags.get(_NEW_SUBFILE_TYPE_TAG) or 0) & 1 and _SUB_IFDS_TAG in tags:
        return "RAW"
    return None


def _tiff_first_ifd(data: bytes) -> dict[int, int | None]:
    """The tags of a classic TIFF's first IFD, each with its first value when that is a SHORT or LONG
    (read where the entry points when the values do not fit in it; None otherwise, or when they lie
    outside ``data``); {} when the IFD cannot be read."""
    tags: dict[int, int | None] = {}
    try:
        order = {b"II": "<", b"MM": ">"}[data[:2]]
        (ifd0,) = struct.unpack_from(order + "I", data, 4)
        for entry, tag, typ, count in _ifd_entries(data, order, ifd0):
            value = None
            if typ in (3, 4) and count >= 1:
                code, size = ("H", 2) if typ == 3 else ("I", 4)
                at = entry + 8
                if count * size > 4:  # stored elsewhere: the entry holds the offset
                    (at,) = struct.unpack_from(order + "I", data, at)
                with contextlib.suppress(struct.error):
                    (value,) = struct.unpack_from(order + code, data, at)
            tags[tag] = value
    except (KeyError, struct.error):
        return tags
    return tags


def _tiff_samples_not_read(data: bytes) -> str | None:
    """Why a TIFF Pillow could not open is refused when its samples are the cause: floating-point
    (an HDR merge, a 32-bit editor's export) or integers of more than 16 bits in colour (Pillow reads
    such samples in grey photos only); None otherwise."""
    tags = _tiff_first_ifd(data)
    bits, kind = tags.get(_BITS_PER_SAMPLE_TAG), tags.get(_SAMPLE_FORMAT_TAG) or 1
    if bits is None or (kind != 3 and bits <= 16) or (tags.get(_SAMPLES_PER_PIXEL_TAG) or 1) < 3:
        return None  # a grey one of these Pillow reads: something else is wrong with it
    what = f"{bits}-bit floating-point" if kind == 3 else f"{bits}-bit integer"
    return f"blurvid cannot read {what} samples in a colour photo; save it as a 16-bit TIFF or PNG"


def _is_reduced_page(im: Image.Image) -> bool:
    """Whether the TIFF page ``im`` is on is a reduced-resolution preview or a transparency mask
    (NewSubfileType bit 0 or 2; the old SubfileType 2)."""
    tags = getattr(im, "tag_v2", {})
    try:
        return bool(int(tags.get(_NEW_SUBFILE_TYPE_TAG) or 0) & 0b101) or tags.get(_SUBFILE_TYPE_TAG) == 2
    except (TypeError, ValueError):
        return False


def _seek_full_size_page(p: Path, im: Image.Image) -> None:
    """Put the TIFF ``im`` on its first full-size page (see :func:`read_photo`), warning when more
    full-size pages follow; PhotoError when it has none. A page chain Pillow cannot walk leaves the
    first page, as Pillow opened it."""
    try:
        pages = []
        for index in range(getattr(im, "n_frames", 1)):
            im.seek(index)
            if not _is_reduced_page(im):
                pages.append(index)
    except Exception:
        with contextlib.suppress(Exception):
            im.seek(0)
        return
    if not pages:
        raise PhotoError(
            p,
            "holds only a reduced-resolution preview (TIFF NewSubfileType 1), not the full-size image; "
            "export the photo again as a TIFF or JPEG",
        )
    if len(pages) > 1:
        _log.warning("%s: has %d pages; only the first is read", p, len(pages))
    im.seek(pages[0])


def _open_and_load(p: Path, data: bytes, max_pixels: int) -> Image.Image:
    """Open ``data`` with Pillow and force a full decode, mapping every failure to PhotoError."""
    too_big = f"image too large (more than {max_pixels:,} pixels; possible decompression bomb)"
    with _PIL_LOCK:
        saved_limit, saved_truncated = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
        Image.MAX_IMAGE_PIXELS = max_pixels
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                try:
                    im = Image.open(BytesIO(data))
                except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                    raise PhotoError(p, too_big) from exc
                except MemoryError as exc:
                    raise PhotoError(p, "not enough memory to open this image") from exc
                except Exception as exc:
                    kind = _unreadable_kind(p, data)
                    if kind is not None:
                        raise PhotoError(p, kind.reason) from exc
                    announced = _signature_format(data)  # the start of a photo: cut short or damaged
                    samples = _tiff_samples_not_read(data) if announced == "TIFF" else None
                    if samples is not None:
                        raise PhotoError(p, samples) from exc
                    if announced is None:
                        if isinstance(exc, UnidentifiedImageError):
                            raise PhotoError(p, "not an image file (unknown or unsupported format)") from exc
                        raise PhotoError(p, f"corrupt image header ({_describe(exc)})") from exc
                    why = (
                        "its header cannot be read"
                        if isinstance(exc, UnidentifiedImageError)
                        else _describe(exc)
                    )
                    raise PhotoError(p, f"truncated or damaged {announced} file ({why})") from exc
                if im.format == "TIFF":
                    try:
                        _seek_full_size_page(p, im)
                    except PhotoError:
                        im.close()
                        raise
                width, height = im.size
                if width * height > max_pixels:
                    im.close()
                    raise PhotoError(
                        p,
                        f"image too large ({width}x{height} = {width * height:,} pixels, "
                        f"limit {max_pixels:,}; possible decompression bomb)",
                    )
                if width <= 0 or height <= 0:
                    im.close()
                    raise PhotoError(p, "image has no pixels")
                stored = im.tag_v2.get(_ORIENTATION_TAG) if im.format == "TIFF" else None
                try:
                    im.load()
                except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                    im.close()
                    raise PhotoError(p, too_big) from exc
                except MemoryError as exc:
                    im.close()
                    raise PhotoError(p, "not enough memory to decode this image") from exc
                except Exception as exc:
                    im.close()
                    raise PhotoError(p, f"truncated or corrupt image data ({_describe(exc)})") from exc
                if stored in range(2, 9) and _ORIENTATION_TAG not in im.tag_v2:
                    im.info[_TURNED] = int(stored)  # Pillow (>= 11) turned the page upright as it loaded
        finally:
            Image.MAX_IMAGE_PIXELS = saved_limit
            ImageFile.LOAD_TRUNCATED_IMAGES = saved_truncated
    return im


# im.info key: the EXIF orientation Pillow applied itself while loading (TIFF), whose tag it then dropped
_TURNED = "blurvid.turned"


_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_INT16_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
# 32-bit integer photos whose values fit in this many bits (or fewer, down to 16) are read on that
# many bits' scale: sensor data, not values spread over the container's whole 32-bit range
_MAX_DATA_BITS = 24


def _photo_from_image(p: Path, data: bytes, im: Image.Image) -> Photo:
    if im.format in _ANIMATION_FORMATS and getattr(im, "n_frames", 1) > 1:
        raise PhotoError(p, f"is an animation ({im.n_frames} frames), not a still photo")
    fmt = "JPEG" if im.format == "MPO" else (im.format or "UNKNOWN")
    icc: bytes | None = im.info.get("icc_profile") or None
    if icc is not None and not isinstance(icc, bytes):
        icc = None
    orientation = _orientation_of(im)
    turned = int(im.info.get(_TURNED, 1))  # already applied to Pillow's pixels, not to ffmpeg's
    exif = _exif_of(im, fmt)
    source_bits = _source_bits(im, data, fmt)
    bit_depth = 16 if source_bits > 8 else 8
    grey = _source_is_grey(im, data, fmt)

    alpha: np.ndarray | None = None
    if im.mode in _INT16_MODES or im.mode in ("I", "F"):
        # Pillow keeps the full precision of single-channel 16/32-bit images.
        values = np.asarray(im)
        if im.mode == "F":
            grey_plane = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
            outside = float(np.mean((grey_plane < 0) | (grey_plane > 1)))
            median = float(np.median(grey_plane)) if grey_plane.size else 0.0
            if not 0 <= median <= 1:  # another scale (0..255, say): clipped, a blank result; an HDR
                # photo's values lie mostly within 0..1, its highlights above
                raise PhotoError(
                    p,
                    f"its floating-point values lie on another scale than 0..1 (median {median:.4g}, from "
                    f"{float(grey_plane.min()):.4g} to {float(grey_plane.max()):.4g}); blurvid reads them on "
                    "a 0..1 scale: save it so, or as a 16-bit TIFF or PNG",
                )
            if outside > 0:  # an HDR / linear float image: blurvid works on display values in 0..1
                _log.warning(
                    "%s: %.1f %% of its floating-point values lie outside 0..1 and are clipped",
                    p,
                    100 * outside,
                )
        else:
            scale = 65535.0 if im.mode in _INT16_MODES else float(2 ** min(max(source_bits, 16), 32) - 1)
            used = max(16, int(values.max()).bit_length()) if values.size else 32
            if scale > 65535 and used <= _MAX_DATA_BITS and 0 <= int(values.min()):
                # 16- to 24-bit data in a 32-bit container (scientific and astro cameras write these):
                # on the 32-bit scale it would be black (at most 0.4 % of full scale)
                _log.warning(
                    "%s: 32-bit integer values all within 0..%d; read as %d-bit data", p, 2**used - 1, used
                )
                scale = float(2**used - 1)
            grey_plane = values.astype(np.float32) / np.float32(scale)
            transparent = im.info.get("transparency")
            if isinstance(transparent, int):
                alpha = (values != transparent).astype(np.float32)
        grey_plane = np.clip(grey_plane, 0.0, 1.0)
        rgb = _apply_orientation(np.repeat(grey_plane[:, :, None], 3, axis=2), orientation)
        if alpha is not None:
            alpha = _apply_orientation(alpha, orientation)
        bit_depth = 16
    else:
        im8, icc = _to_8bit_mode(im, icc)
        arr8 = np.asarray(im8)
        if arr8.ndim == 2:
            arr8 = arr8[:, :, None]
        colour8 = arr8[:, :, :1] if grey else arr8[:, :, :3]
        alpha8 = arr8[:, :, -1] if im8.mode in ("LA", "RGBA") else None
        wide = (
            _decode_16bit(p, data, fmt, im, colour8, alpha8, grey, turned)
            if bit_depth == 16 and fmt in ("PNG", "TIFF")
            else None
        )
        # The integers are turned upright before they become floats (the same values, and the copy that
        # turning makes is a quarter or half the size); each float plane is made once.
        colour16, alpha16 = wide if wide is not None else (None, None)
        key = im.info.get("transparency")
        if colour16 is not None and alpha16 is None and isinstance(key, tuple) and len(key) == 3 and not grey:
            # a 16-bit PNG's tRNS colour is 16-bit: Pillow compared it with its 8-bit decode (no match)
            alpha16 = np.where((colour16 == np.asarray(key, np.uint16)).all(axis=2), 0, 65535).astype(
                np.uint16
            )
        if colour16 is not None:
            colour = _unit_float(_apply_orientation(colour16, orientation), 65535.0)
        else:
            colour = _unit_float(_apply_orientation(colour8, orientation), 255.0)
        if alpha16 is not None:  # the source's own alpha at 16 bits
            alpha = _unit_float(_apply_orientation(alpha16, orientation), 65535.0)
        elif alpha8 is not None:
            alpha = _unit_float(_apply_orientation(alpha8, orientation), 255.0)
        del arr8, colour8, alpha8, wide, colour16, alpha16
        rgb = np.repeat(colour, 3, axis=2) if grey else colour
    return Photo(
        pixels=np.ascontiguousarray(rgb, dtype=np.float32),
        alpha=None if alpha is None else np.ascontiguousarray(alpha, dtype=np.float32),
        bit_depth=bit_depth,
        grey=grey,
        icc_profile=icc,
        exif=exif,
        format=fmt,
        path=p,
        xmp=_xmp_of(im),
        dpi=_dpi_of(im, orientation if turned == 1 else turned),
        compression=_compression_of(im, data, fmt),
        png_colour=_png_colour_of(data) if fmt == "PNG" and icc is None else None,
        iptc=_iptc_of(im) if fmt == "JPEG" else None,
        comment=(im.info.get("comment") or None) if fmt == "JPEG" else None,
        png_text=_png_text_of(data) if fmt == "PNG" else None,
    )


_PHOTOSHOP_IRB = b"Photoshop 3.0\x00"
_IPTC_RESOURCE = 0x0404
# one APP13 segment (65,533 bytes after its length field), less the IRB name, the resource's 12-byte
# header (8BIM, id, empty name, size) and its padding byte
_JPEG_MAX_IPTC = 65_533 - len(_PHOTOSHOP_IRB) - 12 - 1


def _iptc_of(im: Image.Image) -> bytes | None:
    """The IPTC-IIM record in a JPEG's Photoshop APP13 segments (resource 0x0404), or None. Only it is
    read: the segments' other resources (a thumbnail of the blurred photo, Photoshop's own state) are
    left behind."""
    irb = b"".join(
        payload[len(_PHOTOSHOP_IRB) :]
        for marker, payload in getattr(im, "applist", [])
        if marker == "APP13" and payload.startswith(_PHOTOSHOP_IRB)
    )
    at = 0
    while at + 12 <= len(irb) and irb[at : at + 4] == b"8BIM":
        (resource,) = struct.unpack_from(">H", irb, at + 4)
        name = irb[at + 6]
        at += 6 + ((name + 2) & ~1)  # the Pascal name, padded to an even length
        if at + 4 > len(irb):
            break
        (size,) = struct.unpack_from(">I", irb, at)
        if resource == _IPTC_RESOURCE:
            return bytes(irb[at + 4 : at + 4 + size]) or None
        at += 4 + size + (size & 1)
    return None


def _iptc_segment(iptc: bytes) -> bytes:
    """A JPEG APP13 segment holding ``iptc`` as Photoshop's resource 0x0404 (marker and length too)."""
    resource = b"8BIM" + struct.pack(">HHI", _IPTC_RESOURCE, 0, len(iptc)) + iptc + b"\x00" * (len(iptc) & 1)
    payload = _PHOTOSHOP_IRB + resource
    return b"\xff\xed" + struct.pack(">H", len(payload) + 2) + payload


# a gAMA that differs from sRGB's tones by less than this (the usual 1/2.2) is not worth a warning
_SRGB_GAMMA, _GAMMA_SLACK = 0.45455, 0.02


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """``(type, start, end)`` of each chunk of the PNG ``data`` whose header it holds, in file order:
    its payload is ``data[start:end]`` (``end`` past ``len(data)`` when the file is cut short there).
    Payloads are not copied (a photo's IDAT runs to megabytes)."""
    at = len(_PNG_SIGNATURE)
    while at + 8 <= len(data):
        (size,) = struct.unpack_from(">I", data, at)
        yield bytes(data[at + 4 : at + 8]), at + 8, at + 8 + size
        at += 12 + size


def _png_colour_of(data: bytes) -> tuple[tuple[bytes, bytes], ...] | None:
    """The gAMA and cHRM chunks of the PNG ``data`` (type, payload), or None when it has neither or an
    sRGB / iCCP chunk (which take precedence over them)."""
    found: list[tuple[bytes, bytes]] = []
    for kind, start, end in _png_chunks(data):
        if kind in (b"IDAT", b"IEND", b"PLTE"):  # the colour chunks come before these
            break
        if kind in (b"sRGB", b"iCCP"):
            return None
        if kind in (b"gAMA", b"cHRM") and end <= len(data):
            found.append((kind, bytes(data[start:end])))
    return tuple(found) or None


_PNG_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")


def _png_text_of(data: bytes) -> tuple[tuple[bytes, bytes], ...] | None:
    """The text chunks of the PNG ``data`` (type, payload; before and after the image data), but not
    its XMP (kept as ``Photo.xmp``) nor ImageMagick's ``Raw profile type ...`` copies of its EXIF, XMP,
    ICC or IPTC (carried, and updated, on their own: a copy would keep the old orientation and size),
    or None when it has none."""
    found: list[tuple[bytes, bytes]] = []
    xmp_key = _PNG_XMP_KEY.encode() + b"\0"
    for kind, start, end in _png_chunks(data):
        if kind == b"IEND" or end + 4 > len(data):
            break
        copy = data.startswith(b"Raw profile type ", start, end) or (
            kind == b"iTXt" and data.startswith(xmp_key, start, end)
        )
        if kind in _PNG_TEXT_CHUNKS and not copy:
            found.append((kind, bytes(data[start:end])))
    return tuple(found) or None


def _png_gamma(chunks: tuple[tuple[bytes, bytes], ...] | None) -> float | None:
    """The gamma a PNG's gAMA chunk states (0.45455 for sRGB-like tones), or None."""
    for kind, payload in chunks or ():
        if kind == b"gAMA" and len(payload) == 4:
            return struct.unpack(">I", payload)[0] / 100000
    return None


def _compression_of(im: Image.Image, data: bytes, fmt: str) -> str | None:
    """``Photo.compression``: a TIFF's as Pillow names it; 'lossless' / 'lossy' for a WebP."""
    if fmt == "TIFF":
        return str(im.info["compression"]) if im.info.get("compression") else None
    if fmt == "WEBP":
        return "lossless" if _webp_is_lossless(data) else "lossy"
    return None


def _webp_is_lossless(data: bytes) -> bool:
    """Whether a WebP file's image is VP8L (lossless) rather than VP8 (lossy): its first image chunk."""
    offset = 12  # 'RIFF', size, 'WEBP'
    while offset + 8 <= len(data):
        kind = data[offset : offset + 4]
        if kind in (b"VP8L", b"VP8 "):
            return kind == b"VP8L"
        (size,) = struct.unpack_from("<I", data, offset + 4)
        offset += 8 + size + (size & 1)
    return False


def _dpi_of(im: Image.Image, orientation: int) -> tuple[float, float] | None:
    """The (x, y) pixels per inch Pillow read (JFIF density, PNG pHYs, TIFF / BMP resolution), in the
    upright photo's axes; None when the file states none or nonsense."""
    dpi = im.info.get("dpi")
    try:
        x, y = (float(v) for v in dpi)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    if not (0 < x < 1e6 and 0 < y < 1e6) or (x, y) == (1.0, 1.0):  # (1, 1): JFIF's "aspect only"
        return None
    return (y, x) if orientation in (5, 6, 7, 8) else (x, y)


_XMP_ORIENTATION = re.compile(
    rb'(tiff:Orientation\s*=\s*["\'])\d(["\'])|(<tiff:Orientation>)\s*\d\s*(</tiff:Orientation>)'
)


def _xmp_dimension(axis: bytes) -> re.Pattern[bytes]:
    return re.compile(
        rb"(exif:Pixel" + axis + rb"Dimension\s*=\s*[\"'])\d+([\"'])|"
        rb"(<exif:Pixel" + axis + rb"Dimension>)\s*\d+\s*(</exif:Pixel" + axis + rb"Dimension>)"
    )


_XMP_DIMENSIONS = (_xmp_dimension(b"X"), _xmp_dimension(b"Y"))


def _xmp_for_output(xmp: bytes, size: tuple[int, int]) -> bytes:
    """``xmp`` with the ``exif:PixelXDimension`` / ``exif:PixelYDimension`` it states set to the
    result's ``size`` = (width, height), as :func:`_exif_for_output` sets EXIF's (a photo turned
    upright had its sides swapped there)."""
    for pattern, value in zip(_XMP_DIMENSIONS, size, strict=True):
        digits = str(int(value)).encode()
        xmp = pattern.sub(lambda m, d=digits: (m[1] or m[3]) + d + (m[2] or m[4]), xmp)
    return xmp


def _xmp_of(im: Image.Image) -> bytes | None:
    """The XMP packet Pillow found (JPEG APP1, PNG iTXt, WebP chunk, TIFF tag 700), with its
    ``tiff:Orientation`` set to 1 as the pixels are upright now; None if there is none."""
    xmp = im.info.get("xmp")
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    if not isinstance(xmp, bytes) or not xmp.strip(b"\0 \n"):
        return None
    return _XMP_ORIENTATION.sub(lambda m: (m[1] or m[3]) + b"1" + (m[2] or m[4]), xmp)


def _to_8bit_mode(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """Convert any Pillow mode to L, LA, RGB or RGBA; also returns the ICC profile that now applies."""
    mode = im.mode
    has_transparency = "transparency" in im.info
    if mode in ("L", "LA", "RGB", "RGBA") and not (has_transparency and mode in ("L", "RGB")):
        return im, icc
    if mode == "1":
        return im.convert("L"), icc
    if mode == "L":
        return im.convert("LA"), icc
    if mode in ("La", "LA"):
        return im.convert("LA"), icc
    if mode in ("P", "PA"):
        return im.convert("RGBA" if mode == "PA" or has_transparency else "RGB"), icc
    if mode == "CMYK":
        return _cmyk_to_srgb(im, icc)
    if mode in ("RGBa", "RGBA", "RGB"):
        return im.convert("RGBA"), icc
    return im.convert("RGB"), icc


def _cmyk_to_srgb(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    if icc is not None and _icc_colour_space(icc) == b"CMYK":
        try:
            from PIL import ImageCms

            srgb = ImageCms.createProfile("sRGB")
            source = ImageCms.ImageCmsProfile(BytesIO(icc))
            converted = ImageCms.profileToProfile(im, source, srgb, outputMode="RGB")
            if converted is not None:
                return converted, ImageCms.ImageCmsProfile(srgb).tobytes()
        except Exception as exc:  # a broken profile: fall back to the naive conversion
            _log.warning("CMYK profile could not be used (%s); converting naively", _describe(exc))
    return im.convert("RGB"), None


def _source_is_grey(im: Image.Image, data: bytes, fmt: str) -> bool:
    """The source stores one colour channel (Pillow shows 16-bit grey+alpha PNG as RGBA)."""
    if im.mode in _GREY_MODES:
        return True
    if fmt == "PNG" and data.startswith(_PNG_SIGNATURE) and data[12:16] == b"IHDR" and len(data) > 25:
        return data[25] in (0, 4)
    return False


def _source_bits(im: Image.Image, data: bytes, fmt: str) -> int:
    """Bits per channel of the source file (as stored, before Pillow's conversions)."""
    if fmt == "PNG" and data.startswith(_PNG_SIGNATURE) and data[12:16] == b"IHDR" and len(data) > 25:
        return int(data[24])
    if fmt == "TIFF":
        tags = getattr(im, "tag_v2", None)
        bits = tags.get(258) if tags is not None else None
        if isinstance(bits, tuple) and bits:
            return int(max(bits))
        if isinstance(bits, int):
            return bits
    if im.mode in _INT16_MODES:
        return 16
    if im.mode in ("I", "F"):
        return 32
    return 8


def _decode_16bit(
    p: Path,
    data: bytes,
    fmt: str,
    im: Image.Image,
    colour8: np.ndarray,
    alpha8: np.ndarray | None,
    grey: bool,
    turned: int = 1,
) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Full-precision colour (and alpha, when the source stores one) of a 16-bit colour PNG/TIFF.

    ``data`` is the file's bytes; ``colour8``/``alpha8`` are Pillow's 8-bit decode of the same page,
    used to check ffmpeg's result. Returns uint16 ``(H, W, C)`` colour (C = 1 if grey else 3) and
    ``(H, W)`` alpha (None when the source has no alpha channel; then Pillow's alpha, e.g. from tRNS,
    stays) as stored (not turned upright), or None (with a warning) when ffmpeg could not give a
    trustworthy 16-bit decode. ffmpeg decodes a TIFF's first page only: for a later page (after a
    preview) it decodes a temporary copy whose header points at that page (:func:`_tiff_page_header`).
    ``turned``: the EXIF orientation Pillow has applied to ``im`` already (its TIFF reader turns pages
    upright); ffmpeg's raster is as stored, so it is turned the same way to compare and return.
    """
    stored_alpha = im.mode in ("RGBA", "LA", "La", "RGBa", "PA")
    channels = 4 if stored_alpha else 3
    width, height = im.size if turned < 5 else im.size[::-1]  # ffmpeg's size: the stored raster's
    if im.tell() == 0:
        wide = _ffmpeg_decode(p, fmt, width, height, channels)
    else:  # ffmpeg reads a TIFF's first page, and only from a file (it seeks)
        header = _tiff_page_header(data, im.tell())
        wide = None
        if header is not None:
            with tempfile.TemporaryDirectory(prefix="blurvid-") as tmp:
                copy = Path(tmp) / "page.tif"
                with copy.open("wb") as f:
                    f.write(header)
                    f.write(memoryview(data)[len(header) :])
                wide = _ffmpeg_decode(copy, fmt, width, height, channels)
    # Pillow misreads 16-bit colour stored plane by plane (PlanarConfiguration 2, Photoshop's "Per
    # Channel" pixel order) as 8-bit planes: its decode is no reference, and no fallback either.
    planar = fmt == "TIFF" and getattr(im, "tag_v2", {}).get(284) == 2
    if wide is None:
        if planar:
            raise PhotoError(
                p,
                "cannot decode this 16-bit TIFF stored plane by plane (PlanarConfiguration 2; ffmpeg "
                "could not read it); save it with interleaved (per-pixel) order",
            )
        _log.warning("%s: could not decode 16 bits per channel; using 8-bit precision", p)
        return None
    wide = _apply_orientation(wide, turned) if turned != 1 else wide
    colour16 = wide[:, :, :1] if grey else wide[:, :, :3]
    # Pillow's 16 -> 8 bit reduction keeps the high byte; allow 1 of slack for rounding reducers.
    if not planar and (
        not _agrees(colour16, colour8)
        or (stored_alpha and alpha8 is not None and not _agrees(wide[:, :, 3], alpha8))
    ):
        _log.warning("%s: 16-bit decode disagrees with the 8-bit one; using 8-bit precision", p)
        return None
    return colour16, (wide[:, :, 3] if stored_alpha else None)


def _unit_float(values: np.ndarray, top: float) -> np.ndarray:
    """Unsigned integers -> float32 ``values / top``, dividing in place (the values of
    ``values.astype(np.float32) / np.float32(top)``, without a second float copy)."""
    out = values.astype(np.float32)
    out /= np.float32(top)
    return out


def _agrees(wide: np.ndarray, narrow: np.ndarray) -> bool:
    """Whether the high bytes of uint16 ``wide`` are within 1 of uint8 ``narrow`` everywhere (compared in
    bands of rows: the int16 temporaries stay small)."""
    if wide.shape != narrow.shape:
        return False
    rows = _band_rows(wide)
    for r0 in range(0, wide.shape[0], rows):
        high = (wide[r0 : r0 + rows] >> 8).astype(np.int16)
        if int(np.abs(high - narrow[r0 : r0 + rows].astype(np.int16)).max(initial=0)) > 1:
            return False
    return True


def _tiff_page_header(data: bytes, index: int) -> bytes | None:
    """The start of the TIFF (or BigTIFF) ``data``, up to and with the offset of its first IFD, made
    to name page ``index`` (0-based, along the chain of IFDs) as the first: followed by the rest of
    ``data`` it is a file whose first page, for a decoder that reads only that, is page ``index`` (the
    other bytes, which the IFDs point into, stay where they are). None when the chain is broken."""
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None or len(data) < 16:
        return None
    big = struct.unpack(order + "H", data[2:4])[0] == 43
    # classic: 4-byte offsets, 2-byte entry counts, 12-byte entries; BigTIFF: 8, 8 and 20
    off_fmt, off_at, count_fmt, entry = (
        (order + "Q", 8, order + "Q", 20) if big else (order + "I", 4, order + "H", 12)
    )
    off_size, count_size = struct.calcsize(off_fmt), struct.calcsize(count_fmt)
    offset = struct.unpack(off_fmt, data[off_at : off_at + off_size])[0]
    for _ in range(index):
        if not 0 < offset <= len(data) - count_size:
            return None
        (n,) = struct.unpack(count_fmt, data[offset : offset + count_size])
        link = offset + count_size + n * entry
        if link + off_size > len(data):
            return None
        offset = struct.unpack(off_fmt, data[link : link + off_size])[0]
    if not 0 < offset <= len(data) - count_size:
        return None
    return data[:off_at] + struct.pack(off_fmt, offset)


def _ffmpeg_decode(p: Path, fmt: str, width: int, height: int, channels: int) -> np.ndarray | None:
    """Decode the first frame of ``p`` with ffmpeg to uint16 ``(H, W, channels)``; None on failure."""
    try:
        exe = _ffmpeg_exe()
    except Exception as exc:
        _log.warning("ffmpeg is not available: %s", _describe(exc))
        return None
    demuxer = {"PNG": "png_pipe", "TIFF": "tiff_pipe"}[fmt]
    pix_fmt = "rgba64le" if channels == 4 else "rgb48le"
    cmd = [
        exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-noautorotate",
        "-f", demuxer, "-i", _ffmpeg_file_url(p),
        "-map", "0:v:0", "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", pix_fmt, "pipe:1",
    ]  # fmt: skip
    try:
        result = subprocess.run(cmd, capture_output=True, timeout=_FFMPEG_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        _log.warning("ffmpeg failed to run: %s", _describe(exc))
        return None
    expected = width * height * channels * 2
    if result.returncode != 0 or len(result.stdout) != expected:
        _log.debug("ffmpeg decode of %s failed (rc=%s): %s", p, result.returncode, result.stderr[-500:])
        return None
    return np.frombuffer(result.stdout, dtype="<u2").reshape(height, width, channels)


def _orientation_of(im: Image.Image) -> int:
    """EXIF orientation 1..8 (or the XMP tiff:Orientation when EXIF has none); 1 when unknown."""
    value: Any = None
    try:
        value = im.getexif().get(_ORIENTATION_TAG)
    except Exception:
        value = None
    if value is None:
        xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
        if isinstance(xmp, str):
            xmp = xmp.encode("utf-8", "replace")
        if isinstance(xmp, bytes):
            found = re.search(rb'tiff:Orientation(?:="|>)([0-9])', xmp)
            value = int(found.group(1)) if found else None
    try:
        orientation = int(value[0] if isinstance(value, tuple) else value)
    except (TypeError, ValueError, IndexError):
        return 1
    return orientation if 1 <= orientation <= 8 else 1


def _apply_orientation(a: np.ndarray, orientation: int) -> np.ndarray:
    """Turn a stored ``(H, W, ...)`` array upright according to EXIF orientation 1..8."""
    if orientation == 2:
        a = a[:, ::-1]
    elif orientation == 3:
        a = a[::-1, ::-1]
    elif orientation == 4:
        a = a[::-1]
    elif orientation == 5:
        a = a.swapaxes(0, 1)
    elif orientation == 6:
        a = np.rot90(a, -1)
    elif orientation == 7:
        a = a[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        a = np.rot90(a, 1)
    return np.ascontiguousarray(a)


def _exif_of(im: Image.Image, fmt: str) -> bytes | None:
    """The source's EXIF as ``b"Exif\\0\\0" + TIFF`` with orientation reset to 1, or None."""
    raw = im.info.get("exif")
    if fmt != "TIFF" and isinstance(raw, bytes) and len(raw) > 8:
        if not raw.startswith(_EXIF_HEADER):
            if raw[:4] not in (b"II*\x00", b"MM\x00*"):
                return None
            raw = _EXIF_HEADER + raw
        return _exif_for_output(raw, None)
    try:
        source = im.getexif()
        if fmt == "TIFF":
            # A TIFF's IFD0 mixes layout tags with metadata: keep only the metadata.
            exif = Image.Exif()
            for tag in _TIFF_METADATA_TAGS:
                if tag in (_EXIF_IFD_TAG, _GPS_IFD_TAG):
                    sub = source.get_ifd(tag)
                    if sub:
                        exif[tag] = dict(sub)
                elif tag in source:
                    exif[tag] = source[tag]
        else:
            exif = source
        if len(exif) == 0:
            return None
        if _ORIENTATION_TAG in exif:
            exif[_ORIENTATION_TAG] = 1
        return exif.tobytes()
    except Exception as exc:
        _log.debug("EXIF could not be read: %s", _describe(exc))
        return None


def _ifd_entries(tiff: bytes, order: str, ifd: int) -> Iterator[tuple[int, int, int, int]]:
    """``(offset, tag, type, count)`` of each 12-byte entry of the IFD at ``ifd`` in ``tiff``."""
    (count,) = struct.unpack_from(order + "H", tiff, ifd)
    for i in range(count):
        entry = ifd + 2 + 12 * i
        tag, typ, n = struct.unpack_from(order + "HHI", tiff, entry)
        yield entry, tag, typ, n


def _exif_for_output(exif: bytes, size: tuple[int, int] | None) -> bytes:
    """Raw EXIF (with ``Exif\\0\\0`` header) for a written result: IFD0 Orientation 1 and, with
    ``size`` = (width, height), the Exif IFD's PixelXDimension / PixelYDimension set to it where
    present (a rotated or resized result would otherwise state the source's size).

    The IFD1 thumbnail (a small JPEG of the source: blurred, and lying on its side in a photo that
    was turned upright) is unlinked, so that viewers and cameras that show it do not show the source.

    The values are patched in place, so everything else stays byte-exact (the thumbnail's bytes stay,
    unreferenced: a maker note may point anywhere, so nothing is moved); a layout this cannot patch
    (say, a SHORT field too small for the size) is rewritten by Pillow instead, which writes no IFD1."""
    tiff = exif[len(_EXIF_HEADER) :] if exif.startswith(_EXIF_HEADER) else exif
    start = len(exif) - len(tiff)
    wanted: dict[int, int] = {_ORIENTATION_TAG: 1}
    if size is not None:
        wanted.update({_PIXEL_X_TAG: int(size[0]), _PIXEL_Y_TAG: int(size[1])})
    out = bytearray(exif)
    try:
        order = {b"II": "<", b"MM": ">"}[tiff[:2]]
        (ifd0,) = struct.unpack_from(order + "I", tiff, 4)
        entries = list(_ifd_entries(tiff, order, ifd0))
        ifd0_count = len(entries)
        sub = [e for e in entries if e[1] == _EXIF_IFD_TAG and e[2] in (4, 13) and e[3] == 1]
        if size is not None and sub:
            (offset,) = struct.unpack_from(order + "I", tiff, sub[0][0] + 8)
            entries += list(_ifd_entries(tiff, order, offset))
        for entry, tag, typ, n in entries:
            value = wanted.get(tag)
            if value is None or n < 1:
                continue
            if typ == 3 and value <= 0xFFFF:
                struct.pack_into(order + "H", out, start + entry + 8, value)
            elif typ == 4 and tag != _ORIENTATION_TAG:
                struct.pack_into(order + "I", out, start + entry + 8, value)
            else:
                raise ValueError(f"EXIF tag {tag:#x} of type {typ} cannot hold {value}")
        struct.pack_into(order + "I", out, start + ifd0 + 2 + 12 * ifd0_count, 0)  # no IFD1 (thumbnail)
        return bytes(out)
    except (KeyError, ValueError, struct.error):
        pass
    try:  # unusual layout: let Pillow rewrite it
        parsed = Image.Exif()
        parsed.load(exif)
        if _ORIENTATION_TAG in parsed:
            parsed[_ORIENTATION_TAG] = 1
        if size is not None:
            fields = parsed.get_ifd(_EXIF_IFD_TAG)
            for tag, value in ((_PIXEL_X_TAG, size[0]), (_PIXEL_Y_TAG, size[1])):
                if tag in fields:
                    fields[tag] = int(value)
        raw = parsed.tobytes()
        return raw if raw.startswith(_EXIF_HEADER) else _EXIF_HEADER + raw
    except Exception:
        return exif


# --------------------------------------------------------------------------------------------------
# Writing photos


def write_photo(
    path: str | os.PathLike[str],
    pixels: np.ndarray,
    *,
    like: Photo | None = None,
    alpha: np.ndarray | None = None,
    quality: int | None = None,
    bit_depth: int | None = None,
    replace: bool = True,
) -> Path:
    """Write ``pixels`` (float ``(H, W, 3)`` in [0, 1]; values are clipped and rounded; uint8 / uint16
    are scaled) to ``path``, with ``alpha`` ``(H, W)`` as transparency (float in [0, 1], or uint8 /
    uint16, scaled the same way).

    The format comes from the suffix: .jpg/.jpeg (``quality``; 4:4:4 chroma when quality >= 90),
    .png, .tif/.tiff (uncompressed, or lossless compressed like ``like`` when that is a compressed
    TIFF: its LZW / Deflate / PackBits at 8 bits, Deflate at 16), .webp (lossless when quality is
    100, or when it is None and ``like`` is a lossless WebP), .bmp, and where :data:`AVIF_SUPPORTED`
    .avif (lossy at ``quality``; 4:4:4 chroma when quality >= 90). ``quality`` None means 95.

    With ``like`` (the photo this result came from): ``bit_depth`` defaults to ``like.bit_depth``
    where the format holds 16 bits (PNG, TIFF; 8 elsewhere), grey is written as grey when
    ``like.grey``, ``like.alpha`` is carried when ``alpha`` is None and the sizes match, and the ICC
    profile, EXIF and XMP (orientation 1) are copied where the format holds them and the profile fits
    the output colour space. Alpha is kept in PNG/TIFF/WebP/AVIF and flattened onto white in JPEG/BMP, and 16 bits
    become 8 outside PNG/TIFF, each with a warning (logged) naming ``path``.

    The write is atomic: a hidden temporary file in the destination folder is renamed over
    ``path``; on any failure nothing is left behind. Missing parent folders are created. Whether to
    overwrite an existing ``path`` is the caller's decision; with ``replace=False`` a ``path`` that
    exists when the result is ready (another run wrote it meanwhile) is left as it is:
    :class:`OutputExists`.

    Raises:
        OutputExists: ``replace=False`` and ``path`` exists.
        PhotoError: unknown suffix, ``path`` is ``like.path`` (never overwrite the input), a
            directory, the folder cannot be created or written, the image is too big for the format.
        ValueError: malformed arguments (shapes, quality, bit_depth, an alpha plane with NaN,
            values past 1 or another integer type).
    """
    p = Path(path)
    fmt = photo_format(p)
    if p.is_dir():  # a folder named like a photo, or none: not "unsupported photo format ''"
        raise PhotoError(p, "is a directory")
    if fmt is None:
        kinds = ", ".join(
            f".{s}" for s in ("jpg", "png", "tif", "webp", "bmp", "avif") if f".{s}" in _WRITE_FORMATS
        )
        raise PhotoError(p, f"unsupported photo format '{p.suffix}' (use {kinds})")
    rgb = _as_float_image(pixels)
    height, width = rgb.shape[:2]
    if quality is None:
        lossless_source = like is not None and like.format == "WEBP" and like.compression == "lossless"
        quality = 100 if fmt == "WEBP" and lossless_source else 95
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    if alpha is None and like is not None and like.alpha is not None and like.alpha.shape == (height, width):
        alpha = like.alpha
    if alpha is not None:
        alpha = np.asarray(alpha)
        if alpha.shape != (height, width):
            raise ValueError(f"alpha must have shape {(height, width)}, got {alpha.shape}")
        alpha = _as_unit_alpha(alpha)
    depth = bit_depth if bit_depth is not None else (like.bit_depth if like is not None else 8)
    if depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {depth}")
    if fmt not in _SIXTEEN_BIT_FORMATS:
        if depth == 16:
            _log.warning("%s: %s holds 8 bits per channel; the 16-bit photo is written at 8 bits", p, fmt)
        depth = 8
    rgb, alpha = opaque_for(p, rgb, alpha)
    grey = bool(like.grey) if like is not None else False
    if fmt in ("WEBP", "AVIF"):
        grey = False  # WebP has no greyscale; Pillow reads every AVIF as colour
    icc = _icc_for(like.icc_profile if like is not None else None, grey) if fmt != "BMP" else None
    if like is not None and like.icc_profile and icc is None and fmt != "BMP":  # BMP: converted to sRGB
        space = _icc_colour_space(like.icc_profile)
        result = "grey" if grey else "colour"
        why = (
            "is damaged"
            if space is None
            else f"describes {space.decode('latin-1').strip()}, not {result}, data"
        )
        _log.warning("%s: the source's ICC profile %s; it is left out", p, why)
    exif = like.exif if like is not None and fmt != "BMP" else None
    xmp = like.xmp if like is not None and fmt != "BMP" else None
    dpi = like.dpi if like is not None and fmt not in ("WEBP", "AVIF") else None
    png_colour = like.png_colour if like is not None and icc is None else None
    iptc = like.iptc if like is not None else None
    comment = like.comment if like is not None else None
    if iptc is not None and fmt != "JPEG":
        _log.warning("%s: the source's IPTC record (captions, copyright) is copied only to JPEG results", p)
        iptc = None
    png_text = like.png_text if like is not None else None
    if png_text is not None and fmt != "PNG":
        _log.warning(
            "%s: the source's PNG text (title, author, copyright ...) is copied only to PNG results", p
        )
        png_text = None
    if iptc is not None and len(iptc) > _JPEG_MAX_IPTC:
        _log.warning(
            "%s: the IPTC record is too large for one JPEG segment (%d bytes); not copied", p, len(iptc)
        )
        iptc = None
    gamma = _png_gamma(png_colour)
    if fmt != "PNG" and gamma is not None and abs(gamma - _SRGB_GAMMA) > _GAMMA_SLACK * _SRGB_GAMMA:
        _log.warning(
            "%s: %s cannot state the source PNG's gamma (%.3g, not sRGB's tones): it will look different; "
            "write PNG to keep it",
            p,
            fmt,
            gamma,
        )
    from_tiff = like is not None and like.format == "TIFF" and like.compression != "raw"
    squeeze = like.compression if like is not None and from_tiff and fmt == "TIFF" else None
    if squeeze not in (None, *_TIFF_COMPRESSIONS):
        squeeze = "tiff_adobe_deflate"  # a compression Pillow reads but is not asked to write: lossless
    if xmp is not None:
        xmp = _xmp_for_output(xmp, (width, height))
    if fmt == "JPEG" and xmp is not None and len(xmp) > _JPEG_MAX_XMP:
        _log.warning("%s: XMP is too large for one JPEG segment (%d bytes); not copied", p, len(xmp))
        xmp = None
    if exif is not None:
        exif = exif if exif.startswith(_EXIF_HEADER) else _EXIF_HEADER + exif
        exif = _exif_for_output(exif, (width, height))
        if fmt == "JPEG" and len(exif) > _JPEG_MAX_EXIF:
            slim = _exif_without_maker_note(exif)
            if slim is not None and len(slim) <= _JPEG_MAX_EXIF:
                _log.warning(
                    "%s: EXIF is too large for JPEG (%d bytes); copied without the maker note and any thumbnail",
                    p,
                    len(exif),
                )
            else:
                _log.warning("%s: EXIF is too large for JPEG (%d bytes); not copied", p, len(exif))
            exif = slim if slim is not None and len(slim) <= _JPEG_MAX_EXIF else None
    if max(height, width) > _MAX_SIDE[fmt]:
        limit = _MAX_SIDE[fmt]
        raise PhotoError(p, f"{width}x{height} is too large for {fmt} (at most {limit} pixels a side)")
    if like is not None and like.path is not None and _same_file(p, like.path):
        raise PhotoError(p, "is the input photo; refusing to overwrite it")

    channels = rgb.mean(axis=2, keepdims=True) if grey else rgb

    def quantized(bits: int) -> np.ndarray:
        """The colour channels and alpha as one ``(H, W, C)`` integer array, each converted into its
        slice (the same bytes as converting the float channels and alpha stacked, without stacking)."""
        if alpha is None:
            return _quantize(channels, bits)
        n = channels.shape[2]
        values = np.empty((height, width, n + 1), np.uint8 if bits == 8 else np.uint16)
        _quantize(channels, bits, out=values[:, :, :n])
        _quantize(np.asarray(alpha, dtype=np.float32)[:, :, None], bits, out=values[:, :, n:])
        return values

    def encode(tmp: Path) -> None:
        if depth == 16:
            values16 = quantized(16)
            with open(tmp, "wb") as fh:
                if fmt == "PNG":
                    _encode_png16(fh, values16, icc, exif, xmp, dpi, png_colour, png_text)
                elif values16.shape[2] == 2:
                    # Pillow (so read_photo, and much other software) cannot open 16-bit grey+alpha
                    # TIFF: write it as RGBA with three equal channels instead.
                    rgba = values16[:, :, [0, 0, 0, 1]]
                    rgba_icc = icc if _icc_for(icc, grey=False) else None
                    if icc is not None and rgba_icc is None:
                        _log.warning(
                            "%s: the source's grey ICC profile does not fit the RGBA this TIFF is written "
                            "as; it is left out",
                            p,
                        )
                    _encode_tiff16(fh, rgba, rgba_icc, exif, xmp, dpi, squeeze)
                else:
                    _encode_tiff16(fh, values16, icc, exif, xmp, dpi, squeeze)
            return
        values8 = quantized(8)
        image = Image.fromarray(values8[:, :, 0] if values8.shape[2] == 1 else values8)
        options: dict[str, Any] = {}
        if icc is not None:
            options["icc_profile"] = icc
        if dpi is not None:
            options["dpi"] = dpi
        if squeeze is not None:
            options["compression"] = squeeze
        if fmt == "TIFF" and (exif is not None or xmp is not None):
            # one tag set: Pillow's TIFF writer drops ``exif`` when ``tiffinfo`` is given as well
            tags = _tiff_exif(exif) if exif is not None else Image.Exif()
            if xmp is not None:
                tags[_XMP_TAG] = xmp
            options["exif"] = tags
        elif exif is not None:
            options["exif"] = exif
        if fmt == "PNG" and (xmp is not None or png_colour or png_text):
            options["pnginfo"] = PngImagePlugin.PngInfo()
            for kind, payload in (png_colour or ()) + (png_text or ()):
                options["pnginfo"].add(kind, payload)
            if xmp is not None:
                options["pnginfo"].add_itxt(_PNG_XMP_KEY, xmp.decode("utf-8", "replace"))
        elif xmp is not None and fmt != "TIFF":
            options["xmp"] = xmp
        if fmt == "JPEG":
            if iptc is not None:
                options["extra"] = _iptc_segment(iptc)
            if comment is not None:
                options["comment"] = comment
            _save_jpeg(image, tmp, quality=int(quality), subsampling=0 if quality >= 90 else 2, **options)
            return
        convert = _srgb_converter(like.icc_profile) if fmt == "BMP" and like and image.mode == "RGB" else None
        if convert is not None:  # BMP holds no profile: its colours must be sRGB
            image = convert(image)
        if fmt == "AVIF":  # Pillow moves the EXIF orientation (1 here) into the container's irot / imir
            options.update(quality=int(quality), subsampling="4:4:4" if quality >= 90 else "4:2:0")
        if fmt == "WEBP":
            lossless = quality >= 100
            # exact: keep the colour under fully transparent pixels, as lossless promises
            options.update(
                lossless=lossless, quality=75 if lossless else int(quality), method=4, exact=lossless
            )
        image.save(tmp, format=fmt, **options)

    _atomic_write(p, encode, replace)
    return p


def _exif_without_maker_note(exif: bytes) -> bytes | None:
    """``exif`` (with its header) rewritten without the Exif IFD's MakerNote and the IFD1 thumbnail,
    the usual bulk of an EXIF block too large for a JPEG's 64 kB segment (a camera's maker note can
    be larger); None when it cannot be parsed."""
    try:
        parsed = Image.Exif()
        parsed.load(exif)
        fields = parsed.get_ifd(_EXIF_IFD_TAG)
        fields.pop(_MAKER_NOTE_TAG, None)
        raw = parsed.tobytes()  # Pillow writes IFD0 and its sub-IFDs, no IFD1
    except Exception:
        return None
    return raw if raw.startswith(_EXIF_HEADER) else _EXIF_HEADER + raw


def _save_jpeg(image: Image.Image, tmp: Path, **options: Any) -> None:
    """Save a JPEG with optimised Huffman tables where Pillow's encoder buffer surely holds it.

    With ``optimize`` Pillow gives libjpeg a fixed buffer of 1-2 bytes per pixel, which fine grain at
    high quality and 4:4:4 overflows ("Suspension not allowed here", a failed write). The plain
    encoding streams, so it is made first; optimising only shortens it, so it is tried only when the
    plain one fits the smallest such buffer, and the plain bytes are written otherwise.
    """
    plain = BytesIO()
    image.save(plain, format="JPEG", **options)
    if plain.tell() < image.width * image.height:
        try:
            image.save(tmp, format="JPEG", optimize=True, **options)
            return
        except OSError:
            pass
    tmp.write_bytes(plain.getvalue())


def _srgb_converter(icc: bytes | None) -> Callable[[Image.Image], Image.Image] | None:
    """A function converting mode-RGB images described by the ICC profile ``icc`` to sRGB (perceptual
    intent), for outputs that carry no profile; None when nothing is to convert: no profile, not an RGB
    one, one that names itself sRGB, or one lcms cannot read (then with a logged warning)."""
    if not icc or _icc_colour_space(icc) != b"RGB ":
        return None
    try:
        from PIL import ImageCms

        source = ImageCms.ImageCmsProfile(BytesIO(icc))
        if "srgb" in ImageCms.getProfileDescription(source).lower().replace(" ", ""):
            return None
        transform = ImageCms.buildTransform(source, ImageCms.createProfile("sRGB"), "RGB", "RGB")
    except Exception as exc:  # a broken profile: the values as they are
        _log.warning("ICC profile could not be used (%s); colours written unconverted", _describe(exc))
        return None
    return lambda image: ImageCms.applyTransform(image, transform) or image


def _as_float_image(pixels: np.ndarray) -> np.ndarray:
    arr = np.asarray(pixels)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"pixels must be an (H, W, 3) array, got shape {arr.shape}")
    arr = _unit_scaled(arr, "pixels must be float in [0, 1], got dtype {}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return arr


def _unit_scaled(values: np.ndarray, refusal: str) -> np.ndarray:
    """uint8 / uint16 ``values`` as float32 in [0, 1] (divided by 255 / 65535), floats as they are;
    ValueError ``refusal.format(dtype)`` for any other type."""
    if values.dtype == np.uint8:
        return _unit_float(values, 255.0)
    if values.dtype == np.uint16:
        return _unit_float(values, 65535.0)
    if not np.issubdtype(values.dtype, np.floating):
        raise ValueError(refusal.format(values.dtype))
    return values


def _as_unit_alpha(alpha: np.ndarray) -> np.ndarray:
    """An alpha plane as float in [0, 1]: uint8 / uint16 scaled as pixels are (128 of 255 was written
    opaque); ValueError for other integers, NaN, or floats past 1 (0-255 floats were clipped opaque)."""
    alpha = _unit_scaled(alpha, "alpha must be float in [0, 1] (or uint8 / uint16), got dtype {}")
    if alpha.size and not (
        np.isfinite(alpha).all() and float(alpha.min()) >= -1e-3 and float(alpha.max()) <= 1.001
    ):
        raise ValueError("alpha values must lie in [0, 1] (divide 0-255 values by 255)")
    return alpha


def flatten_alpha(image: np.ndarray, alpha: np.ndarray, background: float = 1.0) -> np.ndarray:
    """``(H, W, 3)`` float in [0, 1] with its ``(H, W)`` alpha in [0, 1] composited over a flat
    ``background`` (1 = white): what the photo shows, without the colour stored under its transparent
    pixels. Returns a new float32 array."""
    a = np.asarray(alpha, np.float32)[:, :, None]
    return (np.asarray(image, np.float32) * a + np.float32(background) * (1 - a)).astype(np.float32)


def fill_transparent(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` float ``image`` with the colour under its fully transparent pixels (``alpha``
    ``(H, W)`` in [0, 1] equal to 0) replaced by the colour of the visible pixels around them, spread
    coarse to fine (push-pull: alpha-weighted 2x2 means, then each level blended over the coarser one
    by its coverage). Pixels with any alpha keep their colour. What a network should see there: the
    colour stored under transparency is arbitrary (often black), and its edge against the visible
    pixels is one the photo never showed. Returns ``image`` itself when no pixel, or every pixel, is
    fully transparent; else a new float32 array."""
    a = np.asarray(alpha, np.float32)
    hidden = a <= 0
    if not hidden.any() or hidden.all():
        return image
    colour = np.asarray(image, np.float32)
    # the pyramid from half size down: the full-size premultiplied colour is needed only to make it
    levels = [(_half_mean(colour * a[:, :, None]), _half_mean(a))]
    while levels[-1][1].size > 1:
        levels.append(tuple(_half_mean(x) for x in levels[-1]))  # type: ignore[arg-type]
    tiny = np.float32(1e-12)
    fill = levels[-1][0] / np.maximum(levels[-1][1], tiny)[:, :, None]
    for premul, cover in reversed(levels[:-1]):
        h, w = cover.shape
        up = fill.repeat(2, axis=0).repeat(2, axis=1)[:h, :w]
        c = np.minimum(cover, 1)[:, :, None]
        fill = c * (premul / np.maximum(cover, tiny)[:, :, None]) + (1 - c) * up
    out = colour.copy()
    rows, cols = np.nonzero(hidden)  # each hidden pixel from the half-size fill above it
    out[rows, cols] = fill[rows // 2, cols // 2]
    return out


def keep_hidden(result: np.ndarray, stored: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``result`` ``(H, W, 3)`` with the colour ``stored`` under the fully transparent pixels of
    ``alpha`` ``(H, W)`` put back (in place): what :func:`fill_transparent` put there for a network
    was never the photo's, and a file keeps what it held where nothing shows (often black, which
    compresses to nothing). Returns ``result``."""
    np.copyto(result, np.asarray(stored, result.dtype), where=(np.asarray(alpha) <= 0)[:, :, None])
    return result


def _half_mean(x: np.ndarray) -> np.ndarray:
    """Means of 2x2 blocks of ``(H, W, ...)`` (an odd side padded with zeros, a weight of nothing)."""
    h, w = x.shape[:2]
    if h % 2 or w % 2:
        x = np.pad(x, [(0, h % 2), (0, w % 2)] + [(0, 0)] * (x.ndim - 2))
    return x.reshape(x.shape[0] // 2, 2, x.shape[1] // 2, 2, *x.shape[2:]).mean(axis=(1, 3))


def opaque_for(
    path: str | os.PathLike[str], pixels: np.ndarray, alpha: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(pixels, alpha)`` as the format of ``path`` holds them: JPEG and BMP hold no transparency, so
    there a transparent photo is flattened onto white (what it shows, not the colour stored under its
    transparent pixels), with a warning naming ``path``, and the alpha is None; elsewhere as given."""
    fmt = photo_format(path)
    if fmt not in ("JPEG", "BMP"):
        return pixels, alpha
    if has_transparency(alpha):
        _log.warning("%s: %s holds no transparency; the photo is flattened onto white", path, fmt)
        pixels = flatten_alpha(pixels, alpha)  # type: ignore[arg-type]
    return pixels, None


def has_transparency(alpha: np.ndarray | None) -> bool:
    """Whether an alpha plane (float in [0, 1], as :class:`Photo` holds it) makes any pixel less than
    opaque: an RGBA file whose every pixel is opaque has none to lose or flatten."""
    return alpha is not None and float(alpha.min(initial=1.0)) < 1.0


def to_uint8(frame: np.ndarray) -> np.ndarray:
    """A float ``(H, W, 3)`` image in [0, 1] as uint8 (clipped, rounded; NaN -> 0): what every video
    format stores. :func:`write_video` takes such frames as they are, at a quarter of the memory.
    uint8 comes back as it is; other integer types are a ValueError (uint16 1000 read as white)."""
    values = np.asarray(frame)
    if values.dtype != np.uint8 and values.dtype.kind != "f":
        raise ValueError(f"expected a float image in [0, 1] or uint8, got {values.dtype}")
    return _quantize(values, 8)


# Full-size conversions work in bands of rows of about this many array elements (16 MB of float32):
# their temporaries stay small whatever the photo's size, and each element gets the same arithmetic.
_BAND_ELEMENTS = 1 << 22


def _band_rows(values: np.ndarray) -> int:
    """How many rows (first axis) of ``values`` make a band of about ``_BAND_ELEMENTS`` elements."""
    row = int(np.prod(values.shape[1:], dtype=np.int64)) if values.ndim > 1 else 1
    return max(1, _BAND_ELEMENTS // max(1, row))


def _quantize(values: np.ndarray, bits: int, out: np.ndarray | None = None) -> np.ndarray:
    """Float [0, 1] -> uint8/uint16 with clipping and round-to-nearest (NaN -> 0); uint8 passes through
    (widened exactly for 16 bits).

    Floats are converted in bands of rows, so the temporaries are a band's, not the image's: the result
    is the same, byte for byte, as converting all at once. ``out``: an array of the result's shape and
    dtype (say, a slice of a larger one) to write into instead of a new one; it is returned.
    """
    values = np.asarray(values)
    dtype = np.uint8 if bits == 8 else np.uint16
    if values.dtype == np.uint8:
        result = values if bits == 8 else values.astype(np.uint16) * 257
        if out is None:
            return result
        out[...] = result
        return out
    if out is None:
        out = np.empty(values.shape, dtype)
    elif out.shape != values.shape or out.dtype != dtype:
        raise ValueError(f"out must be {dtype.__name__} of shape {values.shape}, got {out.dtype} {out.shape}")
    if values.ndim == 0:
        out[...] = _quantize_band(values, bits)
        return out
    rows = _band_rows(values)
    for r0 in range(0, values.shape[0], rows):
        out[r0 : r0 + rows] = _quantize_band(values[r0 : r0 + rows], bits)
    return out


def _quantize_band(values: np.ndarray, bits: int) -> np.ndarray:
    """:func:`_quantize` of float (or other non-uint8) ``values``, all at once."""
    top = 255.0 if bits == 8 else 65535.0
    clean = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    scaled = np.rint(np.clip(clean, 0.0, 1.0) * np.float32(top))
    return scaled.astype(np.uint8 if bits == 8 else np.uint16)


def _icc_colour_space(icc: bytes) -> bytes | None:
    return icc[16:20] if len(icc) >= 128 and icc[36:40] == b"acsp" else None


def _icc_for(icc: bytes | None, grey: bool) -> bytes | None:
    """The profile if it fits the output's colour space (GRAY for grey, RGB otherwise), else None."""
    if not icc:
        return None
    return icc if _icc_colour_space(icc) == (b"GRAY" if grey else b"RGB ") else None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _tiff_exif(exif: bytes) -> Image.Exif:
    """EXIF prepared for a TIFF's IFD0: layout tags dropped, sub-IFDs loaded."""
    parsed = Image.Exif()
    parsed.load(exif)
    for tag in list(parsed):
        if tag in _TIFF_LAYOUT_TAGS:
            del parsed[tag]
    if _ORIENTATION_TAG in parsed:
        parsed[_ORIENTATION_TAG] = 1
    sub = parsed.get_ifd(_EXIF_IFD_TAG)
    if _INTEROP_IFD_TAG in sub and not isinstance(sub[_INTEROP_IFD_TAG], dict):
        sub[_INTEROP_IFD_TAG] = parsed.get_ifd(_INTEROP_IFD_TAG)
    return parsed


def _png_chunk(fh: IO[bytes], kind: bytes, payload: bytes | bytearray | memoryview) -> None:
    fh.write(struct.pack(">I", len(payload)))
    fh.write(kind)
    fh.write(payload)
    fh.write(struct.pack(">I", zlib.crc32(payload, zlib.crc32(kind)) & 0xFFFFFFFF))


def _encode_png16(
    fh: IO[bytes],
    values: np.ndarray,
    icc: bytes | None,
    exif: bytes | None,
    xmp: bytes | None = None,
    dpi: tuple[float, float] | None = None,
    colour: tuple[tuple[bytes, bytes], ...] | None = None,
    text: tuple[tuple[bytes, bytes], ...] | None = None,
) -> None:
    """Write uint16 ``(H, W, C)`` (C = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA) as a 16-bit PNG
    (``colour``: gAMA / cHRM chunks to write, ``text``: text chunks; type and payload each)."""
    height, width, channels = values.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    fh.write(_PNG_SIGNATURE)
    _png_chunk(fh, b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0))
    if icc is not None:
        _png_chunk(fh, b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc))
    for kind, payload in colour or ():
        _png_chunk(fh, kind, payload)
    if exif is not None:
        _png_chunk(fh, b"eXIf", exif[len(_EXIF_HEADER) :] if exif.startswith(_EXIF_HEADER) else exif)
    if dpi is not None:  # pixels per metre
        _png_chunk(fh, b"pHYs", struct.pack(">IIB", round(dpi[0] / 0.0254), round(dpi[1] / 0.0254), 1))
    if xmp is not None:  # iTXt: keyword, uncompressed, no language tag, no translated keyword
        _png_chunk(fh, b"iTXt", _PNG_XMP_KEY.encode() + b"\0\0\0\0\0" + xmp)
    for kind, payload in text or ():
        _png_chunk(fh, kind, payload)
    rows = np.ascontiguousarray(values, dtype=">u2").view(np.uint8).reshape(height, width * channels * 2)
    compressor = zlib.compressobj(6)
    pending = bytearray()
    chunk_size = 1 << 20
    block = max(1, (4 << 20) // rows.shape[1])
    for start in range(0, height, block):
        prior = rows[start - 1] if start else None
        filtered = _png_filter(rows[start : start + block], prior, channels * 2)
        pending += compressor.compress(filtered)
        while len(pending) >= chunk_size:
            _png_chunk(fh, b"IDAT", memoryview(pending)[:chunk_size])
            del pending[:chunk_size]
    pending += compressor.flush()
    for offset in range(0, len(pending), chunk_size):
        _png_chunk(fh, b"IDAT", memoryview(pending)[offset : offset + chunk_size])
    _png_chunk(fh, b"IEND", b"")


def _png_filter(rows: np.ndarray, prior: np.ndarray | None, bpp: int) -> bytes:
    """PNG-filter a block of rows, choosing per row the filter with the smallest sum of |residual|."""
    x = rows.astype(np.int16)
    b = np.empty_like(x)  # the byte above
    b[0] = 0 if prior is None else prior
    b[1:] = x[:-1]
    a = np.zeros_like(x)  # the byte to the left (one pixel back)
    a[:, bpp:] = x[:, :-bpp]
    c = np.zeros_like(x)  # the byte above-left
    c[:, bpp:] = b[:, :-bpp]
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    candidates = np.stack([x, x - a, x - b, x - ((a + b) >> 1), x - paeth]).astype(np.uint8)
    cost = np.abs(candidates.view(np.int8).astype(np.int32)).sum(axis=2)
    choice = cost.argmin(axis=0)
    out = np.empty((rows.shape[0], rows.shape[1] + 1), dtype=np.uint8)
    out[:, 0] = choice
    out[:, 1:] = candidates[choice, np.arange(rows.shape[0])]
    return out.tobytes()


def _encode_tiff16(
    fh: IO[bytes],
    values: np.ndarray,
    icc: bytes | None,
    exif: bytes | None,
    xmp: bytes | None = None,
    dpi: tuple[float, float] | None = None,
    compression: str | None = None,
) -> None:
    """Write uint16 ``(H, W, C)`` as a little-endian baseline TIFF (strips, chunky): uncompressed, or
    with ``compression`` (any name) Deflate-compressed strips with the horizontal predictor."""
    height, width, channels = values.shape
    row_bytes = width * channels * 2
    rows_per_strip = max(1, min(height, (256 << 10) // row_bytes))
    strips = math.ceil(height / rows_per_strip)
    pixels = np.ascontiguousarray(values, dtype="<u2")

    def strip(i: int) -> bytes:
        rows = pixels[i * rows_per_strip : (i + 1) * rows_per_strip]
        if compression is None:
            return rows.tobytes()
        diff = rows.copy()  # predictor 2: each sample minus its left neighbour's (mod 2^16), then zlib
        diff[:, 1:] -= rows[:, :-1]
        return zlib.compress(diff.tobytes(), 6)

    # uncompressed strips are made while writing (their sizes are known): no second copy of the pixels
    data: list[bytes] | None = None if compression is None else [strip(i) for i in range(strips)]
    if data is not None:
        counts = [len(d) for d in data]
    else:
        counts = [pixels[i * rows_per_strip : (i + 1) * rows_per_strip].nbytes for i in range(strips)]
    offsets = [0, *itertools.accumulate(counts[:-1])]
    ifd = TiffImagePlugin.ImageFileDirectory_v2(prefix=b"II")
    if exif is not None:
        info = _tiff_exif(exif)
        for key in info:
            ifd[key] = info.get_ifd(key) if key in TiffTags.TAGS_V2_GROUPS else info[key]

    def put(tag: int, typ: int, value: Any) -> None:
        ifd.tagtype[tag] = typ
        ifd[tag] = value

    put(256, TiffTags.LONG, width)
    put(257, TiffTags.LONG, height)
    put(258, TiffTags.SHORT, (16,) * channels)
    put(259, TiffTags.SHORT, 1 if compression is None else 8)  # none / Adobe Deflate
    if compression is not None:
        put(317, TiffTags.SHORT, 2)  # horizontal differencing
    put(262, TiffTags.SHORT, 2 if channels >= 3 else 1)  # RGB / BlackIsZero
    # StripOffsets are relative to the pixel data: ImageFileDirectory_v2 adds the end of the IFD.
    put(273, TiffTags.LONG, tuple(int(o) for o in offsets))
    put(277, TiffTags.SHORT, channels)
    put(278, TiffTags.LONG, rows_per_strip)
    put(279, TiffTags.LONG, tuple(counts))
    put(284, TiffTags.SHORT, 1)  # chunky
    if channels in (2, 4):
        put(338, TiffTags.SHORT, 2)  # unassociated alpha
    put(339, TiffTags.SHORT, (1,) * channels)  # unsigned integers
    if dpi is not None or 282 not in ifd or 283 not in ifd:
        put(282, TiffTags.RATIONAL, float(dpi[0]) if dpi else 72.0)
        put(283, TiffTags.RATIONAL, float(dpi[1]) if dpi else 72.0)
        put(296, TiffTags.SHORT, 2)  # inches
    if icc is not None:
        put(34675, TiffTags.UNDEFINED, icc)
    if xmp is not None:
        put(_XMP_TAG, TiffTags.BYTE, xmp)
    fh.write(b"II*\x00" + struct.pack("<I", 8))
    fh.write(ifd.tobytes(8))
    for i in range(strips):
        fh.write(data[i] if data is not None else strip(i))


# --------------------------------------------------------------------------------------------------
# Writing videos


def write_video(
    path: str | os.PathLike[str],
    frames: Sequence[np.ndarray],
    *,
    fps: float = 12.0,
    loop: bool = True,
    quality: int = 90,
    icc: bytes | None = None,
    replace: bool = True,
) -> Path:
    """Write ``frames`` (``(H, W, 3)``, float in [0, 1] or uint8, one size) as the video :func:`video_kind`
    names. Every format stores 8 bits per channel. ``replace=False``: a target that exists when the
    frames are ready (another run wrote it meanwhile; an empty folder does not count) is left as it is:
    :class:`OutputExists`.

    * GIF: one adaptive 256-colour palette shared by all frames (no flicker), a fixed ordered
      dither pattern against banding; loops forever when ``loop`` else plays once; frame times are
      rounded to GIF's 10 ms steps without drifting from ``fps`` up to 50 fps (GIF's limit: above
      it, frames last 20 ms and a warning says so). ``quality`` is unused.
    * WebP: animated, lossy at ``quality`` (lossless at 100); loops forever or plays once; frames
      last 11 ms at least (above 90 fps a warning says so).
    * MP4: H.264 (libx264, yuv420p, BT.709 tags, faststart) by the bundled ffmpeg, ``quality``
      mapped to CRF (90 -> 18); odd sizes are padded to even by repeating the edge. Always plays once
      (``loop`` is for the player).
    * frames: a folder of ``frame_0001.png`` ..., each marked as blurvid's (a PNG ``Software`` text
      chunk). An existing folder is replaced only when it is empty or holds nothing but such frames:
      frames another program wrote are refused.

    ``icc``: the ICC profile the frames' values are in (the photo's); no video format here carries one,
    so frames in another RGB space than sRGB (Display P3, Adobe RGB) are converted to sRGB.

    Identical consecutive frames may be merged by the GIF/WebP encoders (durations add up).
    Atomic like :func:`write_photo` (temporary file or folder in the destination folder, then a rename).

    Raises:
        PhotoError: unknown suffix, destination unusable, ffmpeg failure.
        ValueError: no frames, frames of different or wrong shapes, fps not positive.
    """
    p = Path(path)
    kind = video_kind(path)
    clips = list(frames)
    if not clips:
        raise ValueError("write_video needs at least one frame")
    shape = np.shape(clips[0])
    for frame in clips:
        if np.ndim(frame) != 3 or np.shape(frame)[2] != 3 or np.shape(frame) != shape:
            raise ValueError(f"frames must be (H, W, 3) arrays of one size; got {np.shape(frame)} vs {shape}")
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be positive, got {fps}")
    check_video_size(p, shape[0], shape[1])
    for frame in clips:  # 16-bit or integer frames would all read as white (>= 1 after clipping)
        dtype = np.asarray(frame).dtype
        if dtype != np.uint8 and dtype.kind != "f":
            raise ValueError(f"frames must be uint8 or float in [0, 1], got {dtype}")
    limit = {"gif": GIF_MAX_FPS, "webp": WEBP_MAX_FPS}.get(kind)
    if limit is not None and fps > limit:
        other = "use .mp4" if kind == "webp" else "use .mp4, or .webp up to 90 fps"
        _log.warning(
            "%s: a %s plays at most %.0f frames per second; %g fps plays slower (%s)",
            p,
            kind.upper() if kind == "gif" else "WebP",
            math.floor(limit),
            fps,
            other,
        )
    convert = _srgb_converter(icc)
    if convert is not None:
        clips = [np.asarray(convert(Image.fromarray(f))) for f in _frames_uint8(clips)]
    if kind == "frames":
        _write_frame_folder(p, clips, replace)
        return p
    if p.is_dir():
        raise PhotoError(p, "is a directory")
    if kind == "gif":
        _atomic_write(p, lambda tmp: _encode_gif(tmp, clips, fps, loop), replace)
    elif kind == "webp":
        _atomic_write(p, lambda tmp: _encode_webp(tmp, clips, fps, loop, quality), replace)
    else:
        _atomic_write(p, lambda tmp: _encode_mp4(p, tmp, clips, fps, quality), replace)
    return p


def _frames_uint8(frames: Sequence[np.ndarray]) -> Iterator[np.ndarray]:
    for frame in frames:
        yield _quantize(np.asarray(frame), 8)


def _durations(count: int, fps: float, step: int, minimum: int) -> list[int]:
    """Per-frame durations in ms, multiples of ``step``, whose running sum tracks ``i * 1000 / fps``."""
    ends = [max(minimum * (i + 1), round((i + 1) * 1000.0 / fps / step) * step) for i in range(count)]
    durations = [ends[0]] + [max(minimum, ends[i] - ends[i - 1]) for i in range(1, count)]
    return [int(d) for d in durations]


# 4x4 Bayer matrix centred on zero. GIF frames get this fixed ordered-dither pattern (amplitude 6
# levels) before they are mapped to the shared palette without error diffusion. Measured on a
# synthetic 6-frame clip: Floyd-Steinberg changes ~27% of the *static* pixels from frame to frame
# (shimmer), this changes none, and still beats no dithering on blurred (perceived) error.
# Palette and amplitude were chosen on `animate` clips of the four examples at 320 px (session 21,
# benchmarks/gif_palette.py): the median-cut palette with amplitude 12 gave mean |error| 3.5-4.3,
# 3x3-blurred 1.7-2.3, max 60-70 (near-white highlights turned yellow: median cut averages them into
# one box with paler colours); a fast-octree palette with amplitude 6 gives 2.8-3.3, 1.6-2.0, max
# 16-40, and files 24-40 % smaller.
_BAYER = np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]], np.float32) / 16 - 15 / 32
_DITHER_AMPLITUDE = 6.0
# Pillow maps a colour to a palette entry through a lookup at 6 bits per channel: 4k..4k+3 all look up
# as 4k, which darkened every GIF by ~1.5 levels (0-255). Adding half a cell centres the lookup
# (session 27, benchmarks/gif_palette.py: bias -1.4 -> ~0, mean |error| lower on every example).
_PALETTE_CELL_CENTRE = 1.5
GIF_MAX_FPS = 50.0  # GIF frame delays below 20 ms are shown as 100 ms by browsers
# animated WebP frames last whole milliseconds, and players that copy Chrome show 10 ms or less as 100 ms
WEBP_MIN_FRAME_MS = 11
WEBP_MAX_FPS = 1000 / WEBP_MIN_FRAME_MS


def _encode_gif(tmp: Path, frames: Sequence[np.ndarray], fps: float, loop: bool) -> None:
    frames8 = list(_frames_uint8(frames))
    height, width = frames8[0].shape[:2]
    # One palette for all frames, from a sample of every frame (at most ~1 M pixels in all).
    step = max(1, int(math.sqrt(height * width * len(frames8) / 1_000_000)))
    sample = np.concatenate([f[::step, ::step] for f in frames8], axis=0)
    palette = Image.fromarray(sample).quantize(
        colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
    )
    pattern = (
        _PALETTE_CELL_CENTRE
        + np.tile(_BAYER * _DITHER_AMPLITUDE, (height // 4 + 1, width // 4 + 1))[:height, :width, None]
    )
    images = []
    for f in frames8:
        dithered = np.clip(np.rint(f.astype(np.float32) + pattern), 0, 255).astype(np.uint8)
        images.append(Image.fromarray(dithered).quantize(palette=palette, dither=Image.Dither.NONE))
    options: dict[str, Any] = {
        "save_all": True,
        "append_images": images[1:],
        "duration": _durations(len(images), fps, step=10, minimum=round(1000 / GIF_MAX_FPS)),
        "optimize": False,
        "disposal": 1,
        "palette": palette.getpalette(),  # one global colour table, not a copy of it in every frame
    }
    if loop:
        options["loop"] = 0
    images[0].save(tmp, format="GIF", **options)


def _encode_webp(tmp: Path, frames: Sequence[np.ndarray], fps: float, loop: bool, quality: int) -> None:
    images = [Image.fromarray(f) for f in _frames_uint8(frames)]
    lossless = quality >= 100
    images[0].save(
        tmp,
        format="WEBP",
        save_all=True,
        append_images=images[1:],
        duration=_durations(len(images), fps, step=1, minimum=WEBP_MIN_FRAME_MS),
        loop=0 if loop else 1,
        lossless=lossless,
        quality=75 if lossless else int(quality),
        method=4,
    )


def _encode_mp4(target: Path, tmp: Path, frames: Sequence[np.ndarray], fps: float, quality: int) -> None:
    try:
        exe = _ffmpeg_exe()
    except Exception as exc:
        raise PhotoError(target, f"cannot write MP4: ffmpeg is not available ({_describe(exc)})") from exc
    height, width = np.shape(frames[0])[:2]
    pad_h, pad_w = height % 2, width % 2
    crf = int(min(51, max(0, round(12 + (100 - quality) * 0.6))))
    cmd = [
        exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width + pad_w}x{height + pad_h}",
        "-framerate", f"{fps:.6g}", "-i", "pipe:0",
        "-an", "-c:v", "libx264", "-preset", "medium", "-crf", str(crf),
        "-vf", "scale=out_color_matrix=bt709:out_range=tv:flags=bicubic+accurate_rnd+full_chroma_int,"
        "format=yuv420p,setparams=range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709",
        "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-f", "mp4", _ffmpeg_file_url(tmp),
    ]  # fmt: skip
    with tempfile.TemporaryFile() as errors:
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors)
        except OSError as exc:
            raise PhotoError(target, f"cannot run ffmpeg ({_os_reason(exc)})") from exc
        assert proc.stdin is not None
        try:
            for f in _frames_uint8(frames):
                if pad_h or pad_w:
                    f = np.pad(f, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
                proc.stdin.write(np.ascontiguousarray(f).data)  # the frame's own bytes, not a copy
            proc.stdin.close()
            code = proc.wait(timeout=_FFMPEG_TIMEOUT_S)
        except OSError as exc:  # ffmpeg stopped early (Windows: EINVAL, not EPIPE): its stderr says why
            if not isinstance(exc, BrokenPipeError) and exc.errno not in (errno.EPIPE, errno.EINVAL):
                proc.kill()
                proc.wait()
                raise
            with contextlib.suppress(OSError):
                proc.stdin.close()
            code = proc.wait(timeout=_FFMPEG_TIMEOUT_S)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if code != 0:
            errors.seek(0)
            text = errors.read().decode("utf-8", "replace").strip().splitlines()
            # under -loglevel error every line is an error and the first is the cause (the last is often
            # only "nothing was written"), less its "[libx264 @ 0x55...] " prefix
            first = next((t.strip() for t in text if t.strip()), f"exit status {code}")
            cause = re.sub(r"^\[[^\]]*@ (?:0x)?[0-9a-fA-F]+\]\s*", "", first)  # Windows: no 0x
            raise PhotoError(target, f"ffmpeg could not encode the MP4 ({cause})")


def is_frame_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is named like a frame :func:`write_video` writes (``frame_0001.png`` ...)."""
    return _FRAME_NAME.fullmatch(Path(path).name) is not None


# what file browsers leave in a folder someone looked at: not content (Finder, macOS on FAT/exFAT/SMB
# drives, Windows Explorer)
_BROWSER_FILES = re.compile(r"\.DS_Store|\._.*|Thumbs\.db|desktop\.ini", re.IGNORECASE)


def folder_content(folder: Path) -> list[Path]:
    """The entries of ``folder`` less the file browsers' own files (:data:`_BROWSER_FILES`)."""
    return [e for e in folder.iterdir() if not _BROWSER_FILES.fullmatch(e.name)]


def is_frame_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a non-empty folder of nothing but frames :func:`write_video` wrote (which
    it replaces): ``frame_*.png`` files marked as blurvid's (:func:`_is_own_frame`), beside which only
    a file browser's own files (``.DS_Store``, ``Thumbs.db``...) may lie. Frames extracted by another
    program (``ffmpeg -i clip.mp4 frame_%04d.png``) are the user's, not blurvid's."""
    p = Path(path)
    try:
        names = folder_content(p) if p.is_dir() else []
    except OSError:
        return False
    return bool(names) and all(is_frame_file(e) and e.is_file() and _is_own_frame(e) for e in names)


_FRAME_MARK = ("Software", "blurvid")  # a PNG text chunk in every frame write_video writes


def _is_own_frame(path: Path) -> bool:
    """Whether the PNG at ``path`` carries :data:`_FRAME_MARK` (reads its header chunks only)."""
    try:
        with Image.open(path) as im:
            return im.format == "PNG" and im.info.get(_FRAME_MARK[0], "") == _FRAME_MARK[1]
    except (OSError, UnidentifiedImageError, ValueError):
        return False


def _write_frame_folder(p: Path, frames: Sequence[np.ndarray], replace: bool = True) -> None:
    if p.exists() and not p.is_dir():
        raise PhotoError(p, "exists and is not a folder (PNG frames need a folder)")
    if not replace and p.is_dir() and folder_content(p):
        raise OutputExists(p, "exists; left as it is")
    if p.is_dir():
        try:
            entries = sorted(folder_content(p))  # a Finder's .DS_Store goes with the old frames
        except OSError as exc:
            raise PhotoError(p, f"cannot list folder ({_os_reason(exc)})") from exc
        others = [e.name for e in entries if not (is_frame_file(e) and e.is_file())]
        if others:
            raise PhotoError(
                p, f"folder is not empty (holds {others[0]!r}, not only frame_*.png); not replacing it"
            )
        foreign = next((e.name for e in entries if not _is_own_frame(e)), None)
        if foreign is not None:  # e.g. frames the user extracted from a video with ffmpeg
            raise PhotoError(p, f"folder holds {foreign!r}, which blurvid did not write; not replacing it")
    parent = p.absolute().parent
    _make_folder(p, parent)
    _sweep_stale(parent)
    stage = fsutil.temp_name(parent / p.name)
    digits = max(4, len(str(len(frames))))
    mark = PngImagePlugin.PngInfo()
    mark.add_text(*_FRAME_MARK)
    with _staged_folder(p, stage):
        for i, f in enumerate(_frames_uint8(frames), start=1):
            Image.fromarray(f).save(stage / f"frame_{i:0{digits}d}.png", format="PNG", pnginfo=mark)
        if not replace:
            _publish_new_folder(stage, p)
        elif p.is_dir():
            old = stage.with_suffix(".old")
            try:  # the first rename inside: a Ctrl-C just after it must still put the old frames back
                fsutil.replace(p, old)
                fsutil.replace(stage, p)
            except BaseException:
                with contextlib.suppress(OSError):
                    if old.is_dir() and not p.exists():
                        fsutil.replace(old, p)
                raise
            finally:  # the old frames, once the folder holds others (this call's or another run's)
                if old.is_dir() and p.is_dir():
                    shutil.rmtree(old, ignore_errors=True)
        else:
            fsutil.replace(stage, p)


def _publish_new_folder(stage: Path, p: Path) -> None:
    """Rename the finished folder ``stage`` to ``p``, which may be missing or an empty folder, not one
    that another run filled meanwhile (:class:`OutputExists`)."""
    with contextlib.suppress(OSError):  # Windows renames onto nothing but a missing name
        if p.is_dir() and not folder_content(p):
            # only a file browser's files: frames another run put there meanwhile stay
            for e in p.iterdir():
                if _BROWSER_FILES.fullmatch(e.name):
                    e.unlink()
            os.rmdir(p)  # fails, and leaves it, where another run has filled it meanwhile
    try:
        os.rename(stage, p)  # onto a folder with files it fails: ENOTEMPTY / EEXIST
    except OSError as exc:
        with contextlib.suppress(OSError):
            if p.is_dir() and folder_content(p):  # filled by another run: not a failure of this one
                raise OutputExists(p, _TAKEN) from exc
        raise


# --------------------------------------------------------------------------------------------------
# Helpers


_TAKEN = "appeared while this one was made (another run?); left as it is"


def _atomic_write(p: Path, write: Callable[[Path], None], replace: bool = True) -> None:
    """Call ``write(tmp)`` on a hidden file beside ``p`` with p's suffix, then rename it to ``p``
    (``replace=False``: link it there, which fails where ``p`` exists: :class:`OutputExists`), by
    :func:`fsutil.atomic_path`.

    On any failure the temporary file is removed and ``p`` is untouched; OSErrors become PhotoError.
    """
    if p.is_dir():
        raise PhotoError(p, "is a directory")
    parent = p.absolute().parent
    _make_folder(p, parent)
    _sweep_stale(parent)
    started = False
    try:
        with fsutil.atomic_path(
            parent / p.name, keep_suffix=True, publish=fsutil.replace if replace else _publish_new
        ) as tmp:
            started = True
            write(tmp)
    except OSError as exc:
        if not started:
            raise PhotoError(p, f"cannot write in folder {parent} ({_os_reason(exc)})") from exc
        raise PhotoError(p, f"cannot write ({_os_reason(exc)})") from exc


STALE_S = 24 * 3600.0  # a hidden temporary this old is a killed run's (SIGKILL, power loss), not a live one's


_SWEPT: set[str] = set()  # folders swept in this process: once each, not at every write (a folder run)


def _sweep_stale(parent: Path) -> None:
    """Remove the hidden temporaries in ``parent`` that a killed run left (``.<name>.<8 hex>.tmp...``
    files and folders, :data:`fsutil.TEMP_NAME`) once older than :data:`STALE_S`; a live run's are
    fresh. Not the ``.old`` folders of a frames swap: one in use (renamed aside a moment ago) can look
    old by its times (Windows' ctime is its creation), and a killed run leaves one only between two
    renames. Once per folder and process; best effort: errors are ignored."""
    key = str(parent)
    if key in _SWEPT:
        return
    _SWEPT.add(key)
    fsutil.sweep_stale(parent, STALE_S)


def _publish_new(tmp: Path, p: Path) -> None:
    """Rename the finished ``tmp`` to ``p`` unless ``p`` exists (:class:`OutputExists`): a hard link
    fails atomically where it does; where the file system has none (FAT, exFAT, some network drives),
    a check just before the rename is as close as it gets."""
    try:
        os.link(tmp, p)
    except FileExistsError:
        raise OutputExists(p, _TAKEN) from None
    except OSError:
        if os.path.lexists(p):
            raise OutputExists(p, _TAKEN) from None
        fsutil.replace(tmp, p)
        return
    with contextlib.suppress(OSError):  # the result is in place; a temporary name held open stays hidden
        os.unlink(tmp)


@contextlib.contextmanager
def _staged_folder(p: Path, stage: Path) -> Iterator[None]:
    """Make the hidden folder ``stage`` that becomes the frames folder ``p``, and run the ``with`` body;
    on any failure, a Ctrl-C just after the making too, remove ``stage`` (not when making it failed:
    whatever has that name is not this call's) and raise an OSError as PhotoError ``'cannot write
    frames (<reason>)'``. One try from the making on: a Ctrl-C between making the stage and a try that
    removes it left it behind (files: :func:`fsutil.atomic_path`)."""
    not_ours = False
    try:
        try:
            os.mkdir(stage)
        except OSError as exc:
            not_ours = True
            raise PhotoError(p, f"cannot write in folder {stage.parent} ({_os_reason(exc)})") from exc
        yield
    except BaseException as exc:
        if not not_ours:
            shutil.rmtree(stage, ignore_errors=True)
        if isinstance(exc, OSError):
            raise PhotoError(p, f"cannot write frames ({_os_reason(exc)})") from exc
        raise


def _make_folder(p: Path, parent: Path) -> None:
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PhotoError(p, f"cannot create folder {parent} ({_os_reason(exc)})") from exc


@cache
def _ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def _ffmpeg_file_url(p: Path) -> str:
    """An ffmpeg input/output name that no protocol, option or pattern syntax can misread."""
    return "file:" + str(p.absolute())


def _one_line(text: str) -> str:
    """``text`` with every line break (``\\n``, ``\\r``, U+2028, ...) turned into a space."""
    return " ".join(text.splitlines())


def _os_reason(exc: OSError) -> str:
    return exc.strerror or _describe(exc)


def _describe(exc: BaseException) -> str:
    text = _one_line(str(exc)).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
