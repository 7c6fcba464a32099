"""Tests for blurvid.weights: fast, tmp_path only, never the network (the hub is a local fake)."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from blurvid import weights as W
from blurvid.weights import CheckpointSpec, WeightsError

CONFIG = {"channels": 8, "levels": 2, "name": "tiny"}


def _state_dict() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "conv.weight": torch.randn(4, 3, 3, 3, generator=g),
        "conv.bias": torch.zeros(4),
        "steps": torch.arange(5, dtype=torch.int64),
        "half": torch.ones(2, 2, dtype=torch.float16),
    }


PROXIES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


_REAL_PROBE = W._probe_hub


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Isolated package dir, cache dir and hub; no env leaks from the host."""
    pkg = tmp_path / "pkg"
    cache = tmp_path / "cache"
    hub = tmp_path / "fakehub"
    for d in (pkg, cache, hub):
        d.mkdir()
    for var in ("BLURVID_HF_REPO", "BLURVID_REGISTRY", "HF_HUB_OFFLINE", "HF_HUB_CACHE", *PROXIES):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("BLURVID_CACHE_DIR", str(cache))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty Hugging Face cache
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # resolves without a network; never contacted
    monkeypatch.setattr(W, "_UNREACHABLE", {})
    monkeypatch.setattr(W, "_probe_hub", lambda endpoint: None)  # the fake hubs below do not listen
    monkeypatch.setattr(W, "package_weights_dir", lambda: pkg)
    return {"pkg": pkg, "cache": cache, "hub": hub, "tmp": tmp_path}


def _make(tmp_path: Path, name: str = "dm-test", arch: str = "dm", default: bool = False):
    """A tiny checkpoint file (in tmp_path/src) and its spec."""
    src = tmp_path / "src" / f"{name}.safetensors"
    sha = W.save_checkpoint(src, _state_dict(), arch=arch, config=CONFIG, extra={"step": 7, "note": "hi"})
    spec = CheckpointSpec(
        name=name,
        arch=arch,
        file=src.name,
        sha256=sha,
        config=CONFIG,
        license="MIT",
        source="unit test",
        description="tiny",
        default=default,
    )
    return src, spec


@pytest.fixture
def fake_hub(env, monkeypatch):
    """Replace huggingface_hub.hf_hub_download by a copy from env['hub']; records the calls."""
    import huggingface_hub

    calls: list[dict] = []

    def fake(repo_id, filename, *, local_dir=None, **kw):
        calls.append({"repo_id": repo_id, "filename": filename, "local_dir": local_dir, **kw})
        src = env["hub"] / repo_id.replace("/", "__") / filename
        if not src.is_file():
            raise FileNotFoundError(f"404 Client Error: {filename} not found in {repo_id}\nmore detail")
        dst = Path(local_dir) / filename
        shutil.copyfile(src, dst)
        return str(dst)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake)
    return calls


def _put_on_hub(env, repo_id: str, src: Path) -> None:
    d = env["hub"] / repo_id.replace("/", "__")
    d.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, d / src.name)


# ------------------------------------------------------------------------------------------ save / load


def test_module_import_is_light():
    import subprocess
    import sys

    code = (
        "import sys, blurvid.weights; "
        "print(sorted(m for m in ('torch', 'safetensors', 'huggingface_hub') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(W.__file__).resolve().parents[1],
    )
    assert out.stdout.strip() == "[]"


def test_weights_data_folder_has_no_init():
    # an installed blurvid/weights/__init__.py would shadow the blurvid.weights module
    shipped = W.package_weights_dir()  # installed blurvid/weights/, or <repo>/weights in a source checkout
    assert not (shipped / "__init__.py").exists()
    assert json.loads((shipped / "registry.json").read_text())["checkpoints"] is not None
    import blurvid.weights as module

    assert module.package_weights_dir is W.package_weights_dir  # the module, not a shadowing folder


def test_save_load_round_trip(tmp_path):
    sd = _state_dict()
    path = tmp_path / "sub" / "ck.safetensors"
    sha = W.save_checkpoint(path, sd, arch="rve", config=CONFIG, extra={"step": 7, "dataset": {"n": 3}})
    assert sha == W.sha256_file(path) and len(sha) == 64
    assert not [p for p in path.parent.iterdir() if p.name != path.name]  # no temp files left
    loaded, meta = W.load_checkpoint(path, expected_sha256=sha)
    assert loaded.keys() == sd.keys()
    for k in sd:
        assert loaded[k].dtype == sd[k].dtype
        assert torch.equal(loaded[k], sd[k])
    assert meta["arch"] == "rve"
    assert meta["config"] == CONFIG
    assert meta["format_version"] == str(W.FORMAT_VERSION)
    assert meta["step"] == 7 and meta["dataset"] == {"n": 3}


