"""A clone stands alone: no file of the repository reads the published contract folder beside it
or a path of one machine, and scripts/check-contract tells the repository's contract copies
from the published ones."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tests.factories import REPO

# Folders and files whose text could make a clone depend on what lies beside it.
SCANNED = [
    "hedger",
    "streams",
    "tests",
    "benchmarks",
    "scripts",
    "config",
    "docs",
    ".ci",
    "README.md",
    "pyproject.toml",
    "Dockerfile",
]
# The published contract beside the repository, the machine's work folder, home folders,
# and a path built from a "shared" segment (a parent folder joined with "shared").
FORBIDDEN = re.compile(
    # (split so that this line is not itself a machine path)
    r"\.\./shared|/" r"work/|/home/|/root/|/Users/|/\s*[\"']shared[\"']|[\"']shared[\"']\s*/"
)
# scripts/check-contract compares the repository's copies with the published folder when asked to:
# that is its job, and nothing else runs it.
ALLOWED = {"tests/unit/test_standalone.py"}
SKIPPED_DIRS = {"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis"}


def scanned_files() -> list[Path]:
    files: list[Path] = []
    for name in SCANNED:
        path = REPO / name
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files += [
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and not SKIPPED_DIRS.intersection(p.relative_to(REPO).parts)
            ]
    return files


def test_no_file_reads_shared_or_an_absolute_path_of_this_machine() -> None:
    files = scanned_files()
    assert REPO / "tests" / "factories.py" in files  # the scan reaches the test helpers
    hits = []
    for path in files:
        relative = path.relative_to(REPO).as_posix()
        if relative in ALLOWED:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary files (none hold paths)
        for n, line in enumerate(text.splitlines(), 1):
            if FORBIDDEN.search(line):
                hits.append(f"{relative}:{n}: {line.strip()}")
    assert hits == []


def test_the_pattern_catches_what_it_is_for() -> None:
    # Built from pieces, so that this file itself holds none of the paths it looks for.
    shared, up = '"shared"', ".."
    bad = [
        f"SHARED = Path(__file__).resolve().parents[2] / {shared}",
        f'EXAMPLES = Path("/{"work"}/shared/examples")',
        f"see {up}/shared/SPEC.md",
        "open('/home/me/spec.md')",
    ]
    assert all(FORBIDDEN.search(line) for line in bad)
    good = ['EXAMPLES = REPO / "tests" / "data" / "examples"', "a shared helper", "/tmp/x"]
    assert not any(FORBIDDEN.search(line) for line in good)


def published_copy(root: Path) -> Path:
    """A published contract folder (SPEC.md, examples/, tools/) built by hand from the
    repository's copies: the contract text below the marker line of docs/contract.md."""
    lines = (REPO / "docs" / "contract.md").read_text(encoding="utf-8").splitlines(keepends=True)
    (marker,) = [n for n, line in enumerate(lines) if line.startswith("<!-- contract: ")]
    root.mkdir()
    (root / "SPEC.md").write_text("".join(lines[marker + 1 :]), encoding="utf-8")
    assert (root / "SPEC.md").read_text().startswith("# Hedging contract v2.1\n")
    shutil.copytree(REPO / "tests" / "data" / "examples", root / "examples")
    shutil.copytree(REPO / "tests" / "data" / "tools", root / "tools")
    return root


def check_contract(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "scripts" / "check-contract"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_contract_says_equal_copies_are_equal(tmp_path: Path) -> None:
    published = published_copy(tmp_path / "published")
    result = check_contract(str(published))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("\n") == 1
    assert "equal" in result.stdout


def test_check_contract_gives_one_line_per_difference(tmp_path: Path) -> None:
    published = published_copy(tmp_path / "published")
    with (published / "SPEC.md").open("a", encoding="utf-8") as spec:
        spec.write("\n## 15. A new section\n")
    (published / "examples" / "walkthrough.jsonl").unlink()
    (published / "examples" / "desk-v3.jsonl").write_text("{}\n")
    (published / "tools" / "compare_orders.py").write_text("print('v3')\n")
    result = check_contract(str(published))
    assert result.returncode == 1
    assert sorted(result.stdout.splitlines()) == sorted(
        [
            f"docs/contract.md differs from {published.resolve()}/SPEC.md",
            "tests/data/examples/desk-v3.jsonl is missing (published: examples/desk-v3.jsonl)",
            "tests/data/examples/walkthrough.jsonl is not published"
            " (examples/walkthrough.jsonl does not exist)",
            "tests/data/tools/compare_orders.py differs from the published tools/compare_orders.py",
        ]
    )


def test_check_contract_without_a_published_contract_is_one_line_and_exit_2(
    tmp_path: Path,
) -> None:
    result = check_contract(str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert "no published contract" in result.stderr
