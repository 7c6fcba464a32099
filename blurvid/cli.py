"""The ``blurvid`` command: arguments -> files -> pipeline -> files, with progress and clear messages.

No math lives here. Heavy imports (torch, the networks) happen inside the commands, so ``--help`` is fast.
User errors (bad files, missing weights, bad options) are one line on stderr and a non-zero exit code:
1 when some files failed, 2 for a usage / set-up problem (e.g. no trained checkpoint installed).
"""

from __future__ import annotations

import contextlib
import copy
import glob
import itertools
import logging
import math
import os
import re
import signal
import sys
import tempfile
import traceback
import unicodedata
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from . import __version__
from .text import first_few

if TYPE_CHECKING:  # heavy modules are imported inside the commands
    from .io import Unsupported
    from .models.deblur import DeblurNet
    from .pipeline import Animator, Deblurrer, ShakeRemover

app = typer.Typer(
    name="blurvid",
    help="Bring a motion-blurred photo alive: a sharp photo and a short video of the motion inside the exposure.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class _Output(Console):
    """stdout: when whatever reads it goes away (``blurvid deblur photos/ | head -1``), the rest of the
    output goes nowhere and the exit code still says how the work went (rich's own would exit 1)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


err = Console(stderr=True, highlight=False, soft_wrap=True)
out = _Output(highlight=False, soft_wrap=True)

# control characters in a file name (an escape sequence, a newline) are shown as \\x.., not sent to the
# terminal; so are the bytes of a name that is not UTF-8 (Python keeps them as lone surrogates)
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))} | {
    0xDC00 + b: f"\\x{b:02x}" for b in range(0x80, 0x100)
}


def printable(text: str) -> str:
    """``text`` with its control characters written as ``\\xNN``: one line, no terminal escape codes."""
    return text.translate(_CONTROL)


def flag(*names: str, **kw: Any) -> Any:
    """``typer.Option`` for an on/off flag, without the ``<bool>`` value column typer 0.29 shows in
    --help (it read as if a value followed: ``--overwrite true`` took 'true' for a photo)."""
    return typer.Option(*names, metavar="", **kw)


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


class Device(str, Enum):
    """``--device``: auto = CUDA when available, else the CPU."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Precision(str, Enum):
    """``--precision`` (see :func:`blurvid.pipeline.resolve_precision`)."""

    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


# ------------------------------------------------------------------ files --------------------------------
@dataclass
class Job:
    """One input file and where its result goes (``rel``: path below the input folder, for mirroring)."""

    src: Path
    rel: Path
    named: bool = False  # named by the user (not only found in a folder or by a pattern)
    expanded: bool = False  # found in a folder or by a pattern
    dst: Path | None = None
    result_like: bool = False  # named as blurvid names its results (collect_inputs' is_output)


@dataclass
class Report:
    """What a command did with its inputs, for the summary line and the exit code."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    own: list[Path] = field(default_factory=list)  # blurvid's earlier results found in a folder or glob
    # (file, kind label) of the photos in a folder or glob blurvid does not read: camera RAW, HEIC...
    unread: list[tuple[Path, Unsupported]] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.failed.append(message)
        print_error(message)


def print_error(message: str) -> None:
    """One ``error: ...`` line on stderr (the message's own brackets are not markup)."""
    err.print(f"[red]error[/red]: {escape(printable(message))}", markup=True)


def _is_glob(s: str) -> bool:
    return any(c in s for c in "*?[")


def own_output(path: Path, suffix: str = "_sharp") -> bool:
    """Whether ``path`` looks like one of blurvid's results: ``<name><suffix>.*`` (deblur), a
    ``<name>_motion.gif`` / ``.webp`` clip or a ``frame_NNNN.png`` in a ``<name>_motion`` folder (animate).
    A photo such as ``slow_motion.jpg`` is not one."""
    if suffix and path.stem.endswith(suffix):
        return True
    from .io import is_frame_file

    if path.stem.endswith("_motion") and path.suffix.lower() in (".gif", ".webp"):
        return True
    return path.parent.name.endswith("_motion") and is_frame_file(path)


def collect_inputs(
    paths: Iterable[str],
    recursive: bool,
    report: Report,
    is_output: Callable[[Path], bool] = lambda p: False,
    skip: Path | None = None,
) -> tuple[list[Job], bool]:
    """Expand files, folders (``recursive``: subfolders too) and globs into jobs.

    Returns (jobs, multi): ``multi`` is True when the inputs are a folder, a glob or several different
    files (then ``-o`` names a folder). Missing paths, broken links and folders that cannot be read are
    reported as failures. Files found by expanding a folder or glob for which ``is_output`` is true
    (blurvid's own earlier results) are left out and listed in ``report.own``; a file named explicitly
    is always processed. Hidden files and folders are skipped, and links to folders are not followed.
    A file reached twice (named twice, or by a folder and a glob) is processed once; when a folder or
    glob reaches it, its place below that folder decides where its result goes, whatever the order of
    the arguments. ``skip`` (the run's ``-o``): a folder not looked into when it lies below a folder
    or pattern given (an earlier run's results are there), though it is read when given itself.
    """

    found: dict[Path, Job] = {}  # resolved path -> its job, in the order first reached

    def add(f: Path, rel: Path, expanded: bool) -> None:
        job = found.setdefault(f.resolve(), Job(f, rel))
        if expanded and not job.expanded:  # a folder's (or pattern's) place wins over a flat one
            job.src, job.rel, job.expanded = f, rel, True
        job.named = job.named or not expanded

    groups = False
    asked: set[str] = set()  # the different paths given, missing ones too: two of them ask for a folder
    for raw in paths:
        asked.add(raw)
        try:
            p = Path(raw).expanduser()
            if p.exists():  # one photo named two ways is one photo
                asked.discard(raw)
                asked.add(str(p.resolve()))
            groups = _collect_one(raw, recursive, report, add, skip) or groups
        except PermissionError as e:  # a folder on the way, or one in a walked tree, may not be entered
            where = e.filename or raw
            report.fail(f"{where}: permission denied (check the permissions of it and the folders above it)")
        except (OSError, RuntimeError) as e:  # a name longer than the file system allows; ~nosuchuser
            report.fail(f"{raw}: {getattr(e, 'strerror', None) or e}")
    jobs = []
    for job in found.values():
        job.result_like = is_output(job.src)
        if not job.named and job.result_like:
            report.own.append(job.src)
        else:
            jobs.append(job)
    # a typo'd second photo must not turn `-o out/` into one photo's frames folder (or `-o x.jpg` into its file)
    return jobs, groups or len(found) > 1 or len(asked) > 1


def _below(path: Path, folder: Path | None) -> bool:
    """Whether ``path`` lies inside the existing ``folder`` (:func:`_inside`) and is not ``folder`` itself."""
    return folder is not None and _inside(path, folder) and not _same(path, folder)


def _folder_files(
    folder: Path, recursive: bool, report: Report, skip: Path | None = None
) -> list[Path] | None:
    """The files (and broken links) in ``folder`` (``recursive``: below it too), hidden ones and those
    in hidden folders left out, sorted; None when ``folder`` itself cannot be read. Each folder that
    cannot be read is reported as a failure (a glob would pass over it in silence). Links to folders
    are not followed; nor is ``skip`` (a folder below ``folder``: the run's ``-o``)."""
    files: list[Path] = []
    skip = skip if skip is not None and _below(skip, folder) else None
    failed: list[str] = []

    def unreadable(e: OSError) -> None:
        failed.append(e.filename)
        report.fail(f"{e.filename}: cannot read this folder: {e.strerror or e}")

    for top, dirs, names in os.walk(folder, onerror=unreadable):
        dirs[:] = (
            [d for d in dirs if not d.startswith(".") and not _same_folder(Path(top, d), skip)]
            if recursive
            else []
        )
        files.extend(Path(top, n) for n in names if not n.startswith("."))
    return None if str(folder) in failed else sorted(files)


def _same_folder(a: Path, b: Path | None) -> bool:
    """Whether ``a`` and ``b`` are one existing folder (False when ``b`` is None or either is missing)."""
    if b is None:
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _collect_one(
    raw: str,
    recursive: bool,
    report: Report,
    add: Callable[[Path, Path, bool], None],
    skip: Path | None = None,
) -> bool:
    """:func:`collect_inputs` for one argument; True when it is a folder or a glob (several inputs).
    A folder's or glob's files keep their path below the folder (the glob's part before its first
    wildcard), so that ``-o`` mirrors the tree."""
    from .io import IMAGE_SUFFIXES

    if not raw.strip():  # Path("") is the current folder: an unset shell variable must not process it
        report.fail(f"{raw!r}: an empty path (an unset variable in a script?); name a file or a folder")
        return False
    p = Path(raw).expanduser()
    if p.is_dir():
        found, unread, files = 0, [], _folder_files(p, recursive, report, skip)
        if files is None:
            return True
        for f in files:
            photo = f.suffix.lower() in IMAGE_SUFFIXES | _PHOTO_SUFFIXES
            if photo and not f.exists():
                report.fail(_broken_link(f))
            elif photo:
                add(f, f.relative_to(p), expanded=True)
                found += 1
            elif f.is_file():
                unread.append(f)
        unread_note = _note_unread(unread, report)
        if not found:  # a mistyped or wrong folder must not look like a successful run
            kinds = ", ".join(sorted(s[1:] for s in IMAGE_SUFFIXES | _PHOTO_SUFFIXES))
            deeper = not recursive and any(d.is_dir() and not d.name.startswith(".") for d in p.iterdir())
            deeper_hint = "; -r looks in its subfolders too" if deeper else ""
            report.fail(f"{raw}: no photos in this folder ({kinds}){unread_note}{deeper_hint}")
        return True
    if p.exists():
        add(p, Path(p.name), expanded=False)
        return False
    if p.is_symlink():
        report.fail(_broken_link(p, raw))
        return False
    if not _is_glob(raw):
        report.fail(f"{raw}: no such file or folder")
        return False
    pattern = os.path.expanduser(raw)
    if recursive and "**" not in pattern:
        logging.getLogger("blurvid").warning(
            "%s: -r does not reach into subfolders through a pattern; write ** for that (quoted: 'photos/**/*.jpg')",
            raw,
        )
    base = Path(
        *[part for part in itertools.takewhile(lambda q: not _is_glob(q), Path(pattern).parts)] or ["."]
    )
    pattern, base = _literal_folders(pattern, base)
    matches = sorted(Path(m) for m in glob.glob(pattern, recursive=recursive))
    if skip is not None and _below(skip, base):  # not below the run's -o, as in a folder
        matches = [m for m in matches if not _below(m, skip)]
    # a pattern is the user's own choice of files: it takes every format blurvid reads (GIF too)
    readable = IMAGE_SUFFIXES | _PHOTO_SUFFIXES | _READ_ONLY_SUFFIXES
    files = [m for m in matches if m.is_file() and m.suffix.lower() in readable]
    for m in matches:  # as in a folder: a link to nothing is a failure, not a silence
        if m.is_symlink() and not m.exists() and m.suffix.lower() in readable:
            report.fail(_broken_link(m))
    taken = set(files)
    unread_note = _note_unread([m for m in matches if m not in taken and m.is_file()], report)
    if not files:
        report.fail(f"{raw}: no image matches this pattern{unread_note}")
    for m in files:
        add(m, m.relative_to(base) if m.is_relative_to(base) else Path(m.name), expanded=True)
    return True


def _literal_folders(pattern: str, base: Path) -> tuple[str, Path]:
    """``pattern`` with its leading folders taken literally where they exist as written (a folder named
    ``[2024] Wedding``: ``[`` is a character class to glob, a name to the photographer, and no
    Windows user expects shell rules), and the folder the results mirror below; else as they were."""
    parts = Path(pattern).parts
    trailing = os.sep if pattern.endswith(("/", os.sep)) else ""  # 'x/*/': folders only
    for n in range(len(parts) - 1, 0, -1):  # the longest run of leading parts that is a folder
        folder = Path(*parts[:n])
        if "[" in str(folder) and folder.is_dir() and not any(c in str(folder) for c in "*?"):
            return os.path.join(glob.escape(str(folder)), *parts[n:]) + trailing, folder
    return pattern, base


def _broken_link(link: Path, shown: str | None = None) -> str:
    """The failure line for a link to nothing: ``'<link>: a broken link (what it points to, <target>, is
    missing)'`` (without the target where it cannot be read: the link went meanwhile)."""
    try:
        target = f", {os.readlink(link)},"
    except OSError:
        target = ""
    return f"{shown or link}: a broken link (what it points to{target} is missing)"


def _note_unread(files: Iterable[Path], report: Report) -> str:
    """Record the photo files among ``files`` that blurvid does not read (camera RAW, HEIC without a
    plugin... see :func:`blurvid.io.unsupported`) in ``report.unread``, for the summary; returns the
    clause an error about finding no photos adds, e.g. ``'; camera RAW files are not supported (3 found);
    export a TIFF ...'`` ('' when there are none)."""
    from .io import unsupported

    found: dict[Unsupported, int] = {}
    counted = {f for f, _ in report.unread}  # a file a folder and a pattern both reach counts once
    for f in files:
        kind = unsupported(f) if f not in counted else None
        if kind is not None:
            report.unread.append((f, kind))
            found[kind] = found.get(kind, 0) + 1
    return "".join(f"; {kind.what} ({n} found); {kind.hint}" for kind, n in found.items())


def plan_outputs(
    jobs: list[Job],
    output: Path | None,
    multi: bool,
    name: Callable[[Path], str],
    single_ok: Callable[[Path], bool],
) -> None:
    """Fill ``job.dst``: beside the input by default; inside ``output`` (mirroring the folder tree) when
    several inputs are given or ``output`` is a folder ``single_ok`` refuses; exactly ``output`` for one
    input and a path ``single_ok`` accepts (a file name; for animate also a folder of frames).

    Raises UserError when several inputs are given and ``output`` names a file (it has a suffix
    ``single_ok`` accepts and is no existing folder): the results need a folder; and when nothing can
    be written in ``output`` (no permission, or a file where a folder is needed).
    """
    try:
        _plan_outputs(jobs, output, multi or len(jobs) > 1, name, single_ok)
        if output is not None:  # one set-up line, not one per photo
            why = next((w for job in jobs if job.dst and (w := unwritable(job.dst))), None)
            if why is not None:
                raise UserError(f"-o {output}: cannot write there: {why}")
    except OSError as e:  # e.g. a name longer than the file system allows
        raise UserError(f"-o {output}: {e.strerror or e}") from None


def _plan_outputs(
    jobs: list[Job],
    output: Path | None,
    several: bool,
    name: Callable[[Path], str],
    single_ok: Callable[[Path], bool],
) -> None:
    if output is not None and output.suffix and not output.is_dir():
        try:
            names_file = single_ok(output)
        except UserError:  # not a file name single_ok knows: a folder name with a dot
            names_file = False
        # one photo and `-o x.jgp`: a mistyped file name far more often than a new folder's name
        typo = not several and not output.exists() and re.fullmatch(r"\.[A-Za-z]{2,4}", output.suffix)
        file_like = names_file or output.suffix.lower() in _FILE_LIKE or bool(typo)
        if file_like and several:
            raise UserError(f"-o {output}: several inputs need an output folder, not a file name")
        if file_like and not names_file:
            hint = (
                "; for a new folder, create it first"
                if typo and output.suffix.lower() not in _FILE_LIKE
                else ""
            )
            raise UserError(
                f"-o {output}: this command does not write {output.suffix} files (see --help){hint}"
            )
    for job in jobs:
        if output is None:
            job.dst = job.src.with_name(name(job.src))
        elif not several and single_ok(output):
            job.dst = output
        else:
            job.dst = output / job.rel.parent / name(job.src)


# formats blurvid reads but does not write (a folder run leaves them out: they are seldom photos)
_READ_ONLY_SUFFIXES = frozenset({".gif"})

# photo formats blurvid reads but does not write, which a folder run takes: a stereo camera's
# multi-picture JPEG (its first picture is the photo; the result is a JPEG, see _result_suffix)
_PHOTO_SUFFIXES = frozenset({".mpo"})

# suffixes of files, not folders: `-o x.gif` for one photo is a wrong format, not a folder named x.gif
_FILE_LIKE = frozenset(
    "." + e
    for e in "jpg jpeg png tif tiff webp bmp gif mp4 mov avi mkv heic heif avif jxl raw dng cr2 cr3 nef arw orf "
    "rw2 raf pef srw psd pdf txt jp2 j2k jxr tga exr hdr ppm pgm pnm svg ico eps xcf kra apng mpo "
    "3gp 3g2 m2ts mts mp4v h264 h265 m4v webm ogv wmv flv".split()
)


def _empty_folder(p: Path) -> bool:
    """An existing empty folder (a file browser's own files aside): a frames target to fill, not an
    output that exists."""
    from .io import folder_content

    return p.is_dir() and not folder_content(p)


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _inside(a: Path, folder: Path) -> bool:
    """Whether ``a`` lies inside the existing folder ``folder`` (at any depth)."""
    try:
        return folder.is_dir() and a.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False


# ------------------------------------------------------------------ progress -----------------------------
class Progress:
    """A rich progress bar over files with a transient per-tile bar; silent when ``quiet`` or when
    stderr is not a terminal (a log file would get only a stray blank line from the transient bar)."""

    def __init__(self, total: int, quiet: bool, label: str) -> None:
        self.quiet = quiet
        self.bar = None
        if not quiet and err.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self.bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            )
            self.files = self.bar.add_task(label, total=total)
            self.tiles = None

    def __enter__(self) -> Progress:
        if self.bar:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar:
            self.bar.__exit__(*exc)

    def file(self, path: Path) -> None:
        if self.bar:
            self.bar.update(self.files, description=escape(printable(path.name)))

    def advance(self) -> None:
        if self.bar:
            self.bar.advance(self.files)
            if self.tiles is not None:
                self.bar.remove_task(self.tiles)
                self.tiles = None

    def on_tile(self, done: int, total: int) -> None:
        if not self.bar or total <= 1:
            return
        if self.tiles is None:
            self.tiles = self.bar.add_task("  tiles", total=total)
        self.bar.update(self.tiles, completed=done, total=total)  # --shake: the total grows once


# ------------------------------------------------------------------ runtime ------------------------------
def _runtime(
    device: Device,
    precision: str,
    tile: int,
    need_video: bool,
    repo: str | None,
    shake: bool = False,
    shake_size: int | None = None,
) -> Deblurrer | ShakeRemover | Animator:
    """Load the networks once (a missing or bad checkpoint raises WeightsError, which main() prints as
    one line); ``shake``: the sharp photo comes from the camera-shake deconvolver instead of the DM
    (which then only judges whether there is blur to remove)."""
    from . import pipeline

    try:
        dev = pipeline.select_device(device.value)
        dtype = pipeline.resolve_precision(precision, dev)
        sharpener: Deblurrer | ShakeRemover
        if shake:
            dm = _judge(repo)
            judge = None if dm is None else pipeline.Deblurrer(dm, dev, dtype, tile=tile)
            sharpener = pipeline.ShakeRemover(dev, shake_size, tile=max(tile, 2048), judge=judge)
        else:
            sharpener = pipeline.Deblurrer(pipeline.load_model("dm", repo_id=repo), dev, dtype, tile=tile)
        if not need_video:
            return sharpener
        bie = pipeline.load_model("bie", repo_id=repo)
        rvd = pipeline.load_model("rvd", repo_id=repo)
        return pipeline.Animator(sharpener, bie, rvd, dtype=dtype)
    except ValueError as e:  # a checkpoint problem (WeightsError) is reported by main()
        raise UserError(str(e)) from None


def _result_suffix(src: Path) -> str:
    """The suffix of ``deblur``'s result for ``src`` when no --format is given: its own where blurvid
    writes that format; .jpg for a multi-picture JPEG (.mpo, from stereo cameras: its first picture is
    a JPEG); otherwise (GIF, PSD, no suffix) .png."""
    from .io import IMAGE_SUFFIXES

    own = src.suffix.lower()
    return src.suffix if own in IMAGE_SUFFIXES else ".jpg" if own in _PHOTO_SUFFIXES else ".png"


def _check_shake_size(shake: bool, shake_size: int | None) -> None:
    """``--shake-size`` tunes ``--shake``: given alone it would be ignored, so it is refused."""
    if shake_size is not None and not shake:
        raise UserError(f"--shake-size {shake_size} works with --shake only: add --shake, or leave it out")


def _memory_hint(shake: bool) -> str:
    """What to try when a photo runs out of memory: ``--shake``'s deconvolution tiles are 2048 px or more
    (larger for longer blur), so ``--tile`` bounds only its network check."""
    return "a smaller --shake-size, or a smaller copy of the photo" if shake else "a smaller --tile"


def _judge(repo: str | None) -> DeblurNet | None:
    """The DM with which ``--shake`` checks a photo for blur first; ``--shake`` also works without any
    checkpoint: then it deconvolves every photo, and says so once."""
    from .pipeline import load_model
    from .weights import WeightsError

    try:
        return load_model("dm", repo_id=repo)
    except WeightsError as e:
        logging.getLogger("blurvid").warning(
            "%s; --shake goes on without the network's check for blur (it deconvolves sharp photos too)", e
        )
        return None


def _run_jobs(
    jobs: list[Job],
    report: Report,
    overwrite: bool,
    quiet: bool,
    label: str,
    work: Callable[[Job, Progress], None],
    memory_hint: str = "a smaller --tile",
) -> None:
    todo = []
    claimed: dict[str, Job] = {}  # output, case folded -> the job that writes it in this run
    # inputs that are another input's output (keys as the file system tells names apart)
    makers = {_output_key(job.dst) for job in jobs if job.dst is not None and not _same(job.src, job.dst)}
    keys = {id(job): _output_key(job.src) for job in jobs}
    # named as blurvid names results (`blurvid deblur *.jpg` after a first run): that input's result, left
    # out, and never replaced when the user named it (found ones were left out by collect_inputs, and
    # their makers redo them with --overwrite)
    left_out = {keys[id(job)] for job in jobs if job.result_like and keys[id(job)] in makers}
    named_results = {keys[id(job)] for job in jobs if job.named and keys[id(job)] in left_out}
    # named otherwise (`a.png` beside `a.jpg` with --suffix '' --format png): maybe the user's own
    # photo, never overwritten
    photos = {keys[id(job)] for job in jobs if not job.result_like and keys[id(job)] in makers}
    for job in jobs:
        try:
            ready = _check_job(job, report, overwrite, (left_out, named_results, photos), claimed, label)
        except OSError as e:  # e.g. an output name longer than the file system allows
            report.fail(f"{job.src}: cannot write {job.dst}: {e.strerror or e}")
            continue
        if ready:
            todo.append(job)
    try:
        _work_through(todo, report, quiet, label, work, memory_hint)
    except _Stopped:
        if not quiet:  # the stop line itself comes from main(); say what was already done
            err.print(f"{len(report.written)} of {len(todo)} written before the stop")
        raise


# where the usual file systems fold case (macOS, Windows), x_sharp.JPG and x_sharp.jpg are one file
CASE_INSENSITIVE = sys.platform in ("darwin", "win32")
# APFS also takes a name's two Unicode spellings (é, and e + combining accent) as one
UNICODE_FOLDS = sys.platform == "darwin"


def _output_key(dst: Path) -> str:
    """``dst`` as the file system tells names apart (case and, on macOS, Unicode spelling folded
    where it does: ``lower``, one character for one, as their case tables do)."""
    key = str(dst.resolve())
    if UNICODE_FOLDS:
        key = unicodedata.normalize("NFC", key)
    return key.lower() if CASE_INSENSITIVE else key


def _check_job(
    job: Job,
    report: Report,
    overwrite: bool,
    inputs: tuple[set[str], set[str], set[str]],
    claimed: dict[str, Job],
    command: str,
) -> bool:
    """Whether ``job`` is to run; if not, it is recorded in ``report`` (left out, skipped or failed).
    ``inputs``: which inputs are other inputs' outputs (:func:`_output_key`), as three sets: those
    left out as their results, those of them named by the user, and photos never overwritten."""
    assert job.dst is not None
    left_out, named_results, photos = inputs
    if _output_key(job.src) in left_out:
        report.own.append(job.src)
        return False
    dst = _output_key(job.dst)
    first = claimed.setdefault(dst, job)
    if _same(job.src, job.dst) or _inside(job.src, job.dst):  # the latter: a folder of frames replaced
        choose = "-o or --suffix" if command == "deblur" else "-o"  # animate names its results itself
        report.fail(f"{job.src}: the output would overwrite the input; choose another {choose}")
    elif first is not job:
        flat = not (job.expanded or first.expanded) and not _same(job.src.parent, first.src.parent)
        hint = "give it a run of its own, with another -o"
        if flat:  # files the shell expanded from several folders: a quoted pattern keeps their folders
            hint = (
                f"quote the pattern (e.g. '*/*{job.src.suffix}'), so that -o mirrors their folders, or {hint}"
            )
        report.fail(f"{job.src}: same output {job.dst} as {first.src}; {hint}")
    elif dst in photos:
        choose = "--suffix or -o" if command == "deblur" else "-o"
        report.fail(
            f"{job.src}: its output {job.dst} is also an input of this run, and not named as blurvid's "
            f"results are; not overwriting it (choose another {choose})"
        )
    elif job.dst.exists() and not _empty_folder(job.dst) and not overwrite:
        report.skipped.append(job.dst)
    elif dst in named_results:
        report.fail(
            f"{job.src}: its output {job.dst} is named as an input; not overwriting it (to redo results, "
            f"give the folder or quote the pattern: blurvid {command} '*.jpg' --overwrite)"
        )
    elif (why := unwritable(job.dst)) is not None:  # say so now, not after minutes of work
        report.fail(f"{job.src}: cannot write {job.dst}: {why}")
    else:
        return True
    return False


def unwritable(dst: Path) -> str | None:
    """Why nothing can be written at ``dst``, judged by its nearest existing folder, or None."""
    folder = dst.parent
    while not folder.exists() and folder != folder.parent:  # missing folders are made on writing
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"no permission to write into {folder}"
    key = str(folder)
    if key not in _PROBED:  # once per folder and command, not per photo
        try:  # os.access sees neither Windows' ACLs and Controlled Folder Access nor macOS's privacy rules
            with tempfile.TemporaryFile(dir=folder):
                pass
            _PROBED[key] = None
        except OSError as e:
            _PROBED[key] = f"cannot write into {folder} ({e.strerror or e})"
    return _PROBED[key]


_PROBED: dict[str, str | None] = {}  # folder -> why a file cannot be made in it (None: it can), per command


def _work_through(
    todo: list[Job],
    report: Report,
    quiet: bool,
    label: str,
    work: Callable[[Job, Progress], None],
    memory_hint: str = "a smaller --tile",
) -> None:
    from .io import OutputExists, PhotoError

    with Progress(len(todo), quiet, label) as prog:
        for job in todo:
            prog.file(job.src)
            try:
                work(job, prog)
                report.written.append(job.dst)
            except OutputExists:  # another run wrote it while this one worked: as if it had been there
                report.skipped.append(job.dst)
            except PhotoError as e:
                report.fail(str(e))
                _debug_trace(e)
            except UserError:
                raise
            except MemoryError:
                report.fail(f"{job.src}: out of memory; try {memory_hint}")
            except Exception as e:  # an unexpected failure on one file must not stop a folder run
                report.fail(f"{job.src}: unexpected error: {type(e).__name__}: {e}")
                _debug_trace(e)
            prog.advance()


def _finish(report: Report, quiet: bool) -> None:
    if not quiet:
        parts = [f"{len(report.written)} written"]
        if report.skipped:
            parts.append(f"{len(report.skipped)} skipped (output exists; --overwrite to redo)")
        if report.own:
            parts.append(f"{len(report.own)} left out (blurvid's own results)")
        kinds = [kind for _, kind in report.unread]
        for kind in dict.fromkeys(kinds):  # in the order found
            n = kinds.count(kind)
            parts.append(f"{n} {kind.label} file{'s' if n > 1 else ''} left out (not supported)")
        if report.failed:
            parts.append(f"{len(report.failed)} failed")
        out.print(", ".join(parts))
        for kind in dict.fromkeys(kinds):  # which files, and what to do (as a file named alone is told)
            shown = printable(first_few([f.name for f, k in report.unread if k == kind]))
            out.print(f"  {kind.label}: {shown}: {kind.hint}", markup=False)
        for p in report.written if len(report.written) <= 20 else []:
            out.print(f"  {printable(str(p))}", markup=False)
    if report.failed:
        raise typer.Exit(1)


# ------------------------------------------------------------------ commands -----------------------------
OutputOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Output file (one input) or folder (several inputs / a folder)."),
]
OverwriteOpt = Annotated[
    bool,
    flag("--overwrite", help="Replace outputs that already exist (inputs are never overwritten)."),
]
RecursiveOpt = Annotated[
    bool, flag("--recursive", "-r", help="Also process subfolders; the output mirrors the tree.")
]
QuietOpt = Annotated[
    bool,
    flag("--quiet", "-q", help="No progress bar, summary or warnings; errors are still printed."),
]
DeviceOpt = Annotated[Device, typer.Option("--device", help="auto = CUDA when available, else CPU.")]
PrecisionOpt = Annotated[
    Precision,
    typer.Option("--precision", help="auto = bf16 on CPUs with native bf16, fp32 on GPUs; fp16 needs CUDA."),
]
HalfOpt = Annotated[
    bool, flag("--half", help="fp16 on CUDA (bf16 on CPU): faster, same result within tolerance.")
]
TileOpt = Annotated[
    int,
    typer.Option(
        "--tile",
        min=64,
        help="Tile size (px) for big photos, rounded down to a multiple of 32; lower it if memory is short "
        "(with --shake it bounds only the network's check for blur: the deconvolution's tiles are at "
        "least 2048 px).",
    ),
]
ShakeOpt = Annotated[
    bool,
    flag(
        "--shake",
        help="Camera-shake mode: estimate one blur kernel for the whole photo and invert it. Much sharper "
        "on hand-held shake of a still scene; wrong for moving subjects (use the default network there). "
        "A photo in which the network finds almost no blur is left as it was, with a warning.",
    ),
]
AnimateShakeOpt = Annotated[
    bool,
    flag(
        "--shake",
        help="Camera-shake mode: the video warps the sharp photo of deblur --shake (one blur kernel for the "
        "whole photo, inverted) instead of the network's. For hand-held shake of a still scene; wrong "
        "for moving subjects. A photo in which the network finds almost no blur is left as it was.",
    ),
]
ShakeSizeOpt = Annotated[
    int | None,
    typer.Option(
        min=5,
        help="--shake: the longest blur to look for, in px of the photo "
        "(default 31 px, or 3 % of the long side of photos over 1024 px; at most 95 px of the 1024 px "
        "working copy).",
        show_default=False,
    ),
]
RepoOpt = Annotated[
    str | None, typer.Option("--repo", envvar="BLURVID_HF_REPO", help="Hugging Face repo for weights.")
]