def test_save_shared_and_noncontiguous_tensors(tmp_path):
    base = torch.arange(12.0).reshape(3, 4)
    sd = {"a": base, "tied": base, "t": base.t()}
    path = tmp_path / "c.safetensors"
    W.save_checkpoint(path, sd, arch="dm", config={})
    loaded, _ = W.load_checkpoint(path)
    assert all(torch.equal(loaded[k], sd[k]) for k in sd)


def test_save_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        W.save_checkpoint(tmp_path / "x.safetensors", _state_dict(), arch="nope", config={})
    with pytest.raises(ValueError):
        W.save_checkpoint(tmp_path / "x.safetensors", _state_dict(), arch="dm", config={"f": object()})
    with pytest.raises(ValueError):
        W.save_checkpoint(tmp_path / "x.safetensors", _state_dict(), arch="dm", config={}, extra={"arch": 1})
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_sha_mismatch_names_file(tmp_path, damage):
    path = tmp_path / "ck.safetensors"
    sha = W.save_checkpoint(path, _state_dict(), arch="dm", config=CONFIG)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError) as ei:
        W.load_checkpoint(path, expected_sha256=sha)
    msg = str(ei.value)
    assert "ck.safetensors" in msg and sha in msg and W.sha256_file(path) in msg
    assert "\n" not in msg


def test_truncated_without_sha_is_weights_error(tmp_path):
    path = tmp_path / "ck.safetensors"
    W.save_checkpoint(path, _state_dict(), arch="dm", config=CONFIG)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(WeightsError, match=r"ck\.safetensors"):
        W.load_checkpoint(path)


class _Evil:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.mark.parametrize("how", ["pickle", "torch.save"])
def test_pickle_is_never_executed(tmp_path, how):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.safetensors"
    if how == "pickle":
        path.write_bytes(pickle.dumps({"w": _Evil(str(marker))}))
    else:
        torch.save({"w": _Evil(str(marker))}, path)
    assert not marker.exists()
    with pytest.raises(WeightsError, match=r"evil\.safetensors.*not a safetensors"):
        W.load_checkpoint(path)
    assert not marker.exists()
    if how == "pickle":  # sanity: the payload really does run when unpickled
        pickle.loads(path.read_bytes())
        assert marker.exists()


@pytest.mark.parametrize("payload", [b"", b"abc", b'\x05\x00\x00\x00\x00\x00\x00\x00{"a":', b"\x00" * 64])
def test_garbage_is_weights_error(tmp_path, payload):
    path = tmp_path / "g.safetensors"
    path.write_bytes(payload)
    with pytest.raises(WeightsError, match=r"g\.safetensors"):
        W.load_checkpoint(path)


