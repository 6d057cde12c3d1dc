"""Imports run one way: no circle in `provision/` or in the backend, and `provision/`'s rooms in layers.

The graph is read from the source, not from a running interpreter: every `import` counts,
including those inside functions and under `TYPE_CHECKING` (a type-only import is still a
dependency of the design), and importing `a.b.c` counts as importing the packages `a.b` and `a`
above it, whose `__init__` runs first. A room of `provision/` is a subpackage or a top-level
module; `LAYERS` lists them from the top down. A room may import its own modules and rooms of
lower layers, never a room of its own layer or above it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BACKEND = ROOT / "template" / "backend"

#: `provision/`'s rooms from the top down; rooms that share a layer never import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("cli", "demo"),  # the command line and the scripted demo
    ("local",),  # the local target: bucket folders, local identities, the backend as a process
    ("plan",),  # the plan engine: desired state, read-back, plan, apply, views, seed, teardown
    ("onboarding", "hub", "challenge_types"),  # the README text; the Hub's calls and token; plug-ins
    ("spec",),  # the challenge spec: YAML, schema, defaults, rules, typed model, loader
    ("migrations",),  # spec format migrations (run by Copier with the standard library and PyYAML)
    ("errors", "paths", "naming", "__init__"),  # the exception root, the kit's files, the names it gives
)

Graph = Mapping[str, set[str]]


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Every module of `package` (a folder under `root`) by dotted name; a package is its `__init__`."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:  # relative: from the module's package, one level up per extra dot
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
    yield base
    yield from (f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Which modules of `package` each of its modules imports (the packages above them included)."""
    files = module_files(root, package)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        deps: set[str] = set()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for name in _imported(node, module, path.name == "__init__.py"):
                parts = name.split(".")
                deps |= {".".join(parts[:n]) for n in range(1, len(parts) + 1)} & files.keys()
        ancestors = {".".join(module.split(".")[:n]) for n in range(1, module.count(".") + 1)}
        graph[module] = deps - ancestors - {module}  # its own packages ran before it: not a dependency
    return graph


def find_cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components with more than one member (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in sorted(graph.get(node, ())):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def room_of(module: str) -> str:
    """`provision.plan.seed` -> `plan`; `provision.errors` -> `errors`; `provision` -> `__init__`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def wrong_way(graph: Graph, layers: tuple[tuple[str, ...], ...]) -> list[str]:
    """Every import from one room into a room of its own layer or a higher one."""
    depth = {room: n for n, layer in enumerate(layers) for room in layer}
    found = []
    for module, deps in sorted(graph.items()):
        for dep in sorted(deps):
            here, there = room_of(module), room_of(dep)
            if here != there and depth[there] <= depth[here]:
                found.append(f"{module} imports {dep}: {there} is not below {here}")
    return found


# ---------------------------------------------------------------- the checker checks what it says


def test_a_circle_and_a_wrong_way_import_are_found() -> None:
    circle = {"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "p.d": {"p.a"}}
    assert find_cycles(circle) == [["p.a", "p.b", "p.c"]]
    layers = (("top",), ("low", "side"))
    assert wrong_way({"p.top.x": {"p.low.y"}, "p.low.y": set()}, layers) == []
    assert wrong_way({"p.low.y": {"p.top.x"}}, layers) == ["p.low.y imports p.top.x: top is not below low"]
    assert wrong_way({"p.low.y": {"p.side"}}, layers) == ["p.low.y imports p.side: side is not below low"]


def test_function_level_type_only_relative_and_parent_imports_count(tmp_path: Path) -> None:
    pkg = tmp_path / "p"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from p import b\n")
    (pkg / "a.py").write_text("def f():\n    from p.sub import leaf\n")
    (pkg / "sub" / "leaf.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..a import f\n")
    (pkg / "b.py").write_text("")
    graph = import_graph(tmp_path, "p")
    assert graph["p.a"] == {"p.sub", "p.sub.leaf"}
    assert graph["p.sub.leaf"] == {"p.a"}
    assert graph["p.sub"] == {"p.b"}
    assert find_cycles(graph) == [["p.a", "p.sub.leaf"]]


# ---------------------------------------------------------------- the kit and the backend


@pytest.mark.parametrize(("root", "package"), [(ROOT, "provision"), (BACKEND, "collab_backend")])
def test_no_import_circle(root: Path, package: str) -> None:
    graph = import_graph(root, package)
    assert len(graph) > 20  # the real package, not an empty folder
    assert find_cycles(graph) == []


def test_provision_rooms_import_downward_only() -> None:
    graph = import_graph(ROOT, "provision")
    rooms = {room_of(module) for module in graph}
    declared = {room for layer in LAYERS for room in layer}
    assert rooms == declared, "a room of provision/ is missing from LAYERS, or LAYERS names one that is gone"
    assert wrong_way(graph, LAYERS) == []