def _fps_in_range(value: float) -> float:
    """``--fps``: a number from 0.5 to 120 (nan and inf said to be no number, not "above 120")."""
    if not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a number of frames per second")
    if not 0.5 <= value <= 120:
        raise typer.BadParameter(f"{value:.15g} is not in the range 0.5 to 120")
    return value


def _precision(precision: Precision, half: bool) -> str:
    """The pipeline's precision name: ``--half`` is 'half' (fp16 on CUDA, bf16 on the CPU); with
    another ``--precision`` it is a contradiction, refused."""
    if half and precision != Precision.auto:
        raise UserError(
            f"--half and --precision {precision.value} both choose the precision: give one of them "
            "(--half = fp16 on CUDA, bf16 on the CPU)"
        )
    return "half" if half else precision.value


class _LogLines(logging.Handler):
    """blurvid's log records (a checkpoint download, a corrupt copy passed over, a library's warning)
    as lines on stderr; with ``BLURVID_DEBUG`` set, a record's ``detail`` (where a Python warning came
    from) follows its line."""

    def emit(self, record: logging.LogRecord) -> None:
        msg = printable(record.getMessage())
        err.print(f"warning: {msg}" if record.levelno >= logging.WARNING else msg, markup=False)
        detail = getattr(record, "detail", None)
        if detail and os.environ.get("BLURVID_DEBUG"):
            err.print(str(detail).rstrip("\n"), markup=False, highlight=False)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning`` while a command runs: a library's warning (torch, Pillow when writing)
    is one ``warning: ...`` line through blurvid's logger, so ``-q`` hides it and ``BLURVID_DEBUG``
    adds Python's own text of it (file and line)."""
    text = " ".join(str(message).split())
    detail = warnings.formatwarning(message, category, filename, lineno, line)
    logging.getLogger("blurvid").warning("%s", text, extra={"detail": detail})