def test_foreign_safetensors_without_metadata(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "foreign.safetensors"
    save_file({"x": torch.zeros(2)}, str(path))
    with pytest.raises(WeightsError, match="no blurvid metadata"):
        W.load_checkpoint(path)


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        W.load_checkpoint(tmp_path / "nope.safetensors")


# --------------------------------------------------------------------------------------------- locations


def test_locations_env(monkeypatch, tmp_path):
    monkeypatch.setenv("BLURVID_CACHE_DIR", str(tmp_path / "c"))
    assert W.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("BLURVID_CACHE_DIR")
    assert W.cache_dir().name == "weights"
    monkeypatch.delenv("BLURVID_HF_REPO", raising=False)
    assert W.hub_repo_id() == W.DEFAULT_HF_REPO == "blurvid/blurvid-weights"
    monkeypatch.setenv("BLURVID_HF_REPO", "me/mine")
    assert W.hub_repo_id() == "me/mine"
    assert W.hub_repo_id("x/y") == "x/y"
    # installed: blurvid/weights/ beside this module; source checkout: <repo>/weights next to blurvid/
    here = Path(W.__file__).resolve().parent
    assert W.package_weights_dir() in (here / "weights", here.parent / "weights")


# ----------------------------------------------------------------------------------------------- resolve


def test_package_beats_cache(env):
    src, spec = _make(env["tmp"])
    shutil.copy(src, env["pkg"])
    shutil.copy(src, env["cache"])
    r = W.resolve(spec, download=False)
    assert r.origin == "package" and r.path == env["pkg"] / spec.file


def test_cache_used_when_package_lacks_it(env):
    src, spec = _make(env["tmp"])
    shutil.copy(src, env["cache"])
    r = W.resolve(spec.name, download=False, registry={spec.name: spec})
    assert r.origin == "cache" and r.path == env["cache"] / spec.file


def test_resolve_by_registry_path_and_arch_name(env):
    src, spec = _make(env["tmp"], default=True)
    reg = env["tmp"] / "registry.json"
    W.register_checkpoint(spec, reg)
    shutil.copy(src, env["pkg"])
    assert W.resolve(spec.name, registry=reg, download=False).spec == spec
    assert W.resolve("dm", registry=reg, download=False).spec == spec  # arch name -> its default
    with pytest.raises(WeightsError, match="unknown checkpoint 'nope'"):
        W.resolve("nope", registry=reg)


def test_corrupt_package_copy_raises_when_nothing_else(env):
    src, spec = _make(env["tmp"])
    (env["pkg"] / spec.file).write_bytes(src.read_bytes()[:100])
    with pytest.raises(WeightsError) as ei:
        W.resolve(spec, download=False)
    msg = str(ei.value)
    assert spec.file in msg and spec.sha256 in msg and "delete" in msg


def test_corrupt_cache_copy_skipped_only_if_hub_verifies(env, fake_hub):
    src, spec = _make(env["tmp"])
    bad = env["cache"] / spec.file
    bad.write_bytes(b"garbage")
    # hub lacks it -> error names the corrupt file and the failed download
    with pytest.raises(WeightsError) as ei:
        W.resolve(spec)
    assert str(bad) in str(ei.value) and "download" in str(ei.value)
    # hub has it -> fresh verified copy replaces the bad one
    _put_on_hub(env, W.DEFAULT_HF_REPO, src)
    r = W.resolve(spec)
    assert r.origin == "hub" and r.path == bad and W.sha256_file(bad) == spec.sha256


def test_hub_fallback(env, fake_hub, monkeypatch):
    src, spec = _make(env["tmp"])
    _put_on_hub(env, "override/repo", src)
    _put_on_hub(env, "env/repo", src)
    _put_on_hub(env, W.DEFAULT_HF_REPO, src)

    r = W.resolve(spec, repo_id="override/repo")
    assert r.origin == "hub" and r.path == env["cache"] / spec.file and r.path.is_file()
    assert fake_hub[-1]["repo_id"] == "override/repo" and fake_hub[-1]["filename"] == spec.file
    assert sorted(p.name for p in env["cache"].iterdir()) == [spec.file]  # staging folder cleaned up
    _, meta = W.load_checkpoint(r.path, expected_sha256=spec.sha256)
    assert meta["config"] == CONFIG

    # now cached: no further hub call
    assert W.resolve(spec).origin == "cache" and len(fake_hub) == 1

    r.path.unlink()
    monkeypatch.setenv("BLURVID_HF_REPO", "env/repo")
    assert W.resolve(spec).origin == "hub"
    assert fake_hub[-1]["repo_id"] == "env/repo"
    r.path.unlink()
    assert W.resolve(spec, repo_id="override/repo").origin == "hub"
    assert fake_hub[-1]["repo_id"] == "override/repo"  # override beats env


def test_hub_file_with_wrong_sha_is_not_cached(env, fake_hub):
    _, spec = _make(env["tmp"])
    # other weights: the same weights under another name could be the same bytes (safetensors orders its
    # header's metadata at random, so the sha only usually differed; the test failed 1 run in ~20-40)
    other = env["tmp"] / "src" / "other.safetensors"
    W.save_checkpoint(other, {k: v + 1 for k, v in _state_dict().items()}, arch="dm", config=CONFIG)
    d = env["hub"] / W.DEFAULT_HF_REPO.replace("/", "__")
    d.mkdir(parents=True)
    shutil.copyfile(other, d / spec.file)
    with pytest.raises(WeightsError, match="does not match the registry"):
        W.resolve(spec)
    assert not (env["cache"] / spec.file).exists()
    assert not list(env["cache"].iterdir())


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_offline_never_calls_hub(env, fake_hub, monkeypatch, value):
    src, spec = _make(env["tmp"])
    _put_on_hub(env, W.DEFAULT_HF_REPO, src)
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    with pytest.raises(WeightsError) as ei:
        W.resolve(spec)
    msg = str(ei.value)
    assert "offline" in msg and "HF_HUB_OFFLINE" in msg
    assert str(env["cache"]) in msg and str(env["pkg"]) in msg
    assert fake_hub == []
    with pytest.raises(WeightsError, match="offline"):
        W.prefetch(spec, force=True)
    assert fake_hub == []


def test_download_false_never_calls_hub(env, fake_hub):
    _, spec = _make(env["tmp"])
    with pytest.raises(WeightsError, match="not found"):
        W.resolve(spec, download=False)
    assert fake_hub == []


def test_hub_exception_is_weights_error(env, fake_hub):
    _, spec = _make(env["tmp"])  # not on the fake hub -> it raises
    with pytest.raises(WeightsError) as ei:
        W.resolve(spec)
    msg = str(ei.value)
    assert spec.name in msg and "404" in msg and "\n" not in msg
    assert len(fake_hub) == 1


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ConnectionError("Network is unreachable"), "the hub could not be reached"),
        ("LocalEntryNotFoundError", "the hub could not be reached"),  # what the hub raises with no network
        ("RepositoryNotFoundError", "no such repo"),
        (RuntimeError("odd"), "odd"),
    ],
)
def test_a_failed_download_is_one_short_line_with_what_to_do(env, monkeypatch, caplog, error, reason):
    import logging

    import huggingface_hub

    def boom(**kw):
        logging.getLogger("huggingface_hub").warning("Retrying in 8s [Retry 5/5].")  # kept off stderr
        if isinstance(error, str):  # the hub's error classes, known by name (their signatures vary)
            raise type(error, (Exception,), {})("a paragraph of the hub's own words")
        raise error

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", boom)
    _, spec = _make(env["tmp"])
    with caplog.at_level(logging.INFO), pytest.raises(WeightsError, match=reason) as ei:
        W.resolve(spec)
    msg = str(ei.value)
    assert "paragraph" not in msg and "HF_HUB_OFFLINE=1" in msg and str(W.cache_dir()) in msg
    assert [r.getMessage() for r in caplog.records] == [
        f"downloading checkpoint {spec.name} ({spec.file}) from Hugging Face Hub repo '{W.DEFAULT_HF_REPO}'"
    ]


