"""Peak memory and wall time of the whole ``blurvid`` command line on big photos — prints a table, writes JSON.

    python benchmarks/bench_memory.py                                  # every row at 12 / 24 / 48 MP
    python benchmarks/bench_memory.py --sizes 24 --rows deblur animate-full --json out.json
    python benchmarks/bench_memory.py --ref 221b8bd --json before.json  # the same rows on an older commit
    python benchmarks/bench_memory.py --baseline before.json --json after.json   # compares outputs too
    python benchmarks/bench_memory.py --sizes 24 --rows deblur --stages  # where the memory goes, by stage

Each row is one real command, ``python -m blurvid ...``, run in a fresh subprocess on a generated photo:

* ``deblur`` (JPEG -> JPEG), ``deblur-tif16`` (16-bit TIFF -> 16-bit TIFF), ``shake`` (``deblur --shake``,
  JPEG), ``animate`` (``animate -o clip.mp4``: the default ``--size 1080``), ``animate-full``
  (``animate --size 0 -o clip.mp4``: 9 frames at full resolution), ``animate-frames`` (``--size 0``
  into a folder of PNG frames).
* The photos (``--sizes`` in megapixels: 12 = 4000x3000, 24 = 6000x4000, 48 = 8000x6000) are a
  structured scene — shapes, lines, text, fine grain — smeared along one curved camera-shake path
  (0.4 % of the long side) with a little noise, so that ``--shake`` finds a real kernel. They are made
  once from a fixed seed (bit-identical on every run; their sha256 is recorded) and kept in ``--photos``.
  The JPEGs carry EXIF orientation 6 (a phone held upright: the reader turns them), the TIFFs none.

Measured for each row: ``peak_rss_mib``, the largest peak resident set of any one process of the command
(``ru_maxrss`` from ``os.wait4`` on the child: exact, covers ffmpeg too, but per process, not summed);
``peak_tree_mib``, the largest sum of the resident sets of the command and its children (ffmpeg decoding
a 16-bit photo, encoding an MP4), sampled every 50 ms; ``wall_s``; and the sha256 of what the command
wrote (a frames folder: of its file names and contents), so two runs — say before and after a change —
can be shown to write the same bytes (``--baseline``: the earlier JSON; its rows are copied into the new
JSON under ``baseline`` and each row says whether the outputs are equal).

A row whose command tree passes ``--limit-gib`` (default 11) is killed and reported as such, so a big
size cannot take the machine down. The rows run one after another, at the priority of this script (run
it with ``nice -n 19`` beside other work; wall times then depend on that work — compare peaks freely,
times only within one run). ``--stages`` also runs each row once more in-process with every pipeline
and file stage (read_photo, to_tensor, run_tiled, to_numpy, write_photo, warp, resize_flow, ...)
wrapped: each stage's peak RSS (while it ran, nested stages included) and the RSS it left, from Linux's
``/proc/self/status`` VmHWM, reset through ``/proc/self/clear_refs`` — Linux only.

``--ref COMMIT`` runs the ``blurvid/`` of that commit (``git archive`` into a temporary folder that
shares this checkout's ``weights/``); by default the checkout this script lies in. Each row records the
code it measured (``code``). ``--only`` runs chosen cases, ``--append`` adds them to an existing JSON
(keeping its other rows and its ``notes``): to alternate two versions case by case, so that both see the
same load, run each case with ``--ref`` and then without it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIZES = {
    2: (1200, 1600),
    12: (3000, 4000),
    24: (4000, 6000),
    48: (6000, 8000),
}  # megapixels -> (height, width) as stored
ROWS: dict[str, tuple[list[str], str, str]] = {
    # name -> (blurvid arguments before the photo, input kind, output name)
    "deblur": (["deblur"], "jpg", "sharp.jpg"),
    "deblur-tif16": (["deblur"], "tif16", "sharp.tif"),
    "shake": (["deblur", "--shake"], "jpg", "sharp.jpg"),
    "animate": (["animate"], "jpg", "clip.mp4"),
    "animate-full": (["animate", "--size", "0"], "jpg", "clip.mp4"),
    "animate-frames": (["animate", "--size", "0"], "jpg", "frames"),
}
SEED = 22
MIB = 1 << 20


# ------------------------------------------------------------------ test photos --------------------------
def _scene(height: int, width: int, seed: int) -> np.ndarray:
    """A sharp ``(H, W, 3)`` uint8 scene: a colour gradient under big shapes, many small strokes and text."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    yy = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    xx = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    base = np.empty((height, width, 3), np.uint8)
    for c in range(3):
        a, b, d = rng.uniform(40, 200), rng.uniform(-60, 60), rng.uniform(-60, 60)
        base[:, :, c] = np.clip(a + b * xx + d * yy, 0, 255).astype(np.uint8)
    image = Image.fromarray(base)
    del base
    draw = ImageDraw.Draw(image)
    side = max(height, width)

    def colour() -> tuple[int, int, int]:
        return tuple(int(v) for v in rng.integers(0, 256, 3))

    for _ in range(300):  # big shapes, 2-15 % of the long side
        x0, y0 = rng.uniform(-0.05, 1.0) * width, rng.uniform(-0.05, 1.0) * height
        w, h = rng.uniform(0.02, 0.15, 2) * side
        kind = rng.integers(3)
        outline, line = (
            (colour(), int(rng.integers(1, max(2, side // 800)))) if rng.random() < 0.5 else (None, 1)
        )
        if kind == 0:
            draw.rectangle([x0, y0, x0 + w, y0 + h], fill=colour(), outline=outline, width=line)
        elif kind == 1:
            draw.ellipse([x0, y0, x0 + w, y0 + h], fill=colour(), outline=outline, width=line)
        else:
            pts = [(x0 + rng.uniform(0, w), y0 + rng.uniform(0, h)) for _ in range(int(rng.integers(3, 7)))]
            draw.polygon(pts, fill=colour(), outline=outline)
    for _ in range(4000):  # small strokes: edges at the pixel scale
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        length, angle = rng.uniform(0.003, 0.03) * side, rng.uniform(0, np.pi)
        x1, y1 = x0 + length * np.cos(angle), y0 + length * np.sin(angle)
        draw.line([x0, y0, x1, y1], fill=colour(), width=int(rng.integers(1, max(2, side // 1500))))
    for i in range(40):  # text of several sizes
        size = int(side * rng.uniform(0.006, 0.03))
        try:
            font = ImageFont.load_default(size=size)
        except (OSError, TypeError, ValueError):  # no FreeType: the small bitmap font
            font = ImageFont.load_default()
        xy = (rng.uniform(0, 0.8) * width, rng.uniform(0, 0.95) * height)
        draw.text(xy, f"blurvid memory {i:02d} The quick brown fox 0123456789", fill=colour(), font=font)
    return np.asarray(image)


def _shake_path(side: int, seed: int) -> list[tuple[int, int]]:
    """Integer offsets (dy, dx) along a smooth curved path about 0.4 % of ``side`` long, about 1 px apart."""
    rng = np.random.default_rng(seed + 1)
    length = max(4.0, 0.004 * side)
    samples = int(length) + 1
    t = np.linspace(0, 1, samples)
    angle, bend = rng.uniform(0, np.pi), rng.uniform(-1.5, 1.5)
    theta = angle + bend * (t - 0.5)
    steps = np.stack([np.sin(theta), np.cos(theta)], 1) * (length / samples)
    path = np.cumsum(steps, 0)
    path -= path.mean(0)
    return [(round(float(y)), round(float(x))) for y, x in path]


def make_photo(path: Path, height: int, width: int, kind: str, seed: int = SEED) -> None:
    """Write the blurred test photo: ``kind`` 'jpg' (8-bit, quality 92, EXIF orientation 6) or 'tif16'
    (16-bit RGB, uncompressed). The same arguments give the same file, byte for byte."""
    from PIL import Image

    sharp = _scene(height, width, seed)
    path_offsets = _shake_path(max(height, width), seed)
    pad = max(max(abs(dy), abs(dx)) for dy, dx in path_offsets)
    padded = np.pad(sharp, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    del sharp
    rng = np.random.default_rng(seed + 2)
    n = len(path_offsets)
    out = np.empty((height, width, 3), np.uint16 if kind == "tif16" else np.uint8)
    band = 256
    for r0 in range(0, height, band):
        r1 = min(height, r0 + band)
        acc = np.zeros((r1 - r0, width, 3), np.uint32)
        for dy, dx in path_offsets:
            acc += padded[pad + r0 + dy : pad + r1 + dy, pad + dx : pad + dx + width]
        noise = rng.normal(0.0, 0.006, acc.shape).astype(np.float32)  # sensor noise, 0..1 units
        value = acc.astype(np.float32) / np.float32(255 * n) + noise
        top = 65535.0 if kind == "tif16" else 255.0
        out[r0:r1] = np.rint(np.clip(value, 0, 1) * top).astype(out.dtype)
    del padded
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "tif16":
        _write_tiff16(path, out)
        return
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    exif[0x010F] = "blurvid bench_memory"
    Image.fromarray(out).save(path, format="JPEG", quality=92, exif=exif.tobytes())


def _write_tiff16(path: Path, pixels: np.ndarray) -> None:
    """A minimal uncompressed little-endian 16-bit RGB TIFF (one strip per 64 rows)."""
    height, width, _ = pixels.shape
    rows = 64
    strips = -(-height // rows)
    row_bytes = width * 6
    entries = 11
    ifd_size = 2 + 12 * entries + 4
    extra = 3 * 2 + strips * 4 * 2  # after the IFD: bits per sample, offsets, counts
    data_start = 8 + ifd_size + extra
    bits_at = 8 + ifd_size
    offsets_at = bits_at + 6
    counts_at = offsets_at + strips * 4
    counts = [min(rows, height - i * rows) * row_bytes for i in range(strips)]
    offsets = [data_start + i * rows * row_bytes for i in range(strips)]

    def entry(tag: int, typ: int, count: int, value: int) -> bytes:
        packed = struct.pack("<H", value) + b"\0\0" if typ == 3 and count == 1 else struct.pack("<I", value)
        return struct.pack("<HHI", tag, typ, count) + packed

    with open(path, "wb") as fh:
        fh.write(b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", entries))
        fh.write(entry(256, 4, 1, width) + entry(257, 4, 1, height) + entry(258, 3, 3, bits_at))
        fh.write(entry(259, 3, 1, 1) + entry(262, 3, 1, 2) + entry(273, 4, strips, offsets_at))
        fh.write(entry(277, 3, 1, 3) + entry(278, 4, 1, rows) + entry(279, 4, strips, counts_at))
        fh.write(entry(284, 3, 1, 1) + entry(339, 3, 1, 1) + struct.pack("<I", 0))
        fh.write(struct.pack("<HHH", 16, 16, 16))
        fh.write(struct.pack(f"<{strips}I", *offsets) + struct.pack(f"<{strips}I", *counts))
        assert fh.tell() == data_start
        fh.write(np.ascontiguousarray(pixels, dtype="<u2").tobytes())


def photo_for(folder: Path, mp: int, kind: str) -> Path:
    """The test photo of ``mp`` megapixels and ``kind`` in ``folder``, made if it is not there yet."""
    height, width = SIZES[mp]
    path = folder / f"bench_{mp}mp_seed{SEED}.{'tif' if kind == 'tif16' else 'jpg'}"
    if not path.exists():
        t = time.perf_counter()
        tmp = path.with_name("." + path.name)
        make_photo(tmp, height, width, kind)
        tmp.replace(path)
        print(f"made {path} ({time.perf_counter() - t:.1f} s)", file=sys.stderr)
    return path


def sha256_of(path: Path) -> str:
    """sha256 of a file, or of a folder's sorted file names and contents."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------ running ------------------------------
def _tree_rss(pid: int) -> int:
    """Summed resident bytes of ``pid`` and its descendants (from /proc; 0 when gone)."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as fh:
                    stat = fh.read()
                parents[int(entry.name)] = int(stat.rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    tree, frontier = {pid}, [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parents.items() if pp == p and c not in tree]
        tree.update(kids)
        frontier.extend(kids)
    total = 0
    for p in tree:
        try:
            with open(f"/proc/{p}/statm", "rb") as fh:
                total += int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    return total


def run_command(argv: list[str], cwd: Path, limit: int, interval: float = 0.05) -> dict:
    """Run ``argv``; its wall time, per-process peak RSS (``ru_maxrss``), sampled peak tree RSS and exit
    code. Killed (with its process group) when the tree passes ``limit`` bytes."""
    env = dict(os.environ, PYTHONPATH=str(cwd))
    t = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    peak, killed = [0], [False]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            rss = _tree_rss(proc.pid)
            peak[0] = max(peak[0], rss)
            if rss > limit and not killed[0]:
                killed[0] = True
                os.killpg(proc.pid, signal.SIGKILL)
            done.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stderr = proc.stderr.read() if proc.stderr else b""  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    sampler.join()
    return {
        "wall_s": round(wall, 2),
        "peak_rss_mib": round(usage.ru_maxrss * 1024 / MIB),
        "peak_tree_mib": round(peak[0] / MIB),
        "exit": proc.returncode,
        "killed_at_limit": killed[0],
        "stderr_tail": stderr.decode("utf-8", "replace")[-400:],
    }


def code_root(ref: str | None, scratch: Path) -> Path:
    """The folder whose ``blurvid/`` runs: this checkout, or ``ref`` extracted beside its ``weights/``."""
    if ref is None:
        return ROOT
    target = scratch / f"code_{ref}"
    if not target.exists():
        target.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", ref, "blurvid"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
        (target / "weights").symlink_to(ROOT / "weights")
    return target


# ------------------------------------------------------------------ stages -------------------------------
_STAGES = {
    "blurvid.io": ["read_photo", "write_photo", "write_video", "to_uint8", "_quantize", "_decode_16bit"],
    "blurvid.pipeline": [
        "to_tensor",
        "to_numpy",
        "run_tiled",
        "warp",
        "warped_frame",
        "resize_flow",
        "fit_image",
        "side_by_side",
    ],
    "blurvid.pipeline:Deblurrer": ["__call__", "tensor"],
    "blurvid.pipeline:ShakeRemover": ["__call__", "tensor", "_kernel"],
    "blurvid.pipeline:Animator": ["motion"],
}


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def trace_main(argv: list[str], out: Path) -> None:
    """Run ``blurvid argv`` in this process with the stages of ``_STAGES`` wrapped; write their peak RSS
    (max over calls, nested stages included), the RSS they left and their call count as JSON to ``out``."""
    import functools
    import importlib

    stats: dict[str, dict] = {}
    stack: list[list[int]] = []  # per open stage: [peak KiB seen so far]
    overall = [0]

    def reset() -> int:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return _status_kib("VmRSS")

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            hwm = _status_kib("VmHWM")
            if stack:
                stack[-1][0] = max(stack[-1][0], hwm)
            overall[0] = max(overall[0], hwm)
            rss_in = reset()
            stack.append([rss_in])
            try:
                return fn(*args, **kwargs)
            finally:
                mine = max(stack.pop()[0], _status_kib("VmHWM"))
                overall[0] = max(overall[0], mine)
                if stack:
                    stack[-1][0] = max(stack[-1][0], mine)
                s = stats.setdefault(name, {"calls": 0, "peak_mib": 0, "rss_in_mib": 0, "rss_out_mib": 0})
                s["calls"] += 1
                s["peak_mib"] = max(s["peak_mib"], round(mine / 1024))
                s["rss_in_mib"] = max(s["rss_in_mib"], round(rss_in / 1024))
                s["rss_out_mib"] = max(s["rss_out_mib"], round(_status_kib("VmRSS") / 1024))
                reset()

        return inner

    for owner, names in _STAGES.items():
        module, _, cls = owner.partition(":")
        target = importlib.import_module(module)
        target = getattr(target, cls) if cls else target
        for n in names:
            if hasattr(target, n):
                setattr(target, n, wrap(f"{owner.rpartition('.')[2]}.{n}", getattr(target, n)))
    from blurvid.cli import main

    try:
        main(argv)
    except SystemExit as e:
        if e.code not in (0, None):
            raise
    overall[0] = max(overall[0], _status_kib("VmHWM"))
    out.write_text(json.dumps({"peak_mib": round(overall[0] / 1024), "stages": stats}, indent=1))


# ------------------------------------------------------------------ main ---------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0].strip(),
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--sizes", type=int, nargs="+", default=[12, 24, 48], choices=sorted(SIZES), help="megapixels"
    )
    ap.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS), help="commands to run")
    ap.add_argument("--skip", nargs="*", default=[], metavar="ROW@MP", help="leave out, e.g. animate-full@48")
    ap.add_argument(
        "--only",
        nargs="+",
        metavar="ROW@MP",
        help="run exactly these cases, in this order (instead of the grid)",
    )
    ap.add_argument(
        "--append",
        action="store_true",
        help="keep the rows already in --json (a case run again replaces its row)",
    )
    ap.add_argument(
        "--photos",
        type=Path,
        default=Path(tempfile.gettempdir()) / "blurvid_bench_memory",
        help="where the generated photos are kept between runs",
    )
    ap.add_argument("--ref", help="run this git commit's blurvid/ instead of the checkout's")
    ap.add_argument("--limit-gib", type=float, default=11.0, help="kill a command whose tree passes this")
    ap.add_argument("--keep", type=Path, help="keep the outputs in this folder (default: deleted)")
    ap.add_argument("--baseline", type=Path, help="an earlier JSON of this script: compare peaks and outputs")
    ap.add_argument("--stages", action="store_true", help="also run each row in-process with stage tracing")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--trace", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)  # internal: the traced child
    args = ap.parse_args()
    if args.trace is not None:
        out, *argv = args.trace
        trace_main(argv, Path(out))
        return

    scratch = Path(tempfile.mkdtemp(prefix="bench_memory_"))
    code = code_root(args.ref, scratch)
    baseline = json.loads(args.baseline.read_text()) if args.baseline else None
    base_rows = {(r["row"], r["mp"]): r for r in (baseline or {}).get("rows", [])}
    cases = [(n, mp) for mp in args.sizes for n in args.rows if f"{n}@{mp}" not in args.skip]
    if args.only:
        cases = [(c.split("@")[0], int(c.split("@")[1])) for c in args.only]
        unknown = [f"{n}@{mp}" for n, mp in cases if n not in ROWS or mp not in SIZES]
        if unknown:
            ap.error(f"--only: unknown cases {unknown} (rows: {', '.join(ROWS)}; sizes: {sorted(SIZES)})")
    earlier = json.loads(args.json.read_text()) if args.append and args.json and args.json.exists() else {}
    kept, notes = earlier.get("rows", []), earlier.get("notes", [])
    label = code_label(args.ref)
    rows: list[dict] = []
    try:
        for name, mp in cases:
            head, kind, out_name = ROWS[name]
            photo = photo_for(args.photos, mp, kind)
            out_dir = (args.keep or scratch) / f"{name}_{mp}mp"
            shutil.rmtree(out_dir, ignore_errors=True)
            out_dir.mkdir(parents=True)
            out_path = out_dir / out_name
            argv = [*head, str(photo), "-o", str(out_path), "--overwrite", "-q"]
            r = run_command([sys.executable, "-m", "blurvid", *argv], code, int(args.limit_gib * (1 << 30)))
            r.update(row=name, mp=mp, command="blurvid " + " ".join([*head, photo.name, "-o", out_name]))
            r["code"] = label
            r["input_sha256"] = sha256_of(photo)
            r["output_sha256"] = sha256_of(out_path) if out_path.exists() and r["exit"] == 0 else None
            if (name, mp) in base_rows:
                b = base_rows[(name, mp)]
                r["same_output_as_baseline"] = bool(r["output_sha256"]) and (
                    r["output_sha256"] == b.get("output_sha256")
                    and r["input_sha256"] == b.get("input_sha256")
                )
            if args.stages and r["exit"] == 0:
                trace = scratch / f"trace_{name}_{mp}.json"
                traced = [sys.executable, str(Path(__file__).resolve()), "--trace", str(trace), *argv]
                run_command(traced, code, int(args.limit_gib * (1 << 30)))
                r["stages"] = json.loads(trace.read_text()) if trace.exists() else None
            if not args.keep:
                shutil.rmtree(out_dir, ignore_errors=True)
            rows.append(r)
            _print_row(r, base_rows.get((name, mp)))
            if args.json:  # after every row: a long run killed half-way keeps what it measured
                done = {(r["row"], r["mp"]) for r in rows}
                _write(args, [k for k in kept if (k["row"], k["mp"]) not in done] + rows, baseline, notes)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _print_row(r: dict, base: dict | None) -> None:
    status = "KILLED at limit" if r["killed_at_limit"] else ("ok" if r["exit"] == 0 else f"exit {r['exit']}")
    line = (
        f"{r['row']:<15} {r['mp']:>3} MP  peak {r['peak_rss_mib']:>6} MiB  tree {r['peak_tree_mib']:>6} MiB  "
        f"{r['wall_s']:>7.1f} s  {status}"
    )
    if base is not None:
        same = {True: "same output", False: "OUTPUT DIFFERS"}[r.get("same_output_as_baseline", False)]
        line += f"   (baseline {base['peak_rss_mib']} MiB, {base['wall_s']:.1f} s; {same})"
    print(line, flush=True)
    if r["exit"] != 0 and r["stderr_tail"]:
        print("   " + r["stderr_tail"].strip().replace("\n", "\n   "), flush=True)
    for name, s in (r.get("stages") or {}).get("stages", {}).items():
        print(
            f"     {name:<26} peak {s['peak_mib']:>6} MiB  in {s['rss_in_mib']:>6}  out {s['rss_out_mib']:>6}"
            f"  x{s['calls']}",
            flush=True,
        )


def code_label(ref: str | None) -> str:
    """What code a run measures: the ``--ref`` commit, or this checkout's HEAD (and whether ``blurvid/``
    has uncommitted changes)."""
    if ref is not None:
        return ref
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "blurvid"], capture_output=True, text=True)
    return f"checkout at {head}" + (" + uncommitted changes in blurvid/" if dirty.stdout.strip() else "")


def _write(args: argparse.Namespace, rows: list[dict], baseline: dict | None, notes: list[str]) -> None:
    import torch

    doc = {
        "script": "benchmarks/bench_memory.py",
        "argv": sys.argv[1:],
        "code": code_label(args.ref),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "nice": os.nice(0),
        },
        "rows": rows,
    }
    if notes:
        doc["notes"] = notes
    if baseline is not None:
        doc["baseline"] = {k: baseline[k] for k in ("code", "machine", "rows", "notes") if k in baseline}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