def _quiet_logs(quiet: bool) -> None:
    """``--quiet`` keeps notes and warnings off stderr (errors are still printed)."""
    logging.getLogger("blurvid").setLevel(logging.ERROR if quiet else logging.INFO)


@app.command()
def deblur(
    paths: Annotated[
        list[str],
        typer.Argument(help="Photos, folders or glob patterns.", show_default=False, metavar="PATHS"),
    ],
    output: OutputOpt = None,
    suffix: Annotated[str, typer.Option(help="Added to the file name of each output.")] = "_sharp",
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="Output format (jpg, png, tif, webp, bmp; avif where Pillow has it); default: as the input.",
        ),
    ] = None,
    quality: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=100,
            help="JPEG / WebP / AVIF quality (default 95; a lossless WebP stays lossless; 100: lossless WebP).",
            show_default=False,
        ),
    ] = None,
    overwrite: OverwriteOpt = False,
    recursive: RecursiveOpt = False,
    quiet: QuietOpt = False,
    device: DeviceOpt = Device.auto,
    precision: PrecisionOpt = Precision.auto,
    half: HalfOpt = False,
    tile: TileOpt = 1024,
    repo: RepoOpt = None,
    shake: ShakeOpt = False,
    shake_size: ShakeSizeOpt = None,
) -> None:
    """Deblur photos: writes <name>_sharp.<ext> beside each input (or into -o), keeping ICC, EXIF, XMP, bit depth."""
    from .io import (
        IMAGE_SUFFIXES,
        file_warnings,
        fill_transparent,
        keep_hidden,
        opaque_for,
        photo_format,
        read_photo,
        write_photo,
    )

    _quiet_logs(quiet)
    _check_shake_size(shake, shake_size)
    if any(sep and sep in suffix for sep in ("/", os.sep, os.altsep, "\0")):
        # a separator would put outputs in other folders, even outside -o (--suffix /../../x)
        raise UserError(f"--suffix {suffix!r}: must be part of a file name (no '/')")
    report = Report()
    jobs, multi = collect_inputs(
        paths, recursive, report, is_output=lambda f: own_output(f, suffix), skip=output
    )
    ext = ("." + fmt.lower().lstrip(".")) if fmt else None
    if ext and ext not in IMAGE_SUFFIXES:
        raise UserError(
            f"--format {fmt}: unsupported; use one of {', '.join(sorted(s[1:] for s in IMAGE_SUFFIXES))}"
        )
    if ext and output is not None and not output.is_dir() and output.suffix.lower() in IMAGE_SUFFIXES:
        if photo_format(output) != photo_format(Path("x" + ext)):  # .jpg and .jpeg agree
            raise UserError(f"--format {fmt} and -o {output} disagree: give one of them")
    plan_outputs(
        jobs,
        output,
        multi,
        name=lambda p: f"{p.stem}{suffix}{ext or _result_suffix(p)}",
        single_ok=lambda o: o.suffix.lower() in IMAGE_SUFFIXES and not o.is_dir(),
    )
    formats = {photo_format(job.dst) for job in jobs if job.dst is not None}
    if quality is not None and formats and not formats & {"JPEG", "WEBP", "AVIF"}:
        logging.getLogger("blurvid").warning(
            "--quality %d: %s results are lossless; it applies to JPEG, WebP and AVIF only",
            quality,
            " / ".join(sorted(f for f in formats if f)),
        )
    prec = _precision(precision, half)
    runtime = _runtime(device, prec, tile, False, repo, shake=shake, shake_size=shake_size) if jobs else None

    def work(job: Job, prog: Progress) -> None:
        photo = read_photo(job.src)
        # flattened before deblurring, as animate does: the colour under transparent pixels is
        # arbitrary, and the network would carry it into the edges that show
        pixels, alpha = opaque_for(job.dst, photo.pixels, photo.alpha)
        if alpha is not photo.alpha:
            photo = replace(photo, pixels=pixels, alpha=alpha)
        # kept transparency (PNG, TIFF, WebP): the network sees the visible colour spread under it
        seen = pixels if alpha is None else fill_transparent(pixels, alpha)
        with file_warnings(job.src):  # e.g. --shake found no shake: the line names the photo
            sharp = runtime(seen, on_tile=prog.on_tile)
        if seen is not pixels:
            sharp = keep_hidden(sharp, pixels, alpha)
        # without --overwrite, a result another run wrote meanwhile stays (counted as skipped)
        write_photo(job.dst, sharp, like=photo, alpha=photo.alpha, quality=quality, replace=overwrite)

    _run_jobs(jobs, report, overwrite, quiet, "deblur", work, _memory_hint(shake))
    _finish(report, quiet)


