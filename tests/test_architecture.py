"""Dependencies point inward: core imports no feature package, and feature packages do not
import each other (chat_service and finetune_loop meet only through core's adapter registry).
The allowed edges: finetune_loop's gate scores candidates with eval's metrics, and the
analytics dashboard draws eval's outcome metrics; eval itself imports nothing but core."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FEATURES = {"chat_service", "finetune_loop", "connectors", "eval", "analytics"}
ALLOWED = {("finetune_loop", "eval"), ("analytics", "eval")}


def imported_top_level_packages(package: str) -> set[tuple[str, str]]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            found.update((str(path.relative_to(ROOT)), n.split(".")[0]) for n in names)
    return found


def test_core_imports_no_feature_package() -> None:
    offenders = {
        (f, m) for f, m in imported_top_level_packages("core") if m in FEATURES | {"supportloop"}
    }
    assert offenders == set()


@pytest.mark.parametrize("package", sorted(FEATURES))
def test_feature_packages_do_not_import_each_other(package: str) -> None:
    others = FEATURES - {package} - {b for a, b in ALLOWED if a == package}
    offenders = {(f, m) for f, m in imported_top_level_packages(package) if m in others}
    assert offenders == set()
