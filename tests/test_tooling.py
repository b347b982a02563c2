"""pyproject.toml says what the README claims: one version, zxing-cpp only where it has wheels
(pyzbar everywhere), upper bounds on the libraries whose internals the gate relies on, the
slow tests out of the default run."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

import gate

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def project() -> dict[str, Any]:
    with PYPROJECT.open("rb") as f:
        return tomllib.load(f)


def requirement(name: str) -> Requirement:
    reqs = [Requirement(d) for d in project()["project"]["dependencies"]]
    return next(r for r in reqs if r.name == name)


def test_tooling_version_has_one_source() -> None:
    data = project()
    assert "version" not in data["project"] and "version" in data["project"]["dynamic"]
    assert data["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "gate.__version__"}
    assert gate.__version__


@pytest.mark.parametrize(("machine", "installed"), [
    ("x86_64", True), ("aarch64", True), ("arm64", True), ("AMD64", True),
    ("armv7l", False), ("armv6l", False)])
def test_tooling_zxing_cpp_only_where_it_has_wheels(machine: str, installed: bool) -> None:
    zxing = requirement("zxing-cpp")
    assert zxing.marker is not None
    assert zxing.marker.evaluate({"platform_machine": machine}) is installed
    assert requirement("pyzbar").marker is None  # the decoder everywhere else


def test_tooling_upper_bounds_on_libraries_used_by_their_internals() -> None:
    assert not requirement("gpiozero").specifier.contains("3.0")
    assert requirement("gpiozero").specifier.contains("2.0.1")
    assert not requirement("zxing-cpp").specifier.contains("4.0")


def test_tooling_default_run_leaves_out_the_slow_tests() -> None:
    ini = project()["tool"]["pytest"]["ini_options"]
    assert "-m 'not slow'" in ini["addopts"]
    assert any(m.startswith("slow:") for m in ini["markers"])
