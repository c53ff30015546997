"""How the package is laid out: small modules, no import cycles, lean workers, lazy names."""

from __future__ import annotations

import ast
import io
import subprocess
import sys
import tokenize
from pathlib import Path
from typing import TYPE_CHECKING

import snake

if TYPE_CHECKING:
    from collections.abc import Iterator

PACKAGE = Path(snake.__file__).parent
#: Lines of code (docstrings, comments and blank lines aside) a module and a
#: function may have at most.
MODULE_LINES = 300
FUNCTION_LINES = 60


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def code_lines(source: str, tree: ast.Module) -> set[int]:
    """The numbers of the lines that hold code: not docstrings, comments or blanks."""
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                assert first.end_lineno is not None
                docstrings.update(range(first.lineno, first.end_lineno + 1))
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skip and token.type != tokenize.ENDMARKER:
            lines.update(range(token.start[0], token.end[0] + 1))
    return lines - docstrings


def test_no_module_or_function_is_too_long_to_read_in_one_sitting() -> None:
    long = []
    for name, path in modules():
        source = path.read_text()
        tree = ast.parse(source)
        lines = code_lines(source, tree)
        if len(lines) > MODULE_LINES:
            long.append(f"module {name}: {len(lines)} lines of code")
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno is not None
                count = len([n for n in lines if node.lineno <= n <= node.end_lineno])
                if count > FUNCTION_LINES:
                    long.append(f"function {name}.{node.name}: {count} lines of code")
    assert long == []


def imports(name: str, path: Path) -> set[str]:
    """The snake modules ``name`` imports when it runs: at its top or inside
    functions, but not under ``if TYPE_CHECKING:`` (for type checkers only)."""
    known = dict(modules())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text()).body):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            target = ".".join([*base, node.module] if node.module else base)
            if not node.level:
                target = node.module or ""
            for alias in node.names:
                child = f"{target}.{alias.name}"
                found.add(child if child in known else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in known and m != name}


def _runtime_nodes(body: list[ast.stmt]) -> Iterator[ast.AST]:
    for node in body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from _runtime_nodes(node.orelse)
            continue
        yield node
        for field in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(node, field, None)
            if isinstance(inner, list):
                yield from _runtime_nodes([n for n in inner if isinstance(n, ast.stmt)])
        for handler in getattr(node, "handlers", []):
            yield from _runtime_nodes(handler.body)


def test_no_module_of_snake_imports_itself_through_others() -> None:
    graph = {name: imports(name, path) for name, path in modules()}
    cycles = []
    for start in graph:
        # Every module reachable from `start`; a cycle brings us back to it.
        seen, todo = set(), list(graph[start])
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo.extend(graph[module])
        if start in seen:
            cycles.append(start)
    assert cycles == []


def test_a_worker_process_loads_the_worker_side_only() -> None:
    # What trio_parallel's worker imports to find snake's job loop.
    code = "import sys, snake._workers._worker; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "trio" not in loaded
    assert "trio_parallel" not in loaded
    engine = {"snake._pipeline", "snake._runner", "snake._chunking", "snake._stages._parallel"}
    assert engine.isdisjoint(loaded)
    assert "snake._workers._worker" in loaded


def test_snake_testing_loads_only_when_imported_and_starts_nothing() -> None:
    # The pytest plugin loads only where a project opts in; psutil, only
    # where there is no /proc to read.
    code = (
        "import os, sys, threading, snake; snake.from_iterable; print('snake.testing' in sys.modules); "
        "import snake.testing; from snake.testing._processes import descendants; "
        "print(threading.active_count(), descendants(os.getpid()), "
        "[m for m in ('pytest', 'psutil', 'hypothesis', 'snake.testing.pytest_plugin') "
        "if m in sys.modules])"
    )
    printed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert printed == "False\n1 [] []\n"


def test_the_public_names_are_the_same_for_python_and_for_type_checkers() -> None:
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    [checking] = [n for n in tree.body if isinstance(n, ast.If)]
    declared = {
        alias.asname: f".{node.module}"
        for node in checking.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert declared == snake._HOMES
    assert set(snake.__all__) <= set(dir(snake))


def test_every_nursery_of_snake_lets_errors_out_one_way() -> None:
    # A plain trio nursery would add a group of its cancellations to an
    # error that meets an outer cancel: every nursery is _nursery's.
    plain = [
        name
        for name, path in modules()
        if "trio.open_nursery(" in path.read_text() and name != "snake._nursery"
    ]
    assert plain == []
