"""Every ``bash`` and ``python`` block of README.md and docs/*.md runs, from the installed wheel.

A page's blocks run in order in one fresh temporary folder (they may build on each other),
each as a test named by its page and line, with ``$TFEDGE_TEST_DATA`` set to tests/data and
the environment's commands (``tfedge``, ``tfedge-convert``) first on ``PATH``. Two markers,
both invisible on GitHub and in the built site:

- ``<!-- not run: REASON -->`` on the line before a fence: the block is an illustration that
  cannot run here (a device, a cluster, a GPU); the test is skipped with that reason.
- ``<!-- setup`` ... ``-->`` around a fenced block: it runs in its place, like the others, and
  prepares what the next blocks name (a model file, an image) without showing it to the reader.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNABLE = {"bash", "python"}
NOT_RUN = re.compile(r"^<!--\s*not run:\s*(.+?)\s*-->$")
TIMEOUT = 900


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int
    language: str
    code: str
    setup: bool = False
    not_run: Optional[str] = None

    @property
    def name(self) -> str:
        """``README.md:42`` (``docs/x.md:7``), as the test id says it."""
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks_of(page: Path) -> List[Block]:
    """The page's fenced blocks in order; raises ValueError on a fence that never closes."""
    lines = page.read_text().splitlines()
    found: List[Block] = []
    in_setup, previous, i = False, "", 0
    while i < len(lines):
        text = lines[i].strip()
        if text == "<!-- setup":
            in_setup = True
        elif in_setup and text == "-->":
            in_setup = False
        elif text.startswith("```") and len(text) > 3:
            language, start = text[3:].split()[0], i
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
            if end is None:
                raise ValueError(f"{page}:{i + 1}: a ``` fence that never closes")
            reason = NOT_RUN.match(previous)
            found.append(Block(page, start + 1, language, "\n".join(lines[i + 1:end]) + "\n", in_setup,
                               reason.group(1) if reason else None))
            i = end
        if text:
            previous = text
        i += 1
    return found


def _cases() -> List[Block]:
    return [b for page in PAGES for b in blocks_of(page) if b.language in RUNNABLE]


CASES = _cases()
#: Each page's working folder, made when its first block runs.
_FOLDERS: Dict[Path, Path] = {}


def _run(block: Block, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["TFEDGE_TEST_DATA"] = str(ROOT / "tests" / "data")
    env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", "")))
    env["MPLBACKEND"] = "Agg"
    command = ["bash", "-euo", "pipefail", "-c", block.code] if block.language == "bash" else \
        [sys.executable, "-c", block.code]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)


@pytest.mark.parametrize("block", CASES, ids=[b.name for b in CASES])
def test_block_runs(block: Block, tmp_path_factory: pytest.TempPathFactory) -> None:
    if block.not_run is not None:
        pytest.skip(f"illustration: {block.not_run}")
    cwd = _FOLDERS.get(block.page)
    if cwd is None:
        cwd = _FOLDERS[block.page] = tmp_path_factory.mktemp(block.page.stem)
    proc = _run(block, cwd)
    assert proc.returncode == 0, f"{block.name} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def test_the_markers_are_read() -> None:
    import textwrap

    page = ROOT / "docs" / "_probe.md"
    text = textwrap.dedent("""\
        <!-- setup
        ```bash
        touch x
        ```
        -->

        <!-- not run: needs a Raspberry Pi -->
        ```bash
        reboot
        ```

        ```python
        print(1)
        ```
        """)
    blocks = _parse_text(page, text)
    assert [(b.language, b.setup, b.not_run, b.line) for b in blocks] == [
        ("bash", True, None, 2), ("bash", False, "needs a Raspberry Pi", 8), ("python", False, None, 12)]


def _parse_text(page: Path, text: str) -> List[Block]:
    """blocks_of() on text instead of a file."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / page.name
        path.write_text(text)
        return [Block(page, b.line, b.language, b.code, b.setup, b.not_run) for b in blocks_of(path)]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_local_links_resolve(page: Path) -> None:
    targets = re.findall(r"\]\(([^)\s]+)\)", page.read_text())
    local = [t.split("#")[0] for t in targets if "://" not in t and not t.startswith(("#", "mailto:"))]
    missing = [t for t in local if t and not (page.parent / t).exists()]
    assert not missing, f"{page.relative_to(ROOT)} links to files that do not exist: {missing}"
