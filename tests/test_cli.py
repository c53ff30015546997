"""The ``snake`` command and the set-up the README promises."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from snake._apps._cli import _parser, main
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


def refusal(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one error line ``snake`` exits with, status 2, for ``argv``."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: snake ")
    assert "Traceback" not in err
    return err.splitlines()[-1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scale", "inf"], "argument --scale: must be a finite number, got 'inf'"),
        (["--scale", "nan"], "argument --scale: must be a finite number, got 'nan'"),
        (["--scale", "fast"], "argument --scale: must be a number, got 'fast'"),
        (["--items", "0"], "argument --items: must be >= 1, got 0"),
        (["--items", "-5"], "argument --items: must be >= 1, got -5"),
        (["--items", "ten"], "argument --items: must be a whole number, got 'ten'"),
    ],
)
def test_snake_demo_refuses_every_bad_value_in_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert refusal(["demo", *args], capsys) == f"snake demo: error: {message}"


@pytest.fixture
def temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary folder ``snake images`` makes its synthetic set in, empty."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--count", "0"], "argument --count: must be >= 1, got 0"),
        (["--count", "-1"], "argument --count: must be >= 1, got -1"),
        (["--count", "1e3"], "argument --count: must be a whole number, got '1e3'"),
        (["--batch-size", "0"], "argument --batch-size: must be >= 1, got 0"),
        (["--batch-size", "-32"], "argument --batch-size: must be >= 1, got -32"),
        (["--batch-size", "many"], "argument --batch-size: must be a whole number, got 'many'"),
        (
            ["--executor", "ray"],
            "argument --executor: invalid choice: 'ray' (choose from 'thread', 'process')",
        ),
        (
            ["{missing}"],
            "argument dir: no such folder: '{missing}'; leave DIR out for a synthetic set",
        ),
        ([""], "argument dir: no such folder: ''; leave DIR out for a synthetic set"),
        (
            ["{empty}"],
            "argument dir: no .jpg or .jpeg files in '{empty}'; leave DIR out for a synthetic set",
        ),
        (
            ["{pngs}"],
            "argument dir: no .jpg or .jpeg files in '{pngs}'; leave DIR out for a synthetic set",
        ),
        (
            ["{file}"],
            "argument dir: '{file}' is a file, not a folder: give the folder of .jpg files",
        ),
        (
            ["{jpegs}", "--count", "5"],
            "argument --count: sizes the synthetic set; leave it out with DIR",
        ),
    ],
)
def test_snake_images_refuses_every_bad_input_in_one_line_and_makes_nothing(
    args: list[str],
    message: str,
    tmp_path: Path,
    temporary: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    paths = {name: tmp_path / name for name in ("missing", "empty", "pngs", "jpegs")}
    for name in ("empty", "pngs", "jpegs"):
        paths[name].mkdir()
    (paths["pngs"] / "a.png").write_bytes(b"")
    (paths["jpegs"] / "a.JPG").write_bytes(b"")
    paths["file"] = paths["jpegs"] / "a.JPG"
    names = {name: str(path) for name, path in paths.items()}
    argv = ["images", *(arg.format(**names) for arg in args)]
    assert refusal(argv, capsys) == "snake images: error: " + message.format(**names)
    assert list(temporary.iterdir()) == []


def test_snake_images_says_when_it_cannot_make_the_synthetic_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(blocker))
    line = refusal(["images", "--count", "2"], capsys)
    assert line.startswith("snake images: error: cannot make the synthetic set: ")
    assert line.endswith("; set TMPDIR or give DIR")


@pytest.mark.parametrize(
    ("hidden", "args", "message"),
    [
        ("PIL", [], "Pillow is not installed, and snake's image pipeline needs Pillow and numpy: "
         'pip install -e ".[images]"'),
        ("numpy", [], "numpy is not installed, and snake's image pipeline needs Pillow and numpy: "
         'pip install -e ".[images]"'),
        ("torch", ["--torch"], "--torch makes torch tensors, and torch is not installed: "
         "pip install torch==2.13.0 (a CPU build), or leave --torch out for numpy arrays"),
    ],
)  # fmt: skip
def test_snake_images_without_a_needed_package_says_what_to_install(
    hidden: str, args: list[str], message: str, tmp_path: Path
) -> None:
    # None in sys.modules makes `import <hidden>` fail, as if it were not installed.
    hide = (
        f"import sys; sys.modules[{hidden!r}] = None; "
        f"from snake._apps._cli import main; raise SystemExit(main(['images', *{args!r}]))"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", hide],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == f"snake images: error: {message}"
    assert list(tmp_path.iterdir()) == []


def test_snake_script_refuses_a_missing_folder_without_a_traceback() -> None:
    done = run_snake("images", "/nonexistent")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines()[-1] == (
        "snake images: error: argument dir: no such folder: '/nonexistent'; "
        "leave DIR out for a synthetic set"
    )
    assert "Traceback" not in done.stderr


def test_snake_help_is_plain_text_with_help_for_every_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for command in ([], ["demo"], ["images"]):
        with pytest.raises(SystemExit) as exited:
            main([*command, "--help"])
        assert exited.value.code == 0
        assert "`" not in capsys.readouterr().out  # no reStructuredText markup
    commands = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command, parser in commands.choices.items():
        for action in parser._actions:
            assert action.help, f"snake {command}: {action.dest} has no help"


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
