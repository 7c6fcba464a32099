"""The benchmark scripts stay importable: the numbers in the READMEs cite them as the way to rerun."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from conftest import TINY_DM

BENCHMARKS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))


def test_there_are_benchmarks() -> None:
    assert len(BENCHMARKS) >= 20, BENCHMARKS


def _load(script: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script as a module, imported as when it is run (definitions only: each script runs under
    ``if __name__ == "__main__"``)."""
    monkeypatch.syspath_prepend(str(script.parent))  # as when run: its folder's scripts import each other
    spec = importlib.util.spec_from_file_location(f"bench_{script.stem}", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.name)
def test_a_benchmark_script_imports(script: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """dm_lowfreq_probe.py imported a helper that had moved (evaluate._gaussian): even --help crashed."""
    module = _load(script, monkeypatch)
    assert callable(getattr(module, "main", None)), f"{script.name} has no main()"


def test_weight_soup_averages_runs_and_writes_a_checkpoint_that_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dm-v13 is such a soup: the mean of each float tensor, integer buffers kept, mismatches refused."""
    import torch

    from blurvid.models import DeblurNet, DMConfig
    from blurvid.train.export import split_run
    from blurvid.weights import save_checkpoint

    module = _load(Path(__file__).resolve().parents[1] / "benchmarks" / "weight_soup.py", monkeypatch)
    a = {"w": torch.tensor([1.0, 3.0]), "n": torch.tensor(7)}
    b = {"w": torch.tensor([3.0, 5.0]), "n": torch.tensor(9)}
    mixed = module.soup([a, b])
    assert torch.equal(mixed["w"], torch.tensor([2.0, 4.0])) and int(mixed["n"]) == 7
    with pytest.raises(ValueError, match="same tensors"):
        module.soup([a, {"w": torch.zeros(3), "n": torch.tensor(7)}])
    runs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        net = DeblurNet(DMConfig.from_dict(TINY_DM))
        runs.append(tmp_path / f"dm{seed}.safetensors")
        save_checkpoint(runs[-1], net.state_dict(), arch="dm", config=net.config.to_dict())
    out = tmp_path / "soup.safetensors"
    monkeypatch.setattr(sys, "argv", ["weight_soup.py", "--runs", *map(str, runs), "--out", str(out)])
    module.main()
    (state, _), (s0, _), (s1, _) = (split_run(p)["dm"] for p in (out, *runs))
    key = next(k for k, v in state.items() if v.is_floating_point())
    torch.testing.assert_close(state[key], (s0[key] + s1[key]) / 2)
