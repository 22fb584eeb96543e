"""The house rules of docs/architecture.md, checked: imports point one way, from glue down to
the core, and no two modules import each other at run time, directly or around a circle.

For the direction every import counts, also those inside functions and under `TYPE_CHECKING`:
a lazy or a type-only import still makes a lower room depend on a higher one. For circles only
the imports that run count: a type named for the checker is no import at run time.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "imagenb"

# Lowest first. A module may import its own room and any room before it, never one after it.
RANKS = [
    "redaction",
    "errors",
    "core",
    "text",
    "render",
    "store",
    "backends",
    "engine",
    "checks",
    "masks",
    "api",
    "judging",
    "conversations",
    "batch",
    "grids",
    "storyboards",
    "testing",
    "magics",
    "panels",
    "cli",
    "imagenb",
]


def module_name(path: Path) -> str:
    parts = ["imagenb", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "imagenb"


def _type_only(tree: ast.AST) -> set[int]:
    """Ids of the import nodes under `if TYPE_CHECKING:`."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                found.update(id(n) for n in ast.walk(inner))
    return found


def imports(
    path: Path, modules: set[str], *, runtime_only: bool = False
) -> Iterator[tuple[str, int]]:
    """Every imagenb module that `path` imports, with its line."""
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    skip = _type_only(tree) if runtime_only else set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("imagenb"):
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            if not source.startswith("imagenb"):
                continue
            names = [a.name for a in node.names]
            if source == "imagenb" and names == ["__version__"]:
                continue  # the version is a constant every layer may read
            for name in names:
                full = f"{source}.{name}"
                yield (full if full in modules else source), node.lineno


def graph(*, runtime_only: bool = False) -> dict[str, list[tuple[str, int]]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {
        name: [
            (dep, line)
            for dep, line in imports(path, modules, runtime_only=runtime_only)
            if dep != name
        ]
        for name, path in paths.items()
    }


def violations(edges: dict[str, list[tuple[str, int]]]) -> list[str]:
    found = []
    for module, deps in sorted(edges.items()):
        for dep, line in deps:
            low, high = RANKS.index(room(module)), RANKS.index(room(dep))
            if high > low:
                found.append(f"{module}:{line} imports {dep} ({room(dep)} is above {room(module)})")
    return found


def circles(edges: dict[str, list[tuple[str, int]]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w, _ in edges.get(v, []):
            if w not in edges:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return groups


def test_every_room_is_ranked() -> None:
    unranked = {room(m) for m in graph()} - set(RANKS)
    assert not unranked, f"rooms missing from RANKS (and from docs/architecture.md): {unranked}"


def test_imports_point_down() -> None:
    assert violations(graph()) == []


# Circles that remain, each a facade that imports the modules it fronts at call time. Known, and
# to be taken apart; a new circle fails the build.
KNOWN_CIRCLES = [
    # Store.check/export/import_ front store.check and store.archive, which work on a Store
    ["imagenb.store.archive", "imagenb.store.check", "imagenb.store.index"],
    # the fake's /v1/responses request model and its answer builder
    ["imagenb.testing.responses", "imagenb.testing.responses_output"],
]


def test_no_import_circles() -> None:
    assert [c for c in circles(graph(runtime_only=True)) if c not in KNOWN_CIRCLES] == []


def test_the_check_catches_a_reversed_import(tmp_path: Path) -> None:
    """The rule has teeth: the core importing the panel, or two modules importing each other,
    fail."""
    edges = graph()
    edges["imagenb.core.catalog"] = [*edges["imagenb.core.catalog"], ("imagenb.panels.widget", 1)]
    found = violations(edges)
    assert any("imagenb.core.catalog:1 imports imagenb.panels.widget" in v for v in found)
    edges["imagenb.core.sizes"] = [("imagenb.core.cost", 1)]
    edges["imagenb.core.cost"] = [("imagenb.core.sizes", 1)]
    assert ["imagenb.core.cost", "imagenb.core.sizes"] in circles(edges)


# Modules past the size of one idea, waiting to be split (docs/architecture.md). The list may
# only shrink: a new module over the limit fails, and so does a listed one that got small.
KNOWN_LARGE = {
    "api/calls.py",
    "backends/openai_backend.py",
    "batch/jobs.py",
    "grids/grid.py",
    "magics/cells.py",
    "panels/gallery.py",
    "panels/widget.py",
    "store/index.py",
    "storyboards/board.py",
    "testing/handler.py",
    "testing/responses.py",
    "testing/responses_output.py",
}
LIMIT = 400


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_modules_are_the_size_of_one_idea(path: Path) -> None:
    """Over 400 lines a module usually holds two ideas; one that does not says why at its top."""
    lines = path.read_text().splitlines()
    name = path.relative_to(PACKAGE).as_posix()
    if name in KNOWN_LARGE:
        assert len(lines) > LIMIT, f"{name} is small now: take it off KNOWN_LARGE"
    elif len(lines) > LIMIT:
        head = "\n".join(lines[:15]).lower()
        assert "one idea" in head, (
            f"{name} has {len(lines)} lines: split it, or say at its top why it is one idea"
        )


def test_no_room_shadows_a_public_name() -> None:
    """Importing a subpackage binds it on its parent: a room named like a public function
    (`imagenb/chat/` and `ig.chat`, `imagenb/panel/` and `ig.panel`) would replace the
    function the moment anything imports the room. Every public name stays what it is
    after every module of the package has been imported."""
    import importlib
    import types

    import imagenb

    for path in sorted(PACKAGE.rglob("*.py")):
        importlib.import_module(module_name(path))
    for name in imagenb.__all__:
        value = getattr(imagenb, name)
        if name in imagenb._MODULES:
            assert isinstance(value, types.ModuleType), name
        else:
            assert not isinstance(value, types.ModuleType), f"ig.{name} is a module"
