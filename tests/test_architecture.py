"""Dependencies point inward, and each rule below fails the build the day it is broken.

Layers, innermost first:
- core: the domain model and storage; imports nothing of ours.
- engines: model serving and model files; imports only core.
- knowledge: the tenant's help center (documents, index, grounding); imports only core, and
  everything else uses it through its top-level package.
- feature packages (chat_service, finetune_loop, connectors, eval, analytics): import core,
  engines and knowledge, and another feature package only along an edge listed in ALLOWED, and then only
  through its public surface (`from eval import score`, never `from eval.metrics import ...`).
  chat_service and finetune_loop never meet except through core's adapter registry.
- supportloop: the composition root; may import anything.
Besides: eval is pure metric maths (no database, no web), and heavy ML libraries are imported
only where models are run (engines, knowledge's embedder, finetune_loop, eval).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FEATURES = {"chat_service", "finetune_loop", "connectors", "eval", "analytics"}
OURS = {"core", "engines", "knowledge", "supportloop"} | FEATURES
ALLOWED = {
    ("finetune_loop", "eval"): "the gate scores candidates with eval's metrics",
    ("analytics", "eval"): "the dashboard's classification scores are eval's maths",
    ("finetune_loop", "analytics"): "the nightly report quotes production drift",
}
DATABASE = {"sqlmodel", "sqlalchemy", "alembic", "psycopg", "core.db", "core.crud", "core.models"}
WEB = {"fastapi", "starlette", "uvicorn", "websockets", "httpx"}
HEAVY_ML = {"torch", "transformers", "peft", "vllm"}


def imports(package: str) -> set[tuple[str, str]]:
    """(file, imported module) for every absolute import in the package, lazy ones included."""
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            found.update((str(path.relative_to(ROOT)), name) for name in names)
    return found


def under(module: str, prefixes: set[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def top(module: str) -> str:
    return module.split(".")[0]


def test_core_imports_nothing_of_ours() -> None:
    offenders = {(f, m) for f, m in imports("core") if top(m) in OURS - {"core"}}
    assert offenders == set()


def test_engines_import_only_core() -> None:
    offenders = {(f, m) for f, m in imports("engines") if top(m) in OURS - {"core", "engines"}}
    assert offenders == set()


def test_knowledge_imports_only_core() -> None:
    offenders = {(f, m) for f, m in imports("knowledge") if top(m) in OURS - {"core", "knowledge"}}
    assert offenders == set()


@pytest.mark.parametrize("package", sorted(FEATURES | {"supportloop"}))
def test_knowledge_is_used_through_its_public_surface(package: str) -> None:
    offenders = {(f, m) for f, m in imports(package) if top(m) == "knowledge" and m != "knowledge"}
    assert offenders == set()


@pytest.mark.parametrize("package", sorted(FEATURES))
def test_feature_packages_import_each_other_only_along_allowed_edges(package: str) -> None:
    offenders = {
        (f, m)
        for f, m in imports(package)
        if top(m) in FEATURES - {package} and (package, top(m)) not in ALLOWED
    }
    assert offenders == set()


@pytest.mark.parametrize("package", sorted(FEATURES))
def test_feature_packages_use_only_each_others_public_surface(package: str) -> None:
    offenders = {
        (f, m) for f, m in imports(package) if top(m) in FEATURES - {package} and m != top(m)
    }
    assert offenders == set()


def test_the_public_surfaces_export_what_they_list() -> None:
    import analytics
    import eval as evaluation
    import knowledge

    for module in (analytics, evaluation, knowledge):
        assert sorted(module.__all__) == module.__all__
        assert all(hasattr(module, name) for name in module.__all__)


def test_eval_touches_neither_the_database_nor_the_web() -> None:
    vocabulary = "core.models.enums"  # plain enums (roles), no tables
    offenders = {(f, m) for f, m in imports("eval") if under(m, DATABASE | WEB) and m != vocabulary}
    assert offenders == set()


@pytest.mark.parametrize("package", ["core", "chat_service", "connectors", "analytics"])
def test_heavy_ml_libraries_stay_where_models_run(package: str) -> None:
    offenders = {(f, m) for f, m in imports(package) if top(m) in HEAVY_ML}
    assert offenders == set()