@app.command()
def animate(
    paths: Annotated[
        list[str],
        typer.Argument(help="Photos, folders or glob patterns.", show_default=False, metavar="PATHS"),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="clip.gif / .mp4 / .webp, or a folder for PNG frames (one input); a folder for several inputs.",
        ),
    ] = None,
    frames: Annotated[
        int, typer.Option("--frames", "-n", min=2, max=99, help="Number of frames to extract.")
    ] = 9,
    fps: Annotated[
        float,
        typer.Option(callback=_fps_in_range, help="Playback speed of the video (0.5 to 120)."),
    ] = 12.0,
    loop: Annotated[bool, flag("--loop/--once", help="Loop the GIF / WebP forever, or play once.")] = True,
    boomerang: Annotated[bool, flag("--boomerang", help="Play forward then backward.")] = False,
    reverse: Annotated[
        bool,
        flag("--reverse", help="Reverse time (the direction of motion is ambiguous in one photo)."),
    ] = False,
    side_by_side: Annotated[
        bool, flag("--side-by-side", help="Show the blurred photo left of the video.")
    ] = False,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="Video format when -o is a folder or not given: gif (default), mp4, webp or frames.",
            show_default=False,
        ),
    ] = None,
    size: Annotated[
        int,
        typer.Option(
            "--size",
            min=0,
            help="Longest side of the video in px, of each panel with --side-by-side (0 = full resolution).",
        ),
    ] = 1080,
    overwrite: OverwriteOpt = False,
    recursive: RecursiveOpt = False,
    quiet: QuietOpt = False,
    device: DeviceOpt = Device.auto,
    precision: PrecisionOpt = Precision.auto,
    half: HalfOpt = False,
    tile: TileOpt = 1024,
    repo: RepoOpt = None,
    shake: AnimateShakeOpt = False,
    shake_size: ShakeSizeOpt = None,
) -> None:
    """Make a short video of the motion that happened while the shutter was open."""
    from .io import (
        PhotoError,
        check_video_size,
        file_warnings,
        has_transparency,
        is_frame_folder,
        read_photo,
        to_uint8,
        video_kind,
        write_video,
    )

    asked = fmt.lower().lstrip(".") if fmt else None
    fmt = asked or "gif"
    if fmt not in ("gif", "mp4", "webp", "frames"):
        raise UserError(f"--format {fmt}: use gif, mp4, webp or frames")
    _quiet_logs(quiet)
    _check_shake_size(shake, shake_size)
    report = Report()
    jobs, multi = collect_inputs(paths, recursive, report, is_output=own_output, skip=output)
    if asked and output is not None and not output.is_dir() and output.suffix:
        with contextlib.suppress(PhotoError):  # an unknown suffix is refused when the outputs are planned
            if video_kind(output) not in ("frames", asked):
                raise UserError(f"--format {asked} and -o {output} disagree: give one of them")

    def single_ok(o: Path) -> bool:
        """A video file name, a new folder for frames, or (unless another --format is asked for) an empty
        folder or one of frames from an earlier run; any other existing folder receives
        <name>_motion.<format>."""
        if o.is_dir():
            return asked in (None, "frames") and (is_frame_folder(o) or _empty_folder(o))
        try:
            kind = video_kind(o)
        except PhotoError:  # no video suffix (`-o run.v2`): a new folder (a typo is refused before this)
            return False
        return asked in (None, kind)  # `-o new --format mp4`: a folder new/ for <name>_motion.mp4

    plan_outputs(
        jobs,
        output,
        multi,
        name=lambda p: f"{p.stem}_motion" + ("" if fmt == "frames" else f".{fmt}"),
        single_ok=single_ok,
    )
    # --shake: the sharp photo the frames are warped from comes from the camera-shake deconvolution
    runtime = (
        _runtime(device, _precision(precision, half), tile, True, repo, shake=shake, shake_size=shake_size)
        if jobs
        else None
    )

    def work(job: Job, prog: Progress) -> None:
        from . import pipeline

        photo = read_photo(job.src)
        icc, pixels = photo.icc_profile, photo.pixels
        if has_transparency(photo.alpha):  # the colour under transparent pixels is arbitrary
            logging.getLogger("blurvid").warning(
                "%s: transparency is flattened onto white (the videos hold no alpha)", job.src
            )
            pixels = pipeline.flatten_alpha(pixels, photo.alpha)
        side = max(pixels.shape[:2])
        pixels = pipeline.fit_image(pixels, size)
        del photo  # with --size, only the fitted copy is used: the full-size photo goes now
        h, w = pixels.shape[:2]
        check_video_size(job.dst, h, 2 * w if side_by_side else w)  # before minutes of work
        animator = runtime
        if isinstance(runtime.deblurrer, pipeline.ShakeRemover) and max(h, w) < side:
            # --shake-size and --shake's messages are in px of the photo, not of its fitted copy
            animator = copy.copy(runtime)
            animator.deblurrer = runtime.deblurrer.at_scale(max(h, w) / side)
        left = to_uint8(pixels) if side_by_side else None
        # 8-bit as they are made: every video format stores 8 bits, 9 float frames of a 24 MP photo are
        # 2.6 GB, and a frame made band by band as uint8 never exists as floats at full size
        made = animator.frames(pixels, frames, on_tile=prog.on_tile, convert=to_uint8)
        del pixels  # the frames' generator lets the photo go once it has the motion
        with file_warnings(job.src):  # the generator does the work, and may warn (--shake found no shake)
            seq = list(made)
        if reverse:
            seq = seq[::-1]
        if boomerang:  # a loop returns to the first frame by itself; a clip played once ends on it
            ends_on_first = not loop or video_kind(job.dst) == "mp4"
            seq = seq + (seq[-2::-1] if ends_on_first else seq[-2:0:-1])
        if left is not None:
            seq = pipeline.side_by_side(left, seq)
        write_video(job.dst, seq, fps=fps, loop=loop, icc=icc, replace=overwrite)

    _run_jobs(jobs, report, overwrite, quiet, "animate", work, _memory_hint(shake))
    _finish(report, quiet)


