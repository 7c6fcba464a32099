"""Pretrained checkpoints: registry, lookup, download, verification and safetensors I/O.

A checkpoint is a ``.safetensors`` file holding one network's state dict ('dm' deblurring module, 'rve' video
encoder, 'rvd' video decoder, 'bie' blurred image encoder) plus metadata ``{'arch', 'config' (JSON),
'format_version', ...}``. The registry (``weights/registry.json``, installed as ``blurvid/weights/``) lists
the known checkpoints by name with their sha256, so every file is verified before it is used.

Layout of ``registry.json``::

    {"checkpoints": {"dm-v1": {"arch": "dm", "file": "dm-v1.safetensors", "sha256": "<64 hex>",
                               "config": {...}, "license": "MIT", "source": "...",
                               "description": "...", "default": true}}}

Lookup order for a checkpoint file (see :func:`resolve`): the package weights folder, then the user cache
(:func:`cache_dir`), then the Hugging Face cache (``HF_HOME`` / ``HF_HUB_CACHE``: a copy fetched with the
``hf`` tool or kept in a shared cache, found without the network, also offline), then the Hugging Face
Hub repo (:func:`hub_repo_id`) unless ``HF_HUB_OFFLINE`` is set. A hub that cannot be reached (its name
does not resolve, or a connection that failed) is not tried again for 5 minutes, not once per checkpoint.

Checkpoints are only ever read with safetensors: never ``torch.load`` or pickle.

This module imports nothing heavy at import time (torch, safetensors and huggingface_hub are imported inside
the functions that need them) so the CLI starts fast.

Note: the data folder ``blurvid/weights/`` must stay free of an ``__init__.py``; an installed package
directory of the same name would shadow this module.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import struct
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import fsutil

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "ARCHS",
    "DEFAULT_HF_REPO",
    "FORMAT_VERSION",
    "CheckpointSpec",
    "Resolved",
    "WeightsError",
    "cache_dir",
    "default_spec",
    "hub_repo_id",
    "list_checkpoints",
    "load_checkpoint",
    "load_pretrained",
    "load_registry",
    "package_weights_dir",
    "prefetch",
    "register_checkpoint",
    "resolve",
    "save_checkpoint",
    "sha256_file",
]

log = logging.getLogger(__name__)

ARCHS: tuple[str, ...] = ("dm", "rve", "rvd", "bie")
DEFAULT_HF_REPO = "blurvid/blurvid-weights"
FORMAT_VERSION = 1
REGISTRY_FILE = "registry.json"

ENV_CACHE_DIR = "BLURVID_CACHE_DIR"
ENV_HF_REPO = "BLURVID_HF_REPO"
ENV_REGISTRY = "BLURVID_REGISTRY"
ENV_HF_OFFLINE = "HF_HUB_OFFLINE"

_RESERVED_METADATA = ("arch", "config", "format_version")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_MAX_HEADER_BYTES = 100 * 1024 * 1024  # same cap safetensors applies
_CHUNK = 1 << 20

PathLike = str | os.PathLike  # a file-system path argument


class WeightsError(Exception):
    """A checkpoint problem to show the user as is: a one-line message naming the checkpoint (or file) and
    the problem, and where possible how to fix it."""


@dataclass(frozen=True)
class CheckpointSpec:
    """One registry entry (timm-style pretrained config).

    ``file`` is a bare file name (no directories) ending in ``.safetensors``; ``sha256`` is 64 lowercase hex
    digits; ``config`` is the model's constructor kwargs (also stored in the file's metadata); ``default``
    marks the checkpoint loaded for ``arch`` when the user names none (at most one per arch).
    """

    name: str
    arch: str
    file: str
    sha256: str
    config: dict
    license: str
    source: str
    description: str = ""
    default: bool = False

    def to_json(self) -> dict[str, Any]:
        """The registry entry for this spec (everything except ``name``, which is the entry's key)."""
        d = asdict(self)
        del d["name"]
        return d

    @classmethod
    def from_json(cls, name: str, entry: Mapping[str, Any], *, where: str = "registry") -> CheckpointSpec:
        """Build and validate the spec for registry entry ``entry``; WeightsError naming ``where`` if bad."""
        if not isinstance(entry, Mapping):
            raise WeightsError(f"{where}: entry '{name}' must be a JSON object")
        if "name" in entry and entry["name"] != name:
            raise WeightsError(f"{where}: entry '{name}' has a different 'name' field ({entry['name']!r})")
        missing = [k for k in ("arch", "file", "sha256", "config", "license", "source") if k not in entry]
        if missing:
            raise WeightsError(f"{where}: entry '{name}' is missing {', '.join(missing)}")
        unknown = sorted(
            set(entry)
            - {"name", "arch", "file", "sha256", "config", "license", "source", "description", "default"}
        )
        if unknown:
            raise WeightsError(f"{where}: entry '{name}' has unknown field(s) {', '.join(unknown)}")
        spec = cls(
            name=name,
            arch=entry["arch"],
            file=entry["file"],
            sha256=str(entry["sha256"]).lower(),
            config=entry["config"],
            license=entry["license"],
            source=entry["source"],
            description=entry.get("description", ""),
            default=entry.get("default", False),
        )
        try:
            spec.validate()
        except WeightsError as e:
            raise WeightsError(f"{where}: {e}") from None
        return spec

    def validate(self) -> None:
        """Raise WeightsError if a field is malformed (unknown arch, unsafe file name, bad sha256, ...)."""
        if not isinstance(self.name, str) or not self.name.strip():
            raise WeightsError(f"checkpoint name {self.name!r} is empty or not a string")
        if self.arch not in ARCHS:
            raise WeightsError(
                f"checkpoint '{self.name}': unknown arch {self.arch!r} (expected one of {', '.join(ARCHS)})"
            )
        if (
            not isinstance(self.file, str)
            or self.file in ("", ".", "..")
            or Path(self.file).name != self.file
            or "/" in self.file
            or "\\" in self.file
            or not self.file.endswith(".safetensors")
        ):
            raise WeightsError(
                f"checkpoint '{self.name}': file {self.file!r} must be a bare file name ending in "
                ".safetensors"
            )
        if not isinstance(self.sha256, str) or not _SHA256_RE.match(self.sha256):
            raise WeightsError(
                f"checkpoint '{self.name}': sha256 {self.sha256!r} is not 64 lowercase hex digits"
            )
        if not isinstance(self.config, dict):
            raise WeightsError(f"checkpoint '{self.name}': config must be a JSON object")
        for field_name in ("license", "source", "description"):
            if not isinstance(getattr(self, field_name), str):
                raise WeightsError(f"checkpoint '{self.name}': {field_name} must be a string")
        if not isinstance(self.default, bool):
            raise WeightsError(f"checkpoint '{self.name}': default must be true or false")


# a registry argument: a mapping name -> spec (used as is), a registry.json path, or None (load_registry())
RegistryArg = Mapping[str, CheckpointSpec] | str | os.PathLike | None


@dataclass
class Resolved:
    """A checkpoint file found on disk and verified against ``spec.sha256``.

    ``origin`` is where it was found: 'package' (the installed weights folder), 'cache' (:func:`cache_dir`),
    'hf-cache' (a copy in the Hugging Face cache) or 'hub' (downloaded just now into the cache).
    """

    spec: CheckpointSpec
    path: Path
    origin: str


# --------------------------------------------------------------------------------------------- locations


def package_weights_dir() -> Path:
    """The weights folder shipped with the package: the installed ``blurvid/weights/`` if it exists, else
    ``<repo>/weights`` next to the ``blurvid/`` source folder in a source checkout (beside its
    ``pyproject.toml``: an installed package's parent is site-packages, whose ``weights`` folder would
    be another package's). It may not exist."""
    here = Path(__file__).resolve().parent
    installed = here / "weights"
    if installed.is_dir() or not (here.parent / "pyproject.toml").is_file():
        return installed
    return here.parent / "weights"


def cache_dir() -> Path:
    """Where downloaded checkpoints live: env ``BLURVID_CACHE_DIR`` if set and non-empty, else
    ``platformdirs.user_cache_dir('blurvid') / 'weights'``. Not created here."""
    env = os.environ.get(ENV_CACHE_DIR, "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("blurvid")) / "weights"


# a Hub repo id: a namespace and a name of letters, digits, '-', '_' and '.', at most 96 characters each
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}")


def hub_repo_id(override: str | None = None) -> str:
    """The Hugging Face Hub repo to download checkpoints from: ``override`` if given, else env
    ``BLURVID_HF_REPO`` if set and non-empty, else :data:`DEFAULT_HF_REPO`; surrounding spaces are
    dropped. Raises WeightsError for text that is no repo id (``owner/name``; a URL, say)."""
    repo = _given_repo(override) or DEFAULT_HF_REPO
    if not _REPO_ID.fullmatch(repo):
        raise WeightsError(
            f"{repo!r} is not a Hugging Face Hub repo id (owner/name, e.g. {DEFAULT_HF_REPO}); "
            f"check --repo / {ENV_HF_REPO}"
        )
    return repo


def _given_repo(override: str | None) -> str:
    """The repo id text given, trimmed: ``override``, else env ``BLURVID_HF_REPO``; '' when neither."""
    return (override or "").strip() or os.environ.get(ENV_HF_REPO, "").strip()


def _hub_repo_or_error(override: str | None) -> tuple[str, WeightsError | None]:
    """:func:`hub_repo_id`, or the text given and why it is no repo id: a bad id matters only where the
    hub is needed (a download), not for the copies on disk."""
    try:
        return hub_repo_id(override), None
    except WeightsError as e:
        return _given_repo(override), e


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is truthy (same values huggingface_hub accepts: 1/ON/YES/TRUE)."""
    return os.environ.get(ENV_HF_OFFLINE, "").strip().upper() in {"1", "ON", "YES", "TRUE"}


# ---------------------------------------------------------------------------------------------- registry


def _read_registry_file(path: Path) -> dict[str, CheckpointSpec]:
    """Parse one registry.json; WeightsError naming the file on any problem. Enforces one default per arch."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))  # a BOM (Windows editors) too
    except FileNotFoundError:
        raise WeightsError(f"weights registry {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WeightsError(f"weights registry {path} is unreadable: {_one_line(e)}") from None
    if not isinstance(data, dict) or not isinstance(data.get("checkpoints"), dict):
        raise WeightsError(f'weights registry {path} must be a JSON object {{"checkpoints": {{...}}}}')
    if unknown := sorted(set(data) - {"checkpoints"}):
        raise WeightsError(
            f"weights registry {path}: unknown top-level key '{unknown[0]}' (only 'checkpoints')"
        )
    specs = {
        name: CheckpointSpec.from_json(name, entry, where=f"weights registry {path}")
        for name, entry in data.get("checkpoints", {}).items()
    }
    seen: dict[str, str] = {}
    for spec in specs.values():
        if spec.default:
            if spec.arch in seen:
                raise WeightsError(
                    f"weights registry {path}: both '{seen[spec.arch]}' and '{spec.name}' are marked "
                    f"default for arch '{spec.arch}'"
                )
            seen[spec.arch] = spec.name
    return specs


def load_registry(path: PathLike | None = None) -> dict[str, CheckpointSpec]:
    """Read the checkpoint registry, keyed by checkpoint name.

    With ``path=None``: ``package_weights_dir()/registry.json`` (an absent file counts as empty) merged with
    the extra registry named by env ``BLURVID_REGISTRY`` if set (which must exist). Extra entries replace
    same-named package entries, and an extra entry marked default for an arch takes the default from the
    package's entry for that arch. With an explicit ``path``: exactly that file (which must exist), no env.
    Raises WeightsError (naming the file) for a missing explicit file, bad JSON or an invalid entry.
    """
    if path is not None:
        return _read_registry_file(Path(path))
    base = package_weights_dir() / REGISTRY_FILE
    specs = _read_registry_file(base) if base.is_file() else {}
    extra_env = os.environ.get(ENV_REGISTRY, "").strip()
    if extra_env:
        extra = _read_registry_file(Path(extra_env).expanduser())
        new_default_archs = {s.arch for s in extra.values() if s.default}
        specs = {
            n: (
                CheckpointSpec(**{**asdict(s), "default": False})
                if s.default and s.arch in new_default_archs
                else s
            )
            for n, s in specs.items()
        }
        specs.update(extra)
    return specs


def _as_registry(registry: RegistryArg) -> Mapping[str, CheckpointSpec]:
    """The registry for ``registry``: a mapping as is, a path via :func:`load_registry`, None the default."""
    if registry is None:
        return load_registry()
    if isinstance(registry, Mapping):
        return registry
    return load_registry(registry)


def default_spec(arch: str, registry: RegistryArg = None) -> CheckpointSpec:
    """The checkpoint marked default for ``arch``. WeightsError for an unknown arch, or
    'no trained <arch> checkpoint is installed ...' when the registry has no default for it."""
    if arch not in ARCHS:
        raise WeightsError(f"unknown network {arch!r} (expected one of {', '.join(ARCHS)})")
    reg = _as_registry(registry)
    defaults = [s for s in reg.values() if s.arch == arch and s.default]
    if defaults:
        return sorted(defaults, key=lambda s: s.name)[0]
    others = sorted(s.name for s in reg.values() if s.arch == arch)
    hint = (
        f"available {arch} checkpoints: {', '.join(others)} (name one explicitly)"
        if others
        else f"train one and register it (or point {ENV_REGISTRY} at a registry that has one)"
    )
    raise WeightsError(
        f"no trained {arch} checkpoint is installed: the weights registry has no default '{arch}' entry; "
        f"{hint}"
    )


def _lookup(name_or_spec: str | CheckpointSpec, registry: RegistryArg) -> CheckpointSpec:
    """Spec for a name (a registry name, or an arch name meaning its default), or the spec itself."""
    if isinstance(name_or_spec, CheckpointSpec):
        return name_or_spec
    reg = _as_registry(registry)
    if name_or_spec in reg:
        return reg[name_or_spec]
    if name_or_spec in ARCHS:
        return default_spec(name_or_spec, reg)
    known = ", ".join(sorted(reg)) or "none"
    raise WeightsError(f"unknown checkpoint '{name_or_spec}' (known checkpoints: {known})")


def find_spec(name: str, registry: RegistryArg = None) -> CheckpointSpec:
    """The registry entry named ``name`` (an arch name means its default); WeightsError if none."""
    return _lookup(name, registry)


def register_checkpoint(spec: CheckpointSpec, registry_path: PathLike) -> None:
    """Add or replace ``spec`` in the registry.json at ``registry_path`` (created if absent).

    If ``spec.default`` is set, other entries of the same arch lose their default flag. The file is written
    atomically (temp file + ``os.replace``) as sorted, indented JSON. WeightsError for an invalid spec or an
    unreadable existing registry.
    """
    spec.validate()
    path = Path(registry_path)
    if path.exists():
        _read_registry_file(path)  # validates the existing content
        data = json.loads(path.read_text(encoding="utf-8-sig"))
        data.setdefault("checkpoints", {})
    else:
        data = {"checkpoints": {}}
    if spec.default:
        for name, entry in data["checkpoints"].items():
            if name != spec.name and entry.get("arch") == spec.arch and entry.get("default"):
                entry["default"] = False
    data["checkpoints"][spec.name] = spec.to_json()
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    with fsutil.atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------------------------- file utils


def _one_line(exc: BaseException | str, limit: int = 300) -> str:
    """An exception (or text) squeezed to one line of at most ``limit`` characters."""
    if isinstance(exc, str):
        text = exc
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def sha256_file(path: PathLike) -> str:
    """Lowercase hex sha256 of the file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _mismatch_message(path: Path, expected: str, got: str, what: str) -> str:
    return (
        f"{what}: file {path} is corrupt or modified (sha256 expected {expected}, got {got}); "
        f"delete it and download it again"
    )


# ---------------------------------------------------------------------------------------- safetensors I/O


def save_checkpoint(
    path: PathLike,
    state_dict: Mapping[str, torch.Tensor],
    *,
    arch: str,
    config: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> str:
    """Write ``state_dict`` as a safetensors checkpoint and return the file's sha256.

    Metadata: ``arch``, ``config`` (JSON), ``format_version`` and each ``extra`` item JSON-encoded under its
    own key. Tensors are saved detached, on CPU, contiguous (shared storage is cloned). The write is atomic
    (temp file beside ``path`` then ``os.replace``); parent folders are created. ValueError for an unknown
    arch, non-JSON config/extra, extra keys that collide with the reserved ones, or non-tensor values.
    """
    import torch
    from safetensors.torch import save_file

    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r} (expected one of {', '.join(ARCHS)})")
    try:
        metadata = {
            "arch": arch,
            "config": json.dumps(dict(config), sort_keys=True),
            "format_version": str(FORMAT_VERSION),
        }
        for key, value in (extra or {}).items():
            if key in _RESERVED_METADATA:
                raise ValueError(f"extra metadata key {key!r} is reserved")
            metadata[str(key)] = json.dumps(value, sort_keys=True)
    except TypeError as e:
        raise ValueError(f"checkpoint config/extra must be JSON-serialisable: {e}") from None

    tensors: dict[str, torch.Tensor] = {}
    seen_storage: set[int] = set()
    for key, value in state_dict.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise ValueError(f"state_dict entry {key!r} must map a str to a torch.Tensor")
        t = value.detach().to("cpu").contiguous()
        ptr = t.untyped_storage().data_ptr()
        if t.numel() and ptr in seen_storage:
            t = t.clone()
        elif t.numel():
            seen_storage.add(ptr)
        tensors[key] = t

    final = Path(path)
    with fsutil.atomic_path(final) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
        digest = sha256_file(tmp)
    return digest


def _check_safetensors_header(path: Path) -> None:
    """Cheap structural check of the safetensors header, so that a pickle / zip / truncated file gets a clear
    WeightsError before safetensors sees it."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(9)
    bad = f"{path} is not a safetensors checkpoint (corrupt, truncated, or another format such as a pickle)"
    if len(head) < 9:
        raise WeightsError(bad)
    (n,) = struct.unpack("<Q", head[:8])
    if n < 2 or n > _MAX_HEADER_BYTES or 8 + n > size or head[8:9] != b"{":
        raise WeightsError(bad)


def load_checkpoint(
    path: PathLike, *, expected_sha256: str | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`: returns ``(state_dict, metadata)``.

    Only safetensors is used (never ``torch.load``/pickle). If ``expected_sha256`` is given the file is
    hashed first and a mismatch raises WeightsError before anything is parsed. ``metadata`` has ``arch``
    (str), ``format_version`` (str, where the file records one: files without it are version 1),
    ``config`` parsed to a dict, and every other key JSON-decoded when it is
    valid JSON (else the raw string). WeightsError (naming the file) for a missing, unreadable, corrupt or
    non-safetensors file, missing blurvid metadata, or a newer format version.
    """
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"checkpoint file {p} does not exist")
    try:
        if expected_sha256 is not None:
            got = sha256_file(p)
            if got != expected_sha256.lower():
                raise WeightsError(_mismatch_message(p, expected_sha256.lower(), got, f"checkpoint {p.name}"))
        _check_safetensors_header(p)
    except OSError as e:
        raise WeightsError(f"cannot read checkpoint {p}: {_one_line(e)}") from None

    try:
        from safetensors import safe_open

        with safe_open(str(p), framework="pt", device="cpu") as f:
            raw_meta = dict(f.metadata() or {})
            state_dict = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types (and OSError/RuntimeError) on bad files
        raise WeightsError(f"{p} is not a valid safetensors checkpoint: {_one_line(e)}") from None

    if "arch" not in raw_meta or "config" not in raw_meta:
        raise WeightsError(f"{p} has no blurvid metadata (arch/config); it was not written by blurvid")
    try:
        version = int(raw_meta.get("format_version", "1"))
    except ValueError:
        raise WeightsError(f"{p} has an invalid format_version {raw_meta['format_version']!r}") from None
    if version > FORMAT_VERSION:
        raise WeightsError(
            f"{p} uses checkpoint format {version}, newer than this blurvid supports ({FORMAT_VERSION}); "
            "upgrade blurvid"
        )
    metadata: dict[str, Any] = {}
    for key, value in raw_meta.items():
        if key in ("arch", "format_version"):
            metadata[key] = value
            continue
        try:
            metadata[key] = json.loads(value)
        except (TypeError, ValueError):
            if key == "config":
                raise WeightsError(f"{p} has invalid config metadata (not JSON)") from None
            metadata[key] = value
    if not isinstance(metadata["config"], dict):
        raise WeightsError(f"{p} has invalid config metadata (not a JSON object)")
    return state_dict, metadata


# ----------------------------------------------------------------------------------------------- resolve


def _local_candidates(spec: CheckpointSpec, repo: str | None = None) -> list[tuple[str, Path]]:
    """Where a checkpoint may lie on disk, in order; a cache that is the package's folder counts once.
    With ``repo``, last: the Hugging Face cache's copy of the file from that repo, when it holds one."""
    package, cache = package_weights_dir() / spec.file, cache_dir() / spec.file
    found = [("package", package), ("cache", cache)]
    with contextlib.suppress(OSError):
        if cache.resolve() == package.resolve():
            found = [("package", package)]
    hub_copy = _hf_cache_copy(spec, repo) if repo else None
    return found + ([("hf-cache", hub_copy)] if hub_copy is not None else [])


def _hf_cache_copy(spec: CheckpointSpec, repo: str) -> Path | None:
    """The Hugging Face cache's copy of ``spec.file`` from hub ``repo`` (its latest revision there), found
    without the network; None when there is none or huggingface_hub cannot say."""
    try:
        from huggingface_hub import try_to_load_from_cache

        got = try_to_load_from_cache(repo_id=repo, filename=spec.file, cache_dir=_hf_hub_cache())
    except Exception:  # not installed, a bad repo id, an unreadable cache: no copy
        return None
    return Path(got) if isinstance(got, str) and Path(got).is_file() else None


def _hf_hub_cache() -> str:
    """The Hugging Face cache folder as the hub library chooses it (``HF_HUB_CACHE``, else ``HF_HOME``/hub,
    else its default), read now rather than when the library was imported."""

    def expanded(value: str) -> str:  # as the hub library reads them: `~` and $VAR / %VAR% expanded
        return os.path.expandvars(os.path.expanduser(value))

    if os.environ.get("HF_HUB_CACHE"):
        return expanded(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return os.path.join(expanded(os.environ["HF_HOME"]), "hub")
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


# hub endpoint -> (why it cannot be reached, time.monotonic() of the failure); trusted for UNREACHABLE_S
_UNREACHABLE: dict[str, tuple[str, float]] = {}
UNREACHABLE_S = 300.0  # a network that comes back (a notebook's long-lived process) is tried again


def _hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "").strip() or "https://huggingface.co"


def _hub_unreachable() -> str | None:
    """Why the hub surely cannot be reached, or None. Without the network the hub library retries for
    ~25 s before giving up, once per checkpoint; a host name that does not resolve says the same in
    milliseconds (not judged behind a proxy, which resolves names itself). A failure is remembered
    for :data:`UNREACHABLE_S` seconds."""
    endpoint = _hub_endpoint()
    known = _UNREACHABLE.get(endpoint)
    if known is not None and time.monotonic() - known[1] < UNREACHABLE_S:
        return known[0]
    proxies = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
    host = urlsplit(endpoint).hostname
    if host is None:
        return None
    reason = None
    if not any(os.environ.get(k) for k in proxies):
        try:
            socket.getaddrinfo(host, None)
        except OSError:
            reason = f"the hub could not be reached ({host} does not resolve: no network connection?)"
    # urllib (the probe's) ignores ALL_PROXY and SOCKS proxies, which the hub library follows
    other_route = any(os.environ.get(k) for k in ("ALL_PROXY", "all_proxy")) or any(
        os.environ.get(k, "").lower().startswith("socks") for k in proxies
    )
    if reason is None and not other_route:
        reason = _probe_hub(endpoint)
    if reason is not None:
        _UNREACHABLE[endpoint] = (reason, time.monotonic())
    return reason


HUB_PROBE_S = 8.0  # a hub (or proxy) that does not answer a HEAD request within this is given up


def _probe_hub(endpoint: str) -> str | None:
    """Why the hub at ``endpoint`` does not answer, or None when it answers anything (an HTTP error
    too). Where a firewall drops the traffic or a proxy is dead but names resolve, the hub library's
    retries under long timeouts kept a command silent for 6.5 minutes per checkpoint; this asks once,
    through the same proxies, and waits :data:`HUB_PROBE_S` at most for each step."""
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=HUB_PROBE_S).close()
    except urllib.error.HTTPError:
        return None  # it answered
    except (urllib.error.URLError, OSError) as e:
        why = e.reason if isinstance(e, urllib.error.URLError) else e
        if isinstance(why, (TimeoutError, socket.timeout)):
            return f"the hub could not be reached (no answer within {HUB_PROBE_S:g} s)"
        if isinstance(why, (ConnectionRefusedError, socket.gaierror)) or getattr(why, "errno", None) in (
            errno.ENETUNREACH,
            errno.EHOSTUNREACH,
        ):
            return f"the hub could not be reached ({_one_line(why, 120)})"
        return None  # another failure (TLS, say): the hub library's own message says more
    return None


def _download(spec: CheckpointSpec, repo: str) -> Path:
    """Download ``spec.file`` from hub ``repo`` into a staging folder inside the cache, verify it, and move it
    into ``cache_dir()/spec.file``. Any hub/network error or a sha mismatch is a WeightsError."""
    try:
        import huggingface_hub

        hf_hub_download = huggingface_hub.hf_hub_download  # first: loading it sets the hub logger's level
    except ImportError as e:
        raise WeightsError(f"checkpoint '{spec.name}': cannot download it: {_one_line(e)}") from None
    dest_dir = cache_dir()

    def failed(reason: str) -> WeightsError:
        return WeightsError(
            f"checkpoint '{spec.name}': could not download {spec.file} from Hugging Face Hub repo "
            f"'{repo}': {reason}; put the file into {dest_dir}, or set {ENV_HF_OFFLINE}=1 not to try the hub"
        )

    if dest_dir.exists() and not dest_dir.is_dir():  # first: the hub's advice would name it as a folder
        raise WeightsError(
            f"checkpoint '{spec.name}': the cache folder {dest_dir} is a file; set {ENV_CACHE_DIR} to a folder"
        )
    unreachable = _hub_unreachable()
    if unreachable is not None:
        raise failed(unreachable)
    existed = dest_dir.is_dir()
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        _sweep_stale_downloads(dest_dir)
        staging = Path(tempfile.mkdtemp(prefix=_DOWNLOAD_PREFIX, dir=dest_dir))
    except OSError as e:
        verb = "cannot write to" if existed else "cannot create"
        raise WeightsError(
            f"checkpoint '{spec.name}': {verb} cache folder {dest_dir}: {_one_line(e)}"
        ) from None
    log.info("downloading checkpoint %s (%s) from Hugging Face Hub repo '%s'", spec.name, spec.file, repo)
    hub_log = logging.getLogger("huggingface_hub")
    hub_level = hub_log.level
    hub_log.setLevel(logging.ERROR)  # its retries print a line each; the outcome is one line below
    try:
        try:
            got_path = hf_hub_download(repo_id=repo, filename=spec.file, local_dir=staging)
        except Exception as e:  # network errors, 404, auth, offline mode, ...
            reason = _hub_reason(e)
            if reason == _NO_HUB:  # the other checkpoints would wait as long for the same answer
                _UNREACHABLE[_hub_endpoint()] = (reason, time.monotonic())
            raise failed(reason) from None
        got_path = Path(got_path)
        if not got_path.is_file():
            raise WeightsError(
                f"checkpoint '{spec.name}': the hub download of {spec.file} from '{repo}' produced no file"
            )
        try:
            got = sha256_file(got_path)
        except OSError as e:
            raise WeightsError(
                f"checkpoint '{spec.name}': cannot read the download: {_one_line(e)}"
            ) from None
        if got != spec.sha256:
            raise WeightsError(
                f"checkpoint '{spec.name}': {spec.file} downloaded from hub repo '{repo}' does not match the "
                f"registry (sha256 expected {spec.sha256}, got {got}); the repo holds a different file "
                f"(check {ENV_HF_REPO} / the registry entry)"
            )
        final = dest_dir / spec.file
        try:
            fsutil.replace(got_path, final)  # the staging folder is inside the cache: an atomic rename
        except OSError as e:  # a folder of that name, a file another process holds open (Windows)
            raise WeightsError(
                f"checkpoint '{spec.name}': cannot put it at {final}: {_one_line(e)}"
            ) from None
        return final
    finally:
        hub_log.setLevel(hub_level)
        shutil.rmtree(staging, ignore_errors=True)


def _sweep_stale_downloads(folder: Path, hours: float = 24.0) -> None:
    """Remove staging folders of downloads that were killed (SIGKILL, power loss) over ``hours`` ago."""
    fsutil.sweep_stale(folder, hours * 3600, _DOWNLOAD_STAGE)


_DOWNLOAD_PREFIX = ".download-"  # a download's staging folder in the cache: mkdtemp's prefix
_DOWNLOAD_STAGE = re.compile(re.escape(_DOWNLOAD_PREFIX) + ".+")


_NO_HUB = "the hub could not be reached (no network connection?)"


def _hub_reason(e: BaseException) -> str:
    """What went wrong with a hub download, in words (the hub library's own messages run to paragraphs)."""
    kind = type(e).__name__
    if kind == "LocalEntryNotFoundError" or isinstance(e, (ConnectionError, TimeoutError)):
        return _NO_HUB
    if kind in ("RepositoryNotFoundError", "GatedRepoError"):
        return "no such repo, or it is private or gated"
    if kind in ("EntryNotFoundError", "RemoteEntryNotFoundError"):
        return "the repo has no such file"
    return _one_line(e, 200)


def resolve(
    name_or_spec: str | CheckpointSpec,
    *,
    repo_id: str | None = None,
    download: bool = True,
    registry: RegistryArg = None,
) -> Resolved:
    """Find a verified copy of a checkpoint on disk, downloading it if needed.

    ``name_or_spec`` is a registry name, an arch name ('dm', ...) meaning that arch's default checkpoint, or
    a :class:`CheckpointSpec`. ``registry`` is a mapping, a registry.json path, or None for
    :func:`load_registry`. Looks in (1) ``package_weights_dir()``, (2) ``cache_dir()``, (3) if ``download``
    and ``HF_HUB_OFFLINE`` is not set, the hub repo ``hub_repo_id(repo_id)`` (downloaded into the cache).
    Every candidate is sha256-verified. A local copy that fails verification is skipped (with a logged
    warning) only if a later location verifies; otherwise WeightsError names the bad file, expected vs got,
    and says to delete it. Not found, offline, hub errors: WeightsError with where it looked.
    """
    spec = _lookup(name_or_spec, registry)
    spec.validate()
    repo, repo_error = _hub_repo_or_error(repo_id)
    bad: list[tuple[Path, str]] = []  # (copy, why it is not used): never used
    looked: list[str] = []
    for origin, path in _local_candidates(spec, None if repo_error else repo):
        looked.append(str(path.parent))
        if not path.is_file():
            continue
        try:
            got = sha256_file(path)
        except OSError as e:
            bad.append((path, f"checkpoint '{spec.name}': {path} cannot be read: {_one_line(e)}"))
            continue
        if got == spec.sha256:
            _warn_skipped(spec, bad, path)
            return Resolved(spec=spec, path=path, origin=origin)
        bad.append((path, _mismatch_message(path, spec.sha256, got, f"checkpoint '{spec.name}'")))

    bad_msg = "; ".join(why for _, why in bad)
    if not download or hub_offline():
        why = (
            f"{ENV_HF_OFFLINE} is set (offline mode), so it was not downloaded from hub repo '{repo}': put "
            f"{spec.file} into {cache_dir()}, or unset {ENV_HF_OFFLINE} to download it"
            if download
            else "downloading is disabled"
        )
        if bad:
            raise WeightsError(f"{bad_msg}; no fresh copy was fetched: {why}")
        raise WeightsError(
            f"checkpoint '{spec.name}' ({spec.file}) not found; looked in {', '.join(looked)}; {why}"
        )
    try:
        if repo_error is not None:
            raise repo_error
        path = _download(spec, repo)
    except WeightsError as e:
        if bad:
            raise WeightsError(f"{bad_msg}; downloading a fresh copy also failed: {e}") from None
        raise
    _warn_skipped(spec, [(p, g) for p, g in bad if p != path], path)  # a bad cache copy was replaced
    return Resolved(spec=spec, path=path, origin="hub")


def _warn_skipped(spec: CheckpointSpec, bad: list[tuple[Path, str]], used: Path) -> None:
    """One warning when corrupt copies were passed over for the verified one at ``used``."""
    if bad:
        paths = ", ".join(str(p) for p, _ in bad)
        log.warning(
            "checkpoint %s: skipped the corrupt copy %s (delete it, or reinstall blurvid if it is the "
            "package's); using the verified %s",
            spec.name,
            paths,
            used,
        )


def load_pretrained(
    name_or_spec: str | CheckpointSpec,
    *,
    repo_id: str | None = None,
    download: bool = True,
    registry: RegistryArg = None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any], Resolved]:
    """:func:`resolve` then :func:`load_checkpoint`: returns ``(state_dict, metadata, resolved)``.
    WeightsError also when the file's metadata arch differs from the registry's arch."""
    resolved = resolve(name_or_spec, repo_id=repo_id, download=download, registry=registry)
    state_dict, metadata = load_checkpoint(resolved.path)  # sha already verified by resolve
    if metadata.get("arch") != resolved.spec.arch:
        raise WeightsError(
            f"checkpoint '{resolved.spec.name}': {resolved.path} holds a '{metadata.get('arch')}' network, "
            f"but the registry says '{resolved.spec.arch}'"
        )
    return state_dict, metadata, resolved


def list_checkpoints(registry: RegistryArg = None, repo_id: str | None = None) -> list[dict[str, Any]]:
    """One dict per registry entry (for ``blurvid models``), sorted by arch then name; never downloads.

    Keys: name, arch, default, origin ('package' | 'cache' | 'hf-cache' | 'missing'), path (str | None),
    verified (True / False / None when missing), unreadable (the OS's reason when the reported copy cannot
    be read at all, else None: not the same as a corrupt file), size (bytes | None), license, source,
    description, file, sha256, repo_id (where a download would come from). The reported copy is the one
    :func:`resolve` would use offline: the first local copy that verifies, else the first one present
    (verified False).
    """
    reg = _as_registry(registry)
    repo, repo_error = _hub_repo_or_error(repo_id)
    rows = []
    for spec in sorted(reg.values(), key=lambda s: (ARCHS.index(s.arch) if s.arch in ARCHS else 99, s.name)):
        found: tuple[str, Path, bool] | None = None
        unreadable = None
        for origin, path in _local_candidates(spec, None if repo_error else repo):
            if not path.is_file():
                continue
            try:
                ok, why = sha256_file(path) == spec.sha256, None
            except OSError as e:
                ok, why = False, _one_line(e, 120)
            if ok:
                found, unreadable = (origin, path, True), None
                break
            if found is None:
                found, unreadable = (origin, path, False), why
        rows.append(
            {
                "name": spec.name,
                "arch": spec.arch,
                "default": spec.default,
                "origin": found[0] if found else "missing",
                "path": str(found[1]) if found else None,
                "verified": found[2] if found else None,
                "unreadable": unreadable,
                "size": found[1].stat().st_size if found else None,
                "license": spec.license,
                "source": spec.source,
                "description": spec.description,
                "file": spec.file,
                "sha256": spec.sha256,
                "repo_id": repo,
            }
        )
    return rows


def prefetch(
    name: str | CheckpointSpec,
    repo_id: str | None = None,
    *,
    registry: RegistryArg = None,
    force: bool = False,
) -> Resolved:
    """Make a checkpoint available offline: download it from the hub into :func:`cache_dir` and verify it.

    If a verified copy is already present (package or cache) it is returned without downloading, unless
    ``force`` (then a fresh copy is downloaded into the cache, replacing the cached one only once verified).
    WeightsError when offline (``HF_HUB_OFFLINE``) and no verified copy exists, or when the download fails.
    """
    spec = _lookup(name, registry)
    spec.validate()
    if not force:
        return resolve(spec, repo_id=repo_id, download=True)
    if hub_offline():
        raise WeightsError(
            f"checkpoint '{spec.name}': cannot download {spec.file}: {ENV_HF_OFFLINE} is set (offline mode)"
        )
    return Resolved(spec=spec, path=_download(spec, hub_repo_id(repo_id)), origin="hub")
