"""The docs run: every ```python block of README.md and docs/*.md, pasted into a fresh Python.

Each block is one test, named by its file and the line of its opening fence
(``README.md:47``), and runs in a new interpreter (``sys.executable -c
block``) from the repository root with the frameworks' default settings: no
``JAX_*`` variable of this process reaches it, so JAX runs with x64 off unless
the block turns it on, as it would for a reader who pastes it. A block must
exit 0; what it claims it checks with ``assert``. Code that is not meant to
run (a slide as the deck prints it, shell commands, output) is fenced as
```text, ```bash, ... and not collected.

A page also points at the tests that show each erratum and at the files that
hold what it explains; the last two tests check that every
``tests/<file>.py::<name>``, every repository path in backticks and every
linked file (a figure, another page) exists.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
TEST_REF = re.compile(r"tests/(test_\w+)\.py::(\w+)")
# a path of the repository in backticks (`crosscheck/ops/loading.py`), a Markdown link to a file
PATH_REF = re.compile(r"`((?:tests|crosscheck|refs|torch_impl|docs)/[\w./-]*)(?:::\w+)?`")
LINK_REF = re.compile(r"\]\(((?!https?:|#)[^)#\s]+)(?:#[^)]*)?\)")


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """``(line of the opening fence, code)`` of every ```python block in ``path``."""
    text = path.read_text()
    return [(text.count("\n", 0, m.start()) + 1, m.group(2))
            for m in FENCE.finditer(text) if m.group(1) == "python"]


BLOCKS = [pytest.param(code, id=f"{page.relative_to(ROOT)}:{line}")
          for page in PAGES for line, code in python_blocks(page)]


def run_fresh(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``code`` in a new interpreter from the repository root, as a reader would run it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_FLAGS"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["JAX_PLATFORMS"] = os.environ.get("JAX_PLATFORMS", "cpu")  # no accelerator probing
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_the_pages_have_blocks():
    assert (ROOT / "docs").is_dir()
    pages = {p.name for p in PAGES if python_blocks(p)}
    assert pages >= {"README.md", "vectorization.md", "convolution-like.md", "loading.md",
                     "hooks.md", "training.md"}


@pytest.mark.parametrize("code", BLOCKS)
def test_block_runs_as_pasted(code):
    result = run_fresh(code)
    assert result.returncode == 0, (
        f"exit {result.returncode}\n--- stdout\n{result.stdout[-3000:]}\n"
        f"--- stderr\n{result.stderr[-3000:]}")


def test_every_test_a_page_names_exists():
    named = {(page.name, m.group(1), m.group(2))
             for page in PAGES for m in TEST_REF.finditer(page.read_text())}
    assert named, "the pages point at no test"
    missing = []
    for page, module, name in sorted(named):
        source = (ROOT / "tests" / f"{module}.py")
        if not source.exists() or not re.search(rf"^def {name}\(", source.read_text(), re.M):
            missing.append(f"{page}: tests/{module}.py::{name}")
    assert not missing, "pages name tests that do not exist:\n" + "\n".join(missing)


def test_every_file_a_page_names_exists():
    missing = []
    for page in PAGES:
        text = page.read_text()
        paths = {ROOT / m.group(1) for m in PATH_REF.finditer(text)}
        paths |= {page.parent / m.group(1) for m in LINK_REF.finditer(text)}
        missing += [f"{page.relative_to(ROOT)}: {p.relative_to(ROOT)}"
                    for p in sorted(paths) if not p.exists()]
    assert not missing, "pages name files that do not exist:\n" + "\n".join(missing)
