"""What a type checker sees of snake, in a user's code: mypy strict on small snippets."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the module's runs: trio and attrs are analysed once (about 15 s)."""
    return tmp_path_factory.mktemp("mypy-cache")


def mypy(
    code: str, folder: Path, cache: Path, python: str = sys.executable, path: str | None = None
) -> list[str]:
    """mypy --strict's lines on ``code``, run in ``folder`` for ``python``'s packages."""
    (folder / "user.py").write_text(textwrap.dedent(code))
    env = {**os.environ, "PYTHONPATH": path or ""}
    if path is None:
        del env["PYTHONPATH"]
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary",
         "--cache-dir", str(cache), "--python-executable", python, "user.py"],
        cwd=folder, capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert not done.stderr, done.stderr
    return done.stdout.splitlines()


def test_unbatch_after_batch_gives_the_items_type_and_refuses_items_that_are_not_iterable(
    tmp_path: Path, mypy_cache: Path
) -> None:
    lines = mypy(
        """\
        import snake

        items = snake.from_iterable(range(5)).batch(2).unbatch()
        reveal_type(items)
        pairs = snake.from_iterable([("a", "b")]).unbatch()
        reveal_type(pairs)
        wrong = snake.from_iterable(range(5)).unbatch()
        """,
        tmp_path,
        mypy_cache,
        path=str(ROOT),  # this checkout's snake, found as an installed package would be
    )
    assert lines[0] == 'user.py:4: note: Revealed type is "snake._pipeline.Pipeline[int]"'
    assert lines[1] == 'user.py:6: note: Revealed type is "snake._pipeline.Pipeline[str]"'
    assert lines[2].startswith(
        'user.py:7: error: Invalid self argument "Pipeline[int]" to attribute function "unbatch"'
    )
    assert all(line.startswith("user.py:7: ") for line in lines[2:]), lines
