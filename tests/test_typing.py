"""What a type checker sees of snake, in a user's code: mypy strict on small snippets."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The python of a new environment where snake is installed as the README says."""
    folder = tmp_path_factory.mktemp("installed")
    # A clone of the parts `pip install -e .` reads, so the checkout gets no snake.egg-info.
    clone = folder / "clone"
    shutil.copytree(ROOT / "snake", clone / "snake", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, clone / name)
    venv = folder / "venv"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "venv", str(venv)], env=env, timeout=120, check=True)
    # The README's `pip install -e .`, with the pip of the new environment.
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-e", "."],
        cwd=clone, capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    return str(venv / "bin" / "python")


def mypy(code: str, folder: Path, python: str) -> list[str]:
    """mypy --strict's lines on ``code``, run in ``folder`` for ``python``'s packages."""
    (folder / "user.py").write_text(textwrap.dedent(code))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary",
         "--cache-dir", os.devnull, "--python-executable", python, "user.py"],
        cwd=folder, capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert not done.stderr, done.stderr
    return done.stdout.splitlines()


def test_unbatch_after_batch_gives_the_items_type_and_refuses_items_that_are_not_iterable(
    tmp_path: Path, installed: str
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
        installed,
    )
    assert lines[0] == 'user.py:4: note: Revealed type is "snake._pipeline.Pipeline[int]"'
    assert lines[1] == 'user.py:6: note: Revealed type is "snake._pipeline.Pipeline[str]"'
    assert lines[2].startswith(
        'user.py:7: error: Invalid self argument "Pipeline[int]" to attribute function "unbatch"'
    )
    assert all(line.startswith("user.py:7: ") for line in lines[2:]), lines


def test_the_readmes_editable_install_is_found_and_typed_by_mypy_from_elsewhere(
    tmp_path: Path, installed: str
) -> None:
    lines = mypy(
        """\
        import snake

        reveal_type(snake.from_iterable([1]))
        """,
        tmp_path,  # outside the clone
        installed,
    )
    assert lines == ['user.py:3: note: Revealed type is "snake._pipeline.Pipeline[int]"']
