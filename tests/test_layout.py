"""The package's shape: one-way imports between stages, small modules and functions, a role line for every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "privacy_audit"
# Lower floors never import higher ones: canaries -> pipelines -> scoring -> reports -> gate, then the top floor.
FLOORS = [
    ("errors", "_io", "_text", "_paths", "_registry", "_progress"), ("models",), ("canaries",), ("pipelines",),
    ("scoring",), ("reports",), ("gate",), ("config",), ("chain",), ("audit", "audit_runs", "demo", "secret_sharer"),
    ("_cli_support",), ("cli",), ("_entry", "__main__"),
]
FLOOR = {name: i for i, names in enumerate(FLOORS) for name in names}


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def floor_of(path: Path) -> int:
    top = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    return FLOOR[top]


def imported(tree: ast.AST) -> set[str]:
    """First components under privacy_audit of every import in a module."""
    out = set()
    for node in ast.walk(tree):
        names = (
            [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else []
        )
        for name in names:
            parts = name.split(".")
            if parts[0] == "privacy_audit" and len(parts) > 1:
                out.add(parts[1])
            elif parts[0] == "privacy_audit" and isinstance(node, ast.ImportFrom):
                out.update(a.name for a in node.names)
    return out


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_runs_up_a_floor(path):
    own = floor_of(path)
    up = sorted(m for m in imported(ast.parse(path.read_text())) if m in FLOOR and FLOOR[m] > own)
    assert not up, f"{path.name} (floor {own}) imports {up} from higher floors"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_and_functions_stay_small_and_say_their_role(path):
    text = path.read_text()
    tree = ast.parse(text)
    assert len(text.splitlines()) <= 400
    doc = ast.get_docstring(tree)
    assert doc and len(doc.splitlines()[0]) <= 160, "a one-line role at the top of the module"
    long = [
        n.name
        for n in ast.walk(tree)
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno >= 60
    ]
    assert not long, f"functions over 60 lines: {long}"
