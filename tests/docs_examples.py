"""The Python examples of README.md and docs/: found, run as scripts, and checked.

The rules a page follows (docs/contributing.md tells contributors):

- Every ```` ```python ```` block is a complete script. It runs as
  ``python script.py`` in a fresh process, in a fresh temporary directory,
  and must exit with status 0.
- A block with the info string ``output`` directly after it (blank lines
  only between) is what the script must print. Lines are compared one by
  one, trailing spaces aside; ``...`` stands for any text within a line, and
  a line of only ``...`` for any number of lines.
- ``<!-- not run: REASON -->`` on the line before a block's fence marks a
  script that cannot run here (a GPU, a cluster): it is reported as skipped,
  with its reason, so the count shows in every test run.
- A script that imports an optional package (``OPTIONAL``) that is not
  installed is skipped, naming the package; CI installs them all.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import attrs
from conftest import RAY_ENV

ROOT = Path(__file__).resolve().parent.parent

#: Packages an example may import that the test extra does not install.
OPTIONAL = ("torch", "torchdata")

#: Seconds an example may run; they take one or two.
TIMEOUT = 120.0

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_NOT_RUN = re.compile(r"^\s*<!--\s*not run:\s*(?P<reason>.+?)\s*-->\s*$")
_PYTHON = ("python", "py", "python3")


class DocsError(Exception):
    """A page breaks the rules above; the message names the page and line."""


@attrs.frozen
class Example:
    """One ```` ```python ```` block of a page, with what it must print."""

    path: Path
    line: int  # of the opening fence, from 1
    code: str
    output: str | None = None
    not_run: str | None = None

    @property
    def name(self) -> str:
        path = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{path}:{self.line}"


@attrs.frozen
class _Block:
    line: int
    info: str
    text: str
    before: str  # the last non-blank line before the fence
    end: int  # the index of its closing fence in the page's lines

    @property
    def language(self) -> str:
        return self.info.split()[0] if self.info else ""


def pages() -> list[Path]:
    """README.md and every Markdown page of docs/, in a stable order."""
    docs = sorted(p for p in (ROOT / "docs").rglob("*.md") if "_build" not in p.parts)
    return [ROOT / "README.md", *docs]


def _blocks(path: Path, text: str) -> list[_Block]:
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        indent, fence = len(match["indent"]), match["fence"]
        closing = re.compile(rf"^ {{0,{indent + 3}}}{fence[0]}{{{len(fence)},}}\s*$")
        end = i + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        if end == len(lines):
            raise DocsError(f"{path}:{i + 1}: this fence is never closed")
        body = [line[indent:] if line[:indent].isspace() else line for line in lines[i + 1 : end]]
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        blocks.append(_Block(i + 1, match["info"].strip(), "\n".join(body) + "\n", before, end))
        i = end + 1
    return blocks


def parse(path: Path, text: str | None = None) -> list[Example]:
    """The examples of one page, each with its output block and marker."""
    text = path.read_text() if text is None else text
    lines = text.splitlines()
    blocks = _blocks(path, text)
    examples: list[Example] = []
    previous: _Block | None = None
    for block in blocks:
        if block.language == "output":
            follows = (
                previous is not None
                and previous.language in _PYTHON
                and all(not line.strip() for line in lines[previous.end + 1 : block.line - 1])
            )
            if not follows:
                raise DocsError(
                    f"{path}:{block.line}: an output block must come right after a python block"
                    " (blank lines only between); use a text block for other output"
                )
            examples[-1] = attrs.evolve(examples[-1], output=block.text)
        elif block.language in _PYTHON:
            marker = _NOT_RUN.match(block.before)
            examples.append(
                Example(path, block.line, block.text, not_run=marker and marker["reason"])
            )
        elif "not run:" in block.before:
            raise DocsError(f"{path}:{block.line}: a not-run marker is only for python blocks")
        previous = block
    return examples


def collect() -> list[Example]:
    """Every example of every page."""
    return [example for path in pages() for example in parse(path)]


def missing_optional(code: str) -> str | None:
    """The first optional package the script imports that is not installed."""
    imported = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    # Looked up, not imported: collection must not pay for importing torch.
    return next(
        (n for n in OPTIONAL if n in imported and importlib.util.find_spec(n) is None), None
    )


def _pattern(expected: str) -> re.Pattern[str]:
    parts = []
    for line in expected.rstrip("\n").splitlines():
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            text = ".*?".join(re.escape(piece) for piece in line.rstrip().split("..."))
            parts.append(text + r"\n")
    return re.compile("".join(parts))


def _normalize(output: str) -> str:
    lines = [line.rstrip() for line in output.rstrip("\n").splitlines()]
    return "\n".join(lines) + "\n" if lines else ""


def output_matches(expected: str, got: str) -> bool:
    """Whether ``got`` is what ``expected`` shows, with ``...`` as a wildcard."""
    return _pattern(expected).fullmatch(_normalize(got)) is not None


def mismatch(expected: str, got: str) -> str:
    """A readable diff of what the page shows against what the script printed."""
    diff = difflib.unified_diff(
        _normalize(expected).splitlines(),
        _normalize(got).splitlines(),
        "the page shows",
        "the script printed",
        lineterm="",
    )
    return "\n".join(diff)


def run(example: Example, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the example as a script in ``cwd``; return what it did."""
    script = cwd / "example.py"
    script.write_text(example.code)
    # A local Ray that an example starts keeps its files in a short path of
    # its own (its sockets' paths must stay under 108 bytes), removed after.
    with tempfile.TemporaryDirectory(prefix="snake-docs-") as ray_dir:
        env = {**os.environ, **RAY_ENV, "RAY_TMPDIR": ray_dir}
        return subprocess.run(
            [sys.executable, str(script)],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )


def check(example: Example, cwd: Path) -> None:
    """Run the example; raise ``AssertionError`` saying how it differs from its page."""
    done = run(example, cwd)
    where = f"the example at {example.name}"
    if done.returncode != 0:
        raise AssertionError(
            f"{where} exited with status {done.returncode}:\n{done.stdout}{done.stderr}"
        )
    if example.output is not None and not output_matches(example.output, done.stdout):
        raise AssertionError(
            f"{where} printed something else than its output block:\n"
            + mismatch(example.output, done.stdout)
        )
