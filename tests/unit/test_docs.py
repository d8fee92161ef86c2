"""README.md and docs/: the guide names the commands CI runs, and every link lands.

README.md is the guide (what the bot is, the two quick-start commands, a map
of the code, the contract in brief); reference text lives in docs/. These
tests check what a reader relies on: the quick-start commands are the ones
`.ci/run` runs, every relative link of README.md and docs/*.md points to a
file of this repository and, with a `#anchor`, to a heading of that file, and
README links every document of docs/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
CI = ROOT / ".ci" / "run"
# README is a guide; reference goes to docs/ (operations, architecture, ...).
README_MAX_LINES = 220

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def prose(path: Path) -> str:
    """The page without its fenced code blocks (shell lines are not links)."""
    return FENCE.sub("", path.read_text())


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped,
    spaces as hyphens, a repeated heading suffixed -1, -2, ..."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose(path).splitlines():
        heading = re.match(r"#{1,6} (.+)", line)
        if heading is None:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def relative_links(path: Path) -> list[str]:
    return [
        target
        for target in LINK.findall(prose(path))
        if not re.match(r"[a-z][a-z0-9+.-]*:", target)  # http:, https:, mailto:
    ]


def test_anchors_follow_github_rules() -> None:
    # Hand-written: the slugs GitHub gives these headings.
    page = DOCS / "operations.md"
    assert {"secure-set-up-a-sasl_ssl-broker", "topics-and-retention", "kill-switch"} <= (
        anchors(page)
    )


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_lands_in_the_repository(page: Path) -> None:
    for target in relative_links(page):
        file_part, _, anchor = target.partition("#")
        resolved = (page.parent / file_part).resolve() if file_part else page
        assert resolved.is_relative_to(ROOT), f"{page.name}: {target} leaves the repository"
        assert resolved.exists(), f"{page.name}: {target} names no file"
        if anchor and resolved.suffix == ".md":
            assert anchor in anchors(resolved), f"{page.name}: {target} names no heading"


def test_the_readme_links_every_document() -> None:
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in relative_links(README)}
    for doc in sorted(DOCS.glob("*.md")):
        assert doc.resolve() in linked, f"README.md does not link {doc.name}"


def test_the_readme_is_a_guide() -> None:
    lines = README.read_text().count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines: move reference to docs/"


def test_ci_runs_the_two_commands_the_readme_names() -> None:
    readme = README.read_text()
    blocks = re.findall(r"^```bash\n(.*?)^```", readme, re.DOTALL | re.MULTILINE)
    commands = [line for block in blocks for line in block.splitlines()]
    assert "bash scripts/setup && .venv/bin/hedger demo" in commands
    assert "bash scripts/test" in commands
    ci = [line.strip() for line in CI.read_text().splitlines() if not line.startswith("#")]
    # .ci/run: the set-up, then the test command, nothing after them.
    assert ci[-2:] == ["bash scripts/setup", "bash scripts/test"]