def test_prefetch(env, fake_hub):
    src, spec = _make(env["tmp"])
    _put_on_hub(env, W.DEFAULT_HF_REPO, src)
    reg = {spec.name: spec}
    r = W.prefetch(spec.name, registry=reg)
    assert r.origin == "hub" and (env["cache"] / spec.file).is_file()
    assert W.prefetch(spec.name, registry=reg).origin == "cache" and len(fake_hub) == 1
    assert W.prefetch(spec.name, registry=reg, force=True).origin == "hub" and len(fake_hub) == 2


def test_load_pretrained_checks_arch(env):
    src, spec = _make(env["tmp"], arch="bie")
    shutil.copy(src, env["pkg"])
    sd, meta, r = W.load_pretrained(spec, download=False)
    assert meta["arch"] == "bie" and r.origin == "package" and torch.equal(sd["steps"], torch.arange(5))
    lying = CheckpointSpec(**{**spec.to_json(), "name": spec.name, "arch": "rvd"})
    with pytest.raises(WeightsError, match="registry says 'rvd'"):
        W.load_pretrained(lying, download=False)


# ---------------------------------------------------------------------------------------------- registry


def test_default_spec(env):
    _, spec = _make(env["tmp"])
    with pytest.raises(WeightsError, match="no trained dm checkpoint is installed"):
        W.default_spec("dm", registry={})
    with pytest.raises(WeightsError, match=r"no trained dm checkpoint is installed.*dm-test"):
        W.default_spec("dm", registry={spec.name: spec})
    _, dspec = _make(env["tmp"], name="dm-main", default=True)
    assert W.default_spec("dm", registry={spec.name: spec, dspec.name: dspec}) == dspec
    with pytest.raises(WeightsError, match="unknown network"):
        W.default_spec("xyz", registry={})


def test_shipped_registry_is_empty_and_valid(monkeypatch):
    monkeypatch.delenv("BLURVID_REGISTRY", raising=False)
    reg = W.load_registry()
    assert isinstance(reg, dict)
    for arch in W.ARCHS:
        if not any(s.arch == arch and s.default for s in reg.values()):
            with pytest.raises(WeightsError, match=f"no trained {arch} checkpoint"):
                W.default_spec(arch)


