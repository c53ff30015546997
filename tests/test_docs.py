"""Every Python example of README.md and docs/ runs and prints what its page shows.

The rules are in ``docs_examples``; this module runs the examples and tests
the rules themselves, so that a broken example cannot pass unnoticed.
"""

from __future__ import annotations

import doctest
import re
from typing import TYPE_CHECKING

import docs_examples as docs
import pytest
import trio

import snake
import snake.testing

if TYPE_CHECKING:
    from pathlib import Path


def _params() -> list[object]:
    params = []
    for example in docs.collect():
        marks = []
        if example.not_run is not None:
            marks.append(pytest.mark.skip(reason=f"not run: {example.not_run}"))
        else:
            missing = docs.missing_optional(example.code)
            if missing is not None:
                marks.append(pytest.mark.skip(reason=f"needs {missing}, which .ci/run installs"))
        params.append(pytest.param(example, id=example.name, marks=marks))
    return params


@pytest.mark.parametrize("example", _params())
def test_example(example: docs.Example, tmp_path: Path) -> None:
    docs.check(example, tmp_path)


def test_every_page_has_examples_found() -> None:
    # The collector finds the examples where they are: a parser that found
    # none would pass every page.
    found = {example.path.name for example in docs.collect()}
    assert {"README.md", "tutorial.md", "contract.md", "operators.md"} <= found


def test_api_reference_lists_every_public_name() -> None:
    page = (docs.ROOT / "docs" / "api.md").read_text()
    documented = set(re.findall(r"^\.\. auto\w+:: (\w+)", page, re.MULTILINE))
    public = {*snake.__all__, *snake.testing.__all__}
    assert public <= documented, sorted(public - documented)


PAGE = """\
Some prose.

```python
print("one")
print("two 2.5 s")
```

```output
one
two ... s
```

<!-- not run: needs a GPU -->
```python
import torch
torch.ones(1, device="cuda")
```

  ```text
  not an example
  ```
"""


def test_parse_pairs_output_and_markers(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    first, second = docs.parse(page)
    assert (first.line, first.output) == (3, "one\ntwo ... s\n")
    assert first.not_run is None
    assert (second.line, second.output, second.not_run) == (14, None, "needs a GPU")


@pytest.mark.parametrize(
    ("expected", "got", "matches"),
    [
        ("one\ntwo ... s\n", "one\ntwo 2.5 s\n", True),
        ("one\ntwo ... s\n", "one\ntwo 12 s\n", True),
        ("one\ntwo ... s\n", "one\nthree 2.5 s\n", False),
        ("one\n...\nfour\n", "one\ntwo\nthree\nfour\n", True),
        ("one\n...\nfour\n", "one\nfour\n", True),
        ("one\n...\nfour\n", "one\ntwo\n", False),
        ("a ... b\n", "a x\ny b\n", False),  # within a line only
        ("1\n", "10\n", False),
        ("1\n", "1\n2\n", False),  # every line printed is shown
        ("1   \n\n", "1\n", True),  # trailing spaces and blank lines aside
    ],
)
def test_output_matching(expected: str, got: str, matches: bool) -> None:
    assert docs.output_matches(expected, got) is matches


def test_a_broken_example_fails(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(PAGE.replace('print("one")', 'print("won")'))
    example = docs.parse(page)[0]
    with pytest.raises(AssertionError, match=r"(?s)-one.*\+won"):
        docs.check(example, tmp_path)
    crashing = page.read_text().replace('print("won")', "raise SystemExit(3)")
    page.write_text(crashing)
    with pytest.raises(AssertionError, match="exited with status 3"):
        docs.check(docs.parse(page)[0], tmp_path)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("```output\n1\n```\n", "must come right after a python block"),
        ("```python\nprint(1)\n```\n\nprose\n\n```output\n1\n```\n", "right after"),
        ("<!-- not run: x -->\n```text\n1\n```\n", "only for python blocks"),
        ("```python\nprint(1)\n", "never closed"),
    ],
)
def test_misplaced_blocks_are_refused(tmp_path: Path, text: str, error: str) -> None:
    page = tmp_path / "page.md"
    page.write_text(text)
    with pytest.raises(docs.DocsError, match=error):
        docs.parse(page)


def _docstring_examples() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    found: dict[str, doctest.DocTest] = {}
    for module in (snake, snake.testing):
        for name in module.__all__:
            qualified = f"{module.__name__}.{name}"
            for test in finder.find(getattr(module, name), qualified, globs={}):
                if test.examples:
                    found.setdefault(test.name, test)
    return sorted(found.values(), key=lambda test: test.name)


DOCSTRING_EXAMPLES = _docstring_examples()


@pytest.mark.parametrize("test", DOCSTRING_EXAMPLES, ids=lambda test: test.name)
def test_docstring_example(test: doctest.DocTest) -> None:
    # The `Example:` sections the API reference shows run as doctests.
    test.globs = {"snake": snake, "trio": trio}
    out: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    result = runner.run(test, out=out.append, clear_globs=True)
    assert result.failed == 0, "".join(out)


def test_the_main_entry_points_have_docstring_examples() -> None:
    names = {test.name for test in DOCSTRING_EXAMPLES}
    expected = {"snake.from_iterable", "snake.Pipeline.par_map", "snake.Pipeline.open"}
    expected.add("snake.testing.no_leaks")
    assert expected <= names
