"""What a user's error prints: their own frames, not snake's and trio's in between.

``python tests/test_tracebacks.py`` prints the figures: for each case, the
frames (and their lines) of snake, trio and ``contextlib`` in the traceback.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
import trio

import snake

if TYPE_CHECKING:
    from pathlib import Path

SCRIPT = """
import sys, traceback, trio, snake

def bad(x):
    if x == 3:
        try:
            {}[x]
        except KeyError as exc:
            raise ValueError("bad item") from exc
    return x

async def abad(x):
    await trio.sleep(0)
    return bad(x)

STAGES = {
    "map": lambda source: source.map(bad),
    "par_then": lambda source: source.par_then(abad),
    "par_map": lambda source: source.par_map(bad),
}

if __name__ == "__main__":
    for name, stage in STAGES.items():
        pipeline = stage(snake.from_iterable(range(6)))
        for how in ["list", "collect"]:
            print(f"=== {name} {how}")
            try:
                if how == "list":
                    list(pipeline)
                else:
                    trio.run(pipeline.collect)
            except ValueError as exc:
                traceback.print_exception(exc, file=sys.stdout)
"""

#: Where the frames of the machinery come from.
PACKAGES = [os.path.dirname(str(m.__file__)) + os.sep for m in (snake, trio)]
MACHINERY = (*PACKAGES, "contextlib.py")


def tracebacks(folder: Path) -> dict[str, str]:
    """Each case's printed traceback, by ``"<stage> <how>"``."""
    (folder / "cases.py").write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, "cases.py"], cwd=folder, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    sections = re.split(r"^=== (.+)\n", done.stdout, flags=re.MULTILINE)[1:]
    return dict(zip(sections[::2], sections[1::2], strict=True))


def machinery(text: str) -> tuple[int, int]:
    """The frames of snake, trio and ``contextlib`` in a printed traceback, and their lines."""
    frames = lines = 0
    inside = False
    for line in text.splitlines():
        if match := re.match(r'  File "([^"]+)"', line):
            inside = any(part in match[1] for part in MACHINERY)
            frames += inside
        elif not line.startswith("    "):
            inside = False
        lines += inside
    return frames, lines


CASES = [
    f"{stage} {how}" for stage in ("map", "par_then", "par_map") for how in ("list", "collect")
]


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return tracebacks(tmp_path_factory.mktemp("tracebacks"))


@pytest.mark.parametrize("case", CASES)
def test_a_users_error_prints_their_frames_and_at_most_trio_runs(
    printed: dict[str, str], case: str
) -> None:
    text = printed[case]
    # ``list`` leads straight to the user's function; ``trio.run`` re-raises
    # in a frame of its own.
    assert machinery(text)[0] <= (0 if case.endswith("list") else 1), text
    # The call site, the function and its line, the cause and the note stay.
    call = "list(pipeline)" if case.endswith("list") else "trio.run(pipeline.collect)"
    assert f"    {call}\n" in text
    assert '    raise ValueError("bad item") from exc\n' in text
    assert "    {}[x]\n" in text
    assert "The above exception was the direct cause of the following exception" in text
    assert f"snake: in stage #1 {case.split()[0]}(" in text


def main() -> None:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        printed = tracebacks(Path(folder))
    print(f"{'case':18} {'frames':>6} {'their lines':>11} {'all lines':>9}")
    for case in CASES:
        frames, lines = machinery(printed[case])
        print(f"{case:18} {frames:6} {lines:11} {len(printed[case].splitlines()):9}")


if __name__ == "__main__":
    main()