def test_register_checkpoint_round_trip(env):
    reg_path = env["tmp"] / "reg" / "registry.json"
    _, a = _make(env["tmp"], name="dm-a", default=True)
    _, b = _make(env["tmp"], name="dm-b", default=True)
    _, c = _make(env["tmp"], name="rve-a", arch="rve", default=True)
    W.register_checkpoint(a, reg_path)
    assert W.load_registry(reg_path) == {"dm-a": a}
    W.register_checkpoint(c, reg_path)
    W.register_checkpoint(b, reg_path)  # takes over the dm default
    reg = W.load_registry(reg_path)
    assert set(reg) == {"dm-a", "dm-b", "rve-a"}
    assert reg["dm-b"] == b and reg["rve-a"] == c and reg["dm-a"].default is False
    assert W.default_spec("dm", reg_path) == b
    # replace an entry
    b2 = CheckpointSpec(**{**b.to_json(), "name": b.name, "description": "v2"})
    W.register_checkpoint(b2, reg_path)
    assert W.load_registry(reg_path)["dm-b"].description == "v2"
    text = reg_path.read_text()
    data = json.loads(text)
    assert text == json.dumps(data, indent=2, sort_keys=True) + "\n"
    assert [p.name for p in reg_path.parent.iterdir()] == ["registry.json"]


def test_register_rejects_bad_spec(tmp_path):
    good = dict(
        name="x", arch="dm", file="x.safetensors", sha256="0" * 64, config={}, license="MIT", source="t"
    )
    for bad in ({"arch": "zz"}, {"file": "../x.safetensors"}, {"file": "x.pt"}, {"sha256": "abc"}):
        with pytest.raises(WeightsError):
            W.register_checkpoint(CheckpointSpec(**{**good, **bad}), tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()


def test_registry_errors(tmp_path):
    p = tmp_path / "registry.json"
    with pytest.raises(WeightsError, match="does not exist"):
        W.load_registry(p)
    p.write_text("{not json")
    with pytest.raises(WeightsError, match=r"registry\.json"):
        W.load_registry(p)
    entry = dict(
        arch="dm", file="a.safetensors", sha256="a" * 64, config={}, license="MIT", source="t", default=True
    )
    p.write_text(json.dumps({"checkpoints": {"a": entry, "b": {**entry, "file": "b.safetensors"}}}))
    with pytest.raises(WeightsError, match="both 'a' and 'b'"):
        W.load_registry(p)
    p.write_text(json.dumps({"checkpoints": {"a": {"arch": "dm"}}}))
    with pytest.raises(WeightsError, match="missing"):
        W.load_registry(p)
    for doc in ({}, {"checkpoint": {}}, {"checkpoints": {}, "version": 2}):
        p.write_text(json.dumps(doc))
        with pytest.raises(WeightsError, match="checkpoints"):
            W.load_registry(p)


def test_an_upper_case_sha256_in_the_registry_is_taken_in_lower_case(env):
    """sha256sum prints lowercase, other tools (PowerShell's Get-FileHash) uppercase: both name the file."""
    src, spec = _make(env["tmp"])
    shutil.copy(src, env["cache"])
    entry = {**spec.to_json(), "sha256": spec.sha256.upper()}
    reg = env["tmp"] / "registry.json"
    reg.write_text(json.dumps({"checkpoints": {spec.name: entry}}))
    assert entry["sha256"] != spec.sha256  # the file's digest has letters: the case differs
    loaded = W.load_registry(reg)[spec.name]
    assert loaded.sha256 == spec.sha256 and loaded == spec
    r = W.resolve(spec.name, registry=reg, download=False)
    assert (r.origin, r.path) == ("cache", env["cache"] / spec.file)  # and the copy verifies against it


def test_offline_with_only_a_corrupt_copy_says_why_none_was_fetched(env, monkeypatch):
    _, spec = _make(env["tmp"])
    (env["cache"] / spec.file).write_bytes(b"corrupt")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError, match="no fresh copy was fetched: HF_HUB_OFFLINE is set"):
        W.resolve(spec)


def _put_in_hf_cache(env, repo_id: str, src: Path, content: bytes | None = None) -> Path:
    """``src`` in a Hugging Face cache under env's HF_HOME, laid out as huggingface_hub writes it."""
    repo = env["tmp"] / "hf" / "hub" / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text("a" * 40)
    (snap / src.name).write_bytes(src.read_bytes() if content is None else content)
    return snap / src.name


def test_a_copy_in_the_hugging_face_cache_is_used_also_offline(env, monkeypatch, fake_hub):
    """A checkpoint fetched with the `hf` tool, or kept in a shared HF cache, is found without the network."""
    src, spec = _make(env["tmp"])
    copy = _put_in_hf_cache(env, W.DEFAULT_HF_REPO, src)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = W.resolve(spec)
    assert (r.origin, r.path) == ("hf-cache", copy) and fake_hub == []
    row = next(x for x in W.list_checkpoints({spec.name: spec}))
    assert (row["origin"], row["verified"]) == ("hf-cache", True)
    copy.write_bytes(b"corrupt")  # a bad copy there is never used, and says so
    with pytest.raises(WeightsError, match="sha256"):
        W.resolve(spec)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    _put_on_hub(env, W.DEFAULT_HF_REPO, src)
    assert W.resolve(spec).origin == "hub" and len(fake_hub) == 1  # online: a verified copy is fetched