@app.command()
def models(repo: RepoOpt = None) -> None:
    """List the registered checkpoints, where each was found and whether its sha256 verifies (exit 1 when a default one is missing or corrupt)."""  # noqa: E501 (one line: --help shows the docstring's breaks)
    from rich.table import Table

    from .weights import WeightsError, hub_repo_id, list_checkpoints

    try:  # the listing reads the copies on disk, but a download from such a repo would fail
        hub_repo_id(repo)
    except WeightsError as e:
        logging.getLogger("blurvid").warning("%s", e)
    rows = list_checkpoints(repo_id=repo)
    if not rows:  # a health check: nothing can run
        from .weights import REGISTRY_FILE, package_weights_dir

        err.print(
            f"no checkpoint is registered ({package_weights_dir() / REGISTRY_FILE} is missing or empty): "
            "`blurvid deblur` / `animate` cannot run; reinstall blurvid, or register a checkpoint you "
            "trained (`blurvid train export`)",
            markup=False,
        )
        raise typer.Exit(1)
    table = Table("name", "arch", "default", "found in", "verified", "size", "license")
    for r in rows:
        size = _size_text(r["size"]) if r.get("size") is not None else "-"
        verified = (
            "NO: unreadable"
            if r.get("unreadable")
            else {True: "yes", False: "NO: corrupt", None: "-"}[r.get("verified")]
        )
        table.add_row(
            r["name"],
            r["arch"],
            "yes" if r["default"] else "",
            str(r["origin"]),
            verified,
            size,
            r["license"],
        )
    out.print(table)
    for r in rows:  # where each verified copy lies, for a user who wants to see or move it
        if r.get("path"):
            out.print(f"{r['name']}: {r['path']}", markup=False, highlight=False)
    unusable = [r["name"] for r in rows if r["default"] and r.get("verified") is not True]
    if unusable:  # a health check: scripts can test the exit code
        from .weights import ENV_HF_OFFLINE, cache_dir, hub_offline

        how = (
            f"{ENV_HF_OFFLINE} is set: put the files into {cache_dir()}, or unset it for `blurvid download`"
            if hub_offline()
            else f"`blurvid download` fetches them (from {rows[0]['repo_id']})"
        )
        err.print(f"not installed or not verified: {', '.join(unusable)}; {how}", markup=False)
        raise typer.Exit(1)


