"""The package's shape: one-way imports between stages, small modules and functions, a role line for every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "privacy_audit"
# Lower floors never import higher ones: canaries -> pipelines -> scoring -> reports -> gate, then the top floor.
FLOORS = [
    ("errors", "_io", "_text", "_paths", "_registry", "_progress"), ("stats",), ("models",), ("canaries",),
    ("pipelines",),
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


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The package's modules a module imports, anywhere in it (at the top or inside a function): `from a.b import c`
    names the module a.b.c where that is one, else a.b; a package's `__init__` counts as the package."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("privacy_audit"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.add(sub if sub in known else node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("privacy_audit"))
    return out & known


def test_no_import_cycle_anywhere_in_the_package():
    """Within a stage as between stages: following imports from any module never leads back to it."""
    paths = [p for p in PACKAGE.rglob("*.py")]
    known = {module_name(p) for p in paths}
    graph = {module_name(p): imports_of(p, known) - {module_name(p)} for p in paths}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if nxt.startswith(node + "."):  # a package importing its own submodules (its __init__) is not a cycle
                continue
            if state.get(nxt) == 1:
                cycles.append(trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, f"import cycles: {cycles[:3]}"


@pytest.mark.parametrize("path", sorted((PACKAGE / "stats").glob("*.py")), ids=lambda p: p.name)
def test_the_statistics_import_only_numpy_scipy_and_errors(path):
    """Pure maths apart from the engine (opacus' accountants/analysis): no model, report, file or option here."""
    allowed = {"numpy", "scipy", "privacy_audit"}
    tree = ast.parse(path.read_text())
    names = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and n.level == 0]
    names += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    third = {n.split(".")[0] for n in names} - set(__import__("sys").stdlib_module_names) - {"__future__"}
    assert third <= allowed, third
    ours = {n for n in names if n.startswith("privacy_audit")}
    assert all(n == "privacy_audit.errors" or n.startswith("privacy_audit.stats") for n in ours), ours
