"""A library built on snake (``examples/tokenpack``) passes its own property tests.

They are written with ``snake.testing`` as a downstream project would write
them, and run as that project runs them: pytest in a fresh process, with the
project's own configuration and snake's leak-check plugin.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent / "examples" / "tokenpack"


def test_the_example_library_passes_its_own_tests() -> None:
    tests = PROJECT / "tests" / "test_tokenpack.py"
    written = len(re.findall(r"^def test_", tests.read_text(), re.MULTILINE))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(PROJECT), "-q"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = done.stdout.strip().splitlines()[-1]
    # Every test it has ran and passed: none skipped, none deselected.
    assert re.match(rf"{written} passed in ", summary), summary
