"""Sphinx configuration: the site built from docs/ (MyST Markdown) and the API reference."""

from __future__ import annotations

import snake

project = "snake"
author = "the snake developers"
copyright = "2026, the snake developers"  # noqa: A001 - Sphinx's own name
release = snake.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
root_doc = "index"

# GitHub's heading anchors, so that links between pages work on GitHub too.
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# Every reference must resolve, except those to other projects' objects
# (the build reads no inventories over the network) and to type variables.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(trio|trio_parallel|typing|collections\.abc|contextlib|ray|hypothesis)\..*"),
    # hypothesis's strategies, as snake.testing's annotations name them.
    (r"py:class", r"st\.SearchStrategy"),
    # MapStyle: the private protocol of from_iterable's map-style datasets,
    # which its docstring describes.
    (r"py:class", r"AbstractAsyncContextManager|Literal|MapStyle"),
    (r"py:class", r"(snake\.[\w.]+\.)?[TUF]"),
]

html_theme = "furo"
html_title = f"snake {release}"
