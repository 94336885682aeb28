"""The tree's rules (README, "Layout"): no module name twice under tasks/, no module over 400 lines,
imports that go downward only — the units never import the job, the job never the registry,
nothing in tasks/ the flows or the CLI — and no import cycle, not even one hidden inside a function.

Every import counts wherever it stands (module level, inside a function, under `if TYPE_CHECKING`):
an import moved into a function still ties the two modules together, it only fails later."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UNITS = ("spec", "dataset", "storage", "launch", "events", "report")
#: A module longer than this is split by concern (the house rule says "about 400").
MAX_LINES = 400
SOURCES = sorted(p for top in ("tasks", "flows", "taoflow", "deployments", "bench", "tests")
                 for p in (REPO / top).rglob("*.py"))


#: The packages whose modules must not import each other in a circle.
PROJECT = ("tasks", "flows", "taoflow", "deployments")


def project_modules(root: Path, tops: tuple[str, ...] = PROJECT) -> dict[str, Path]:
    """{dotted module name: file} of every module under `root`/TOP (a package by its `__init__.py`)."""
    found = {}
    for top in tops:
        for path in (root / top).rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(path: Path, module: str, known) -> dict[str, int]:
    """{module imported: line of its first import} for every import anywhere in `path` (module level,
    in a function, in a class). `from x import y` is the module x.y when y is one, else x; relative
    imports are resolved from `module`. Names outside `known` are kept as written."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                head = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(head + ([node.module] if node.module else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for name in names:
            if name != module:
                found.setdefault(name, node.lineno)
    return found


def imports(path: Path) -> set[str]:
    return set(imported(path, MODULE_OF[path], MODULES))


def import_graph(root: Path, tops: tuple[str, ...] = PROJECT) -> dict[str, dict[str, int]]:
    """{module: {project module it imports: line}}: every import, wherever it stands in the module."""
    modules = project_modules(root, tops)
    return {name: {target: line for target, line in imported(path, name, modules).items() if target in modules}
            for name, path in modules.items()}


def import_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Every module's shortest way back to itself (a -> b -> ... -> a), each circle once."""
    cycles = set()
    for start in graph:
        # Breadth-first from `start`: the first way back to it is its shortest circle.
        came_from: dict[str, str] = {}
        frontier = [start]
        while frontier and start not in came_from:
            following = []
            for node in frontier:
                for target in sorted(graph[node]):
                    if target not in came_from:
                        came_from[target] = node
                        following.append(target)
            frontier = following
        if start in came_from:
            circle, node = [start], came_from[start]
            while node != start:
                circle.append(node)
                node = came_from[node]
            circle.reverse()  # start, ..., the module importing start
            turn = circle.index(min(circle))  # one spelling per circle: from its first name
            cycles.add(tuple(circle[turn:] + circle[:turn]))
    return [[*cycle, cycle[0]] for cycle in sorted(cycles)]


def render_cycle(cycle: list[str], graph: dict[str, dict[str, int]]) -> str:
    return " -> ".join(f"{a} (line {graph[a][b]})" for a, b in zip(cycle, cycle[1:])) + f" -> {cycle[-1]}"


MODULES = project_modules(REPO)
MODULE_OF = {path: name for name, path in MODULES.items()}


def test_no_module_name_twice_under_tasks():
    names = Counter(p.name for p in (REPO / "tasks").rglob("*.py") if p.name != "__init__.py")
    assert [name for name, count in names.items() if count > 1] == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_module_over_400_lines(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


def _rule(path: Path) -> tuple[str, ...]:
    """The packages a module may not import, by where it sits."""
    parts = path.relative_to(REPO).parts
    if parts[0] != "tasks":
        return ()
    upper = ("flows", "taoflow")
    if len(parts) > 2 and parts[1] in UNITS:
        return (*upper, "tasks.job", "tasks.registry")
    if len(parts) > 2 and parts[1] == "job":
        return (*upper, "tasks.registry")
    return upper


@pytest.mark.parametrize("path", [p for p in SOURCES if _rule(p)], ids=lambda p: str(p.relative_to(REPO)))
def test_imports_go_downward_only(path):
    forbidden = _rule(path)
    upward = sorted(name for name in imports(path) if any(name == f or name.startswith(f + ".") for f in forbidden))
    assert upward == [], f"{path.relative_to(REPO)} imports upward: {upward}"


PACKAGES = sorted({p.parent for p in SOURCES if p.name == "__init__.py" and p.parts[len(REPO.parts)] in ("tasks", "flows", "taoflow")})


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_package_name_hides_one_of_its_modules(package):
    """`from tasks.job import preflight` must give the module: a function exported from `__init__`
    under a submodule's name would replace it (as `preflight()` once did)."""
    modules = {p.stem for p in package.glob("*.py")} | {p.name for p in package.iterdir() if (p / "__init__.py").exists()}
    tree = ast.parse((package / "__init__.py").read_text())
    exported = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    exported |= {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    module_name = ".".join(package.relative_to(REPO).parts)
    hiding = sorted(name for name in exported & modules
                    if not any(isinstance(n, ast.ImportFrom) and n.module == module_name and
                               any(a.name == name for a in n.names) for n in ast.walk(tree)))
    assert hiding == [], f"{module_name} exports names of its own modules: {hiding}"


def test_every_environment_variable_the_code_reads_is_in_the_readme():
    """An operator learns the knobs from the README's "Environment" table, not from the code."""
    import re

    code = "\n".join(p.read_text() for top in ("tasks", "flows", "taoflow") for p in (REPO / top).rglob("*.py"))
    names = set(re.findall(r"[\"'](TAOFLOW_[A-Z0-9_]+)[\"']", code))
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("## Environment"):readme.index("## Troubleshooting")]
    assert names and sorted(n for n in names if f"`{n}`" not in table) == []


def test_no_import_cycle_even_inside_a_function():
    """A cycle hidden in a function import still ties the modules together: break it by moving what
    both sides need into the lower one, not by deferring the import."""
    graph = import_graph(REPO)
    assert [render_cycle(c, graph) for c in import_cycles(graph)] == []


def test_the_cycle_check_sees_an_import_hidden_inside_a_function(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("VALUE = 1\n")
    (package / "a.py").write_text("from pkg.b import helper\nfrom pkg import low\n")
    (package / "b.py").write_text("import os\n\n\ndef helper():\n    from . import a  # 'it builds on this module'\n"
                                  "    return a, os\n")
    graph = import_graph(tmp_path, ("pkg",))
    assert graph["pkg.a"] == {"pkg.b": 1, "pkg.low": 2} and graph["pkg.b"] == {"pkg.a": 5}
    assert import_cycles(graph) == [["pkg.a", "pkg.b", "pkg.a"]]
    assert render_cycle(["pkg.a", "pkg.b", "pkg.a"], graph) == "pkg.a (line 1) -> pkg.b (line 5) -> pkg.a"

    (package / "b.py").write_text("def helper():\n    from pkg.low import VALUE\n    return VALUE\n")
    assert import_cycles(import_graph(tmp_path, ("pkg",))) == []
