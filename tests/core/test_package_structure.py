"""The package's shape: no import cycle among egghand_lib modules, own modules imported at the top of a file.

The import graph is read from the source with ``ast`` (every ``import`` / ``from ... import`` of an
egghand_lib module, at any depth of the file), so an import hidden inside a function counts too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import egghand_lib

PACKAGE_DIR = Path(egghand_lib.__file__).resolve().parent
ROOT = PACKAGE_DIR.name


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE_DIR.rglob("*.py")}


def _resolve(name: str) -> str | None:
    """The module an imported dotted name refers to (a module, or the package that holds the name)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _own_imports(tree: ast.AST) -> list[tuple[ast.AST, str]]:
    """(node, imported egghand_lib module) for every import in ``tree``."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node, _resolve(a.name)) for a in node.names if a.name.split(".")[0] == ROOT]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == ROOT and not node.level:
            for a in node.names:
                out.append((node, _resolve(f"{node.module}.{a.name}") or _resolve(node.module)))
    return [(n, m) for n, m in out if m is not None]


def _graph() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[name] = {m for _, m in _own_imports(tree) if m != name}
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_among_egghand_lib_modules():
    graph = _graph()
    assert len(graph) > 30  # the walk saw the package
    assert _find_cycle(graph) is None, f"import cycle: {' -> '.join(_find_cycle(graph))}"


def test_own_modules_are_imported_at_the_top_of_each_file():
    inside = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for func in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)):
            for node, module in _own_imports(func):
                inside.append(f"{name}:{node.lineno} imports {module} inside {func.name}()")
    assert not inside, "imports of egghand_lib modules inside functions:\n" + "\n".join(sorted(set(inside)))


def test_package_and_commands_import_in_a_fresh_interpreter():
    proc = subprocess.run([sys.executable, "-c", "import egghand_lib, egghand_lib.commands"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
