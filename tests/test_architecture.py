"""The package's layers (docs/architecture.md): a module imports only from the layers below it, the algorithm
packages use neither click nor shards, and only the cli package uses click."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "pipeline"
#: sub-package -> the sub-packages it may import (besides itself)
ALLOWED = {
    "core": set(),
    "media": {"core"},
    "flow": {"core"},
    "formats": {"core"},
    "shards": {"core", "media"},
    "compressed": {"core", "media"},
    "resframe": {"core", "media"},
    "steps": {"core", "media", "flow", "formats", "shards", "compressed", "resframe", "data", "train", "evaluate",
              "report", "features"},
    "data": {"core", "media", "flow", "shards", "compressed", "resframe"},
    "layouts": {"core", "media", "shards"},
    "report": {"core", "media", "flow", "shards", "compressed", "data"},
    "models": {"core"},
    "train": {"core", "models", "data"},
    "evaluate": {"core", "media", "flow", "shards", "data", "models", "train"},
    "features": {"core", "media", "shards", "data", "models", "train"},
    "cli": {"core", "steps", "shards", "layouts", "report", "models"},
}


def imports(path: Path) -> set[tuple[str, int]]:
    """(imported module, line) of one file: absolute ``pipeline.x`` and relative imports, made absolute."""
    rel = path.relative_to(PKG.parent).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {(a.name, node.lineno) for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
                mods = [name] if node.module else [f"{name}.{a.name}" for a in node.names]
            else:
                mods = [node.module]
            out |= {(m, node.lineno) for m in mods}
    return out


def layer_of(module: str) -> str | None:
    """The sub-package a module belongs to (None: outside the package, or the package's own face)."""
    parts = module.split(".")
    return parts[1] if parts[0] == "pipeline" and len(parts) > 1 and parts[1] in ALLOWED else None


FILES = sorted(p for p in PKG.rglob("*.py") if p.parent != PKG)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PKG)))
def test_imports_follow_the_layers(path):
    own = path.relative_to(PKG).parts[0]
    bad = []
    for module, line in imports(path):
        target = layer_of(module)
        if target is not None and target != own and target not in ALLOWED[own]:
            bad.append(f"line {line}: {module}")
        if module.split(".")[0] == "click" and own != "cli":
            bad.append(f"line {line}: click outside pipeline/cli")
    assert not bad, f"{path.relative_to(PKG)} imports across the layers: {bad}"


def test_every_subpackage_has_a_layer():
    packages = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == set(ALLOWED)