def test_the_blurvid_cache_s_copy_comes_before_the_hugging_face_cache_s(env, fake_hub):
    """Both caches hold a verified copy: resolve() and `blurvid models` use and report the user cache's
    (it comes first); a corrupt copy there is passed over for the Hugging Face cache's."""
    src, spec = _make(env["tmp"])
    hf_copy = _put_in_hf_cache(env, W.DEFAULT_HF_REPO, src)
    ours = env["cache"] / spec.file
    shutil.copy(src, ours)
    r = W.resolve(spec)
    assert (r.origin, r.path) == ("cache", ours)
    row = W.list_checkpoints({spec.name: spec})[0]
    assert (row["origin"], row["path"], row["verified"]) == ("cache", str(ours), True)
    ours.write_bytes(b"corrupt")
    r = W.resolve(spec)
    assert (r.origin, r.path) == ("hf-cache", hf_copy)
    row = W.list_checkpoints({spec.name: spec})[0]
    assert (row["origin"], row["path"], row["verified"]) == ("hf-cache", str(hf_copy), True)
    assert fake_hub == []  # a copy on disk: never the hub


def test_a_hub_that_cannot_be_reached_is_tried_once(env, monkeypatch, fake_hub):
    """Without the network the hub library retries for ~25 s per file: a host name that does not resolve
    fails at once, and a connection failure is remembered for the other checkpoints."""
    import socket

    _, spec = _make(env["tmp"])
    _, other = _make(env["tmp"], name="dm-other")
    lookups: list[str] = []

    def no_dns(host, *a, **kw):
        lookups.append(host)
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    for s in (spec, other):
        with pytest.raises(WeightsError, match=r"127\.0\.0\.1 does not resolve: no network connection\?"):
            W.resolve(s)
    assert fake_hub == [] and lookups == ["127.0.0.1"]
    monkeypatch.setattr(W, "_UNREACHABLE", {})
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")  # behind a proxy the name is not judged here
    with pytest.raises(WeightsError, match="404"):
        W.resolve(spec)
    assert len(fake_hub) == 1 and lookups == ["127.0.0.1"]


def test_a_hub_that_never_answers_is_given_up_in_seconds(env, monkeypatch):
    """A firewall that drops traffic (names still resolve) kept `blurvid download` silent for 6.5 minutes
    per checkpoint in the hub library's retries."""
    import socket
    import time

    import huggingface_hub

    monkeypatch.setattr(W, "_probe_hub", _REAL_PROBE)
    monkeypatch.setattr(W, "HUB_PROBE_S", 0.5)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda **kw: pytest.fail("the hub was asked"))
    _, spec = _make(env["tmp"])
    silent = socket.socket()  # listens (the kernel completes the connection) but never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    refusing = socket.socket()
    refusing.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    try:
        for sock, why in ((silent, r"no answer within 0\.5 s"), (refusing, "Connection refused")):
            monkeypatch.setattr(W, "_UNREACHABLE", {})
            monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{sock.getsockname()[1]}")
            start = time.monotonic()
            with pytest.raises(WeightsError, match=f"the hub could not be reached \\(.*{why}"):
                W.resolve(spec)
            assert time.monotonic() - start < 5
    finally:
        silent.close()
        refusing.close()


def test_a_connection_failure_is_not_retried_for_the_next_checkpoint(env, monkeypatch):
    import huggingface_hub

    calls = []

    def down(**kw):
        calls.append(kw["filename"])
        raise ConnectionError("Network is unreachable")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", down)
    for name in ("dm-a", "dm-b"):
        _, s = _make(env["tmp"], name=name)
        with pytest.raises(WeightsError, match="the hub could not be reached"):
            W.resolve(s)
    assert calls == ["dm-a.safetensors"]
    import time

    later = time.monotonic() + W.UNREACHABLE_S + 1  # a network that comes back is tried again
    monkeypatch.setattr(time, "monotonic", lambda: later)
    with pytest.raises(WeightsError, match="the hub could not be reached"):
        W.resolve(s)
    assert calls == ["dm-a.safetensors", "dm-b.safetensors"]


