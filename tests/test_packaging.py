"""What the package declares agrees with itself (the version is written in two places)."""

from __future__ import annotations

import re
from pathlib import Path

import blurvid
from blurvid import weights

ROOT = Path(__file__).resolve().parents[1]


def test_the_version_is_one_version() -> None:
    declared = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8"), re.M)
    assert declared is not None and declared.group(1) == blurvid.__version__


def test_an_installed_package_never_takes_a_weights_folder_beside_it(tmp_path, monkeypatch) -> None:
    """Installed without blurvid/weights/, the fallback was site-packages/weights: another package's."""
    site = tmp_path / "site-packages"
    (site / "blurvid").mkdir(parents=True)
    (site / "weights").mkdir()  # some other distribution's folder
    monkeypatch.setattr(weights, "__file__", str(site / "blurvid" / "weights.py"))
    assert weights.package_weights_dir() == site / "blurvid" / "weights"
    (site / "pyproject.toml").write_text("[project]\n", encoding="utf-8")  # a source checkout instead
    assert weights.package_weights_dir() == site / "weights"
