"""The image and the wheel ship every package: a new package missed in the Dockerfile only
fails when someone builds the image, long after the change."""

from __future__ import annotations

import re
import tomllib

from tests.conftest import REPO_ROOT


def packages() -> set[str]:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    return {name.rstrip("*") for name in include}


def test_every_python_package_is_in_the_wheel() -> None:
    on_disk = {p.parent.name for p in REPO_ROOT.glob("*/__init__.py")} - {"tests", "benchmarks"}
    assert on_disk == packages()


def test_the_dockerfile_copies_every_package_and_the_model_wheels() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\w+) \1$", dockerfile, re.MULTILINE))
    assert copied == packages()
    makefile = (REPO_ROOT / "Makefile").read_text()
    for wheel in re.findall(r"--no-deps (\S+==\S+)", makefile):
        assert wheel in dockerfile
