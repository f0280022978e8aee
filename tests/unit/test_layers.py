"""The layers' import rules, read from the source (every import, at module level or inside a function).

core      standard library, settings, errors and core only
adapters  core, settings, errors and adapters
web       core, bootstrap, settings, errors and web
ops       anything but web
nothing but the CLI imports ops; bootstrap is the only module outside adapters that imports them
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "daca_kit"
TOP = {"daca_kit.settings", "daca_kit.errors"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            if node.module == "daca_kit":
                found.update(f"daca_kit.{alias.name}" for alias in node.names)
    return found


MODULES = {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def layer(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "top"


def kit_imports(name: str) -> set[str]:
    return {i for i in MODULES[name] if i == "daca_kit" or i.startswith("daca_kit.")}


def in_layer(target: str, *layers: str) -> bool:
    return target in TOP or any(
        target == f"daca_kit.{lay}" or target.startswith(f"daca_kit.{lay}.") for lay in layers
    )


@pytest.mark.parametrize("name", sorted(n for n in MODULES if layer(n) == "core"))
def test_core_imports_only_the_standard_library_and_itself(name: str) -> None:
    third_party = {
        i.split(".")[0]
        for i in MODULES[name]
        if not i.startswith("daca_kit") and i.split(".")[0] != "__future__"
    } - set(sys.stdlib_module_names)
    assert third_party == set(), f"{name} imports {sorted(third_party)}"
    wrong = {i for i in kit_imports(name) if not in_layer(i, "core")}
    assert wrong == set(), f"{name} imports {sorted(wrong)}"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if layer(n) == "adapters"))
def test_adapters_import_core_and_themselves(name: str) -> None:
    wrong = {i for i in kit_imports(name) if not in_layer(i, "core", "adapters")}
    assert wrong == set(), f"{name} imports {sorted(wrong)}"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if layer(n) == "web"))
def test_web_imports_core_and_bootstrap(name: str) -> None:
    wrong = {i for i in kit_imports(name) if not in_layer(i, "core", "web", "bootstrap")}
    assert wrong == set(), f"{name} imports {sorted(wrong)}"


def test_only_the_cli_imports_ops_and_ops_never_imports_web() -> None:
    for name in MODULES:
        uses_ops = {i for i in kit_imports(name) if in_layer(i, "ops") and i not in TOP}
        if layer(name) not in ("ops",) and name != "daca_kit.cli":
            assert uses_ops == set(), f"{name} imports {sorted(uses_ops)}"
        if layer(name) == "ops":
            assert {i for i in kit_imports(name) if in_layer(i, "web") and i not in TOP} == set(), name


def test_only_bootstrap_chooses_adapters() -> None:
    outside = {
        name
        for name in MODULES
        if layer(name) in ("core", "web", "top") and name != "daca_kit.bootstrap"
        if any(in_layer(i, "adapters") and i not in TOP for i in kit_imports(name))
    }
    assert outside == set()


def test_settings_and_errors_stand_alone() -> None:
    for name in TOP:
        assert kit_imports(name) <= TOP, name
