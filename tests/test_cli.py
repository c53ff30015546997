"""The ``snake`` command and the set-up the README promises."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from snake._apps._demo import fib, fib_input

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).parent / "snake"


def run_snake(*args: str) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.exists(), f"the `snake` script is not installed next to {sys.executable}"
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_snake_demo_prints_the_results_in_order_and_the_timings() -> None:
    done = run_snake("demo", "--items", "12", "--scale", "0.001")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "12 results, in input order:"
    numbers = [int(n) for n in re.findall(r"\d+", " ".join(lines[1 : lines.index("")]))]
    assert numbers == [fib(fib_input(i)) for i in range(12)]
    for label in ("elapsed", "sequential run", "ideal", "speed-up"):
        assert any(line.startswith(label) for line in lines), label


def test_snake_demo_stats_prints_the_stage_table_and_the_bottleneck() -> None:
    done = run_snake("demo", "--items", "12", "--scale", "0.001", "--stats")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("stage "))
    assert [line.split()[0] for line in lines[header + 2 : header + 5]] == ["#0", "#1", "#3"]
    assert "#3 par_map(fib)" in lines[header + 4]
    assert lines[header + 4].split()[2:4] == ["12", "12"]
    assert lines[-1].startswith("elapsed ")
    assert "bottleneck: " in lines[-1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scale", "-1"], "argument --scale: must be >= 0, got -1.0"),
        (["--items", "2.5"], "argument --items: must be a whole number, got '2.5'"),
    ],
)
def test_snake_demo_refuses_bad_options_with_the_reason(args: list[str], message: str) -> None:
    done = run_snake("demo", *args)
    assert done.returncode == 2
    assert message in done.stderr


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    assert text.startswith("# snake\n\n```sh\n"), "README.md must open with its commands"
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    return block.strip().splitlines()


def test_readme_opens_with_the_demo_and_the_test_command() -> None:
    install, test = readme_commands()
    assert install == "pip install -e . && snake demo"
    assert test.startswith('pip install -e ".[test]" && ')
    assert "pytest" in test


def test_ci_runs_the_readme_test_command_and_fails_when_no_test_ran() -> None:
    ci = ROOT / ".ci" / "run"
    assert os.access(ci, os.X_OK)
    printed = subprocess.run(
        [str(ci), "--print-command"], capture_output=True, text=True, check=True
    )
    test_command, docs_command = printed.stdout.strip().splitlines()
    assert test_command == readme_commands()[1]
    # The docs build is strict: any warning or unresolved reference fails it.
    assert docs_command.startswith('pip install -e ".[docs]" && python -m sphinx -W ')
    assert " -n " in docs_command
    assert docs_command in (ROOT / "README.md").read_text()
    text = ci.read_text()
    assert re.search(r'if \[ "\$status" -eq 5 \]; then.*?exit 1', text, re.DOTALL)
