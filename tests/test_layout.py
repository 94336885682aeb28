"""The tree's rules (README, "Layout"): no module name twice under tasks/, no module over 400 lines,
and imports that go downward only — the units never import the job, the job never the registry,
nothing in tasks/ the flows or the CLI."""

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


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


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