@app.command()
def download(
    names: Annotated[
        list[str] | None, typer.Argument(help="Checkpoint names (default: every default checkpoint).")
    ] = None,
    repo: RepoOpt = None,
    force: Annotated[bool, flag(help="Download even if a verified copy exists.")] = False,
) -> None:
    """Fetch checkpoints from the Hugging Face hub into the user cache and verify them."""
    from .weights import WeightsError, hub_repo_id, list_checkpoints, prefetch

    if force:  # every checkpoint comes from the hub: a bad repo id is one line, before any work
        try:
            hub_repo_id(repo)
        except WeightsError as e:
            raise UserError(str(e)) from None
    wanted = names or [r["name"] for r in list_checkpoints(repo_id=repo) if r["default"]]
    if not wanted:
        raise UserError("no checkpoint is registered; nothing to download")

    failed, said = 0, set()
    for name in wanted:  # every one is tried: one failure says nothing about the others
        try:
            r = prefetch(name, repo_id=repo, force=force)
        except WeightsError as e:
            if str(e) not in said:  # a reason shared by several (a bad repo id) is said once
                print_error(str(e))
                said.add(str(e))
            failed += 1
            continue
        out.print(f"{r.spec.name}: {r.path} ({r.origin})")
    if failed:
        raise typer.Exit(2)