def test_a_cache_that_is_the_package_folder_is_checked_once(env, monkeypatch, caplog):
    monkeypatch.setenv("BLURVID_CACHE_DIR", str(env["pkg"]))
    _, spec = _make(env["tmp"])
    assert [origin for origin, _ in W._local_candidates(spec)] == ["package"]


def test_no_hub_library_leaves_no_staging_folder(env, monkeypatch):
    import sys

    _, spec = _make(env["tmp"])
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails
    with pytest.raises(WeightsError, match="cannot download it"):
        W.resolve(spec)
    assert list(env["cache"].iterdir()) == []


def test_env_registry_merged(env, monkeypatch):
    _, a = _make(env["tmp"], name="dm-pkg", default=True)
    _, b = _make(env["tmp"], name="dm-mine", default=True)
    _, c = _make(env["tmp"], name="bie-pkg", arch="bie", default=True)
    W.register_checkpoint(a, env["pkg"] / "registry.json")
    W.register_checkpoint(c, env["pkg"] / "registry.json")
    assert set(W.load_registry()) == {"dm-pkg", "bie-pkg"}
    extra = env["tmp"] / "mine.json"
    W.register_checkpoint(b, extra)
    monkeypatch.setenv("BLURVID_REGISTRY", str(extra))
    reg = W.load_registry()
    assert set(reg) == {"dm-pkg", "dm-mine", "bie-pkg"}
    assert W.default_spec("dm", reg) == b and W.default_spec("bie", reg) == c
    assert reg["dm-pkg"].default is False


def test_list_checkpoints(env, fake_hub):
    src_a, a = _make(env["tmp"], name="dm-a", default=True)
    src_b, b = _make(env["tmp"], name="rve-b", arch="rve")
    _, c = _make(env["tmp"], name="bie-c", arch="bie")
    src_d, d = _make(env["tmp"], name="rvd-d", arch="rvd")
    shutil.copy(src_a, env["pkg"])
    shutil.copy(src_b, env["cache"])
    (env["pkg"] / d.file).write_bytes(src_d.read_bytes()[:-1])  # corrupt
    rows = {r["name"]: r for r in W.list_checkpoints({s.name: s for s in (a, b, c, d)}, repo_id="me/x")}
    assert [r["name"] for r in W.list_checkpoints({s.name: s for s in (d, c, b, a)})] == [
        "dm-a",
        "rve-b",
        "rvd-d",
        "bie-c",
    ]
    assert rows["dm-a"]["origin"] == "package" and rows["dm-a"]["verified"] is True
    assert rows["dm-a"]["default"] is True
    assert rows["dm-a"]["size"] == os.path.getsize(src_a)
    assert rows["rve-b"]["origin"] == "cache" and rows["rve-b"]["verified"] is True
    assert rows["bie-c"]["origin"] == "missing" and rows["bie-c"]["verified"] is None
    assert rows["bie-c"]["path"] is None and rows["bie-c"]["size"] is None
    assert rows["rvd-d"]["origin"] == "package" and rows["rvd-d"]["verified"] is False
    assert rows["dm-a"]["license"] == "MIT" and rows["dm-a"]["source"] == "unit test"
    assert rows["dm-a"]["repo_id"] == "me/x"
    # a good cache copy wins over a corrupt package copy, like resolve()
    shutil.copy(src_d, env["cache"])
    row = W.list_checkpoints({d.name: d})[0]
    assert row["origin"] == "cache" and row["verified"] is True
    assert fake_hub == []  # never downloads


def test_a_killed_download_s_staging_folder_is_swept_a_day_later(env, fake_hub, monkeypatch):
    src, spec = _make(env["tmp"])
    _put_on_hub(env, W.DEFAULT_HF_REPO, src)
    old, recent = env["cache"] / ".download-old", env["cache"] / ".download-recent"
    for d in (old, recent):
        (d / ".cache").mkdir(parents=True)
        (d / ".cache" / "x.incomplete").write_bytes(b"partial")
    # two days on (a status-change time cannot be set back), and the other download is touched then
    later = time.time() + 2 * 86400
    monkeypatch.setattr(W.fsutil, "time", SimpleNamespace(time=lambda: later, sleep=time.sleep))
    os.utime(recent, (later - 60,) * 2)
    W.resolve(spec)
    assert not old.exists() and recent.exists()  # a download in progress elsewhere is left alone


def test_saved_checkpoints_get_the_umask_s_permissions(tmp_path):
    """A checkpoint is a normal file (0666 less the umask), made without changing the process umask."""
    old = os.umask(0o027)
    try:
        W.save_checkpoint(tmp_path / "x.safetensors", {"w": torch.zeros(2)}, arch="dm", config={})
        assert (tmp_path / "x.safetensors").stat().st_mode & 0o777 == 0o640
        assert os.umask(0o027) == 0o027
    finally:
        os.umask(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.safetensors"]  # no temporary file left


def test_a_download_that_cannot_be_put_in_place_is_one_line(env, fake_hub):
    """A folder with the checkpoint's name in the cache: os.replace raised IsADirectoryError (a traceback)."""
    src, spec = _make(env["tmp"])
    _put_on_hub(env, W.DEFAULT_HF_REPO, src)
    (env["cache"] / spec.file / "sub").mkdir(parents=True)
    with pytest.raises(
        WeightsError, match=rf"checkpoint 'dm-test': cannot put it at {env['cache'] / spec.file}: "
    ):
        W.resolve(spec)
    assert sorted(p.name for p in env["cache"].iterdir()) == [spec.file]  # no staging folder left


@pytest.mark.parametrize("bad", ["https://huggingface.co/me/w", "bad repo!!", "me", "me/w/x"])
def test_a_repo_id_is_checked_and_trimmed(env, monkeypatch, bad):
    """A URL or a typo reached the hub library (its validation text under a 'downloading' line), and
    `BLURVID_HF_REPO=" me/w "` was not trimmed when it came in through the --repo option's envvar."""
    assert W.hub_repo_id(" me/w ") == "me/w"
    monkeypatch.setenv("BLURVID_HF_REPO", " me/w.v2 ")
    assert W.hub_repo_id() == "me/w.v2"
    with pytest.raises(
        WeightsError, match=rf"^'{re.escape(bad)}' is not a Hugging Face Hub repo id \(owner/name"
    ):
        W.hub_repo_id(bad)
    # the copies on disk do not need the hub: a bad id is an error only where a download is needed
    src, spec = _make(env["tmp"])
    monkeypatch.setenv("BLURVID_HF_REPO", bad)
    with pytest.raises(WeightsError, match="is not a Hugging Face Hub repo id"):
        W.resolve(spec)
    shutil.copy(src, env["pkg"])
    assert W.resolve(spec).origin == "package"
    assert [r["origin"] for r in W.list_checkpoints({spec.name: spec})] == ["package"]


def test_a_registry_and_a_config_with_a_byte_order_mark_are_read(env, tmp_path):
    """Windows editors (Notepad, PowerShell 5) start UTF-8 files with a BOM: 'registry unreadable'."""
    _, spec = _make(env["tmp"])
    reg = tmp_path / "reg.json"
    reg.write_text(json.dumps({"checkpoints": {spec.name: spec.to_json()}}), encoding="utf-8-sig")
    assert list(W.load_registry(reg)) == [spec.name]


def test_the_hugging_face_cache_folder_is_expanded_as_the_hub_library_does(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HF_HOME", "~/hf")
    assert W._hf_hub_cache() == str(tmp_path / "hf" / "hub")
    monkeypatch.setenv("WHERE", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("HF_HUB_CACHE", "$WHERE/hub")
    assert W._hf_hub_cache() == str(tmp_path / "elsewhere" / "hub")


@pytest.mark.parametrize(
    "proxy", [("ALL_PROXY", "http://proxy:3128"), ("HTTPS_PROXY", "socks5://proxy:1080")]
)
def test_the_hub_probe_is_skipped_where_urllib_would_not_take_the_proxy(env, monkeypatch, fake_hub, proxy):
    """urllib ignores ALL_PROXY and SOCKS: it went direct, timed out where only the proxy works, and every
    download was refused although the hub library (which follows them) would have succeeded."""
    monkeypatch.setattr(W, "_probe_hub", lambda endpoint: pytest.fail("probed"))
    monkeypatch.setenv(*proxy)
    src, spec = _make(env["tmp"])
    _put_on_hub(env, W.DEFAULT_HF_REPO, src)
    assert W.resolve(spec).origin == "hub"


def test_a_cache_path_that_is_a_file_is_named_as_such_before_the_hub(env, fake_hub, monkeypatch):
    """It used to say: could not download …; put the file into <that file>."""
    src, spec = _make(env["tmp"])
    _put_on_hub(env, W.DEFAULT_HF_REPO, src)
    notes = env["tmp"] / "notes.txt"
    notes.write_text("my notes\n")
    monkeypatch.setenv("BLURVID_CACHE_DIR", str(notes))
    with pytest.raises(WeightsError, match=r"notes\.txt is a file; set BLURVID_CACHE_DIR to a folder"):
        W.resolve(spec)
    assert fake_hub == [] and notes.read_text() == "my notes\n"