def _size_text(size: int) -> str:
    """A file size for people: '14.8 MB', '812 kB', '1000 B'."""
    if size >= 1e6:
        return f"{size / 1e6:.1f} MB"
    return f"{size / 1e3:.0f} kB" if size >= 1e3 else f"{size} B"


def version_callback(value: bool) -> None:
    if value:
        out.print(f"blurvid {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, flag("--version", callback=version_callback, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """blurvid — deblur a photo and bring its motion alive (Purohit, Shah & Rajagopalan, CVPR 2019)."""


def _register_subcommands() -> None:
    """Add train / eval / synth to ``app`` (once: main() may run several times in one process)."""
    if any(info.name == "train" for info in app.registered_groups):
        return
    from .cli_train import eval_command, synth_command, train_app

    app.add_typer(train_app, name="train")
    app.command("eval")(eval_command)
    app.command("synth")(synth_command)


def _debug_trace(e: BaseException) -> None:
    """With ``BLURVID_DEBUG`` set, the traceback behind a one-line message (for bug reports)."""
    if os.environ.get("BLURVID_DEBUG"):
        err.print("".join(traceback.format_exception(e)), markup=False, highlight=False)


class _Stopped(BaseException):
    """Raised in the main thread by Ctrl-C, SIGTERM or SIGHUP: it unwinds the command like an exception,
    so the temporary file of a write in progress is removed on the way out (:mod:`blurvid.io`)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_stopped(signum: int, frame: object) -> None:
    raise _Stopped(signum)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app, turning user errors (and missing, corrupt or foreign checkpoint
    files) into one line and exit code 2; Ctrl-C, SIGTERM and SIGHUP stop it with one line, nothing
    half-written left behind, and exit code 128 + the signal number (130 for Ctrl-C)."""
    from .stopping import catchable_stop_signals  # stdlib-only modules: cheap at start-up
    from .weights import WeightsError

    _register_subcommands()
    _PROBED.clear()  # main() may run several times in one process (tests, a notebook)
    # a file name the console's code page lacks (stdout redirected on Windows is cp1252, strict) is
    # written escaped, not a UnicodeEncodeError after all the work
    with contextlib.suppress(AttributeError, ValueError, OSError):
        sys.stdout.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    previous = {s: signal.signal(s, _raise_stopped) for s in catchable_stop_signals()}
    logger, handler = logging.getLogger("blurvid"), _LogLines()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # not twice through the root logger's last-resort handler
    previous_show_warning, warnings.showwarning = warnings.showwarning, _show_warning
    try:
        # Windows' shell leaves patterns to the program: blurvid expands them itself (a folder's place
        # for -o, its own results left out), so click must not expand them first
        app(args=argv, prog_name="blurvid", standalone_mode=True, windows_expand_args=False)
    except (UserError, WeightsError) as e:
        print_error(str(e))
        _debug_trace(e.__context__ or e)  # what a one-line message was made from
        sys.exit(2)
    except _Stopped as e:
        what = "interrupted" if e.signum == signal.SIGINT else f"stopped by {signal.Signals(e.signum).name}"
        err.print(f"{what}; no partly written output was left")
        sys.exit(128 + e.signum)
    finally:
        warnings.showwarning = previous_show_warning
        for s, previous_handler in previous.items():
            signal.signal(s, previous_handler)
        logger.removeHandler(handler)
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
