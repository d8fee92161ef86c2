"""The one way tests run the `hedger` command line: `python -m streams` in a subprocess.

May import tests.factories (for the repository root) and the standard library.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.factories import REPO


def hedger(
    *argv: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
    inherit_settings: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run `hedger ARGV` from the repository root (or `cwd`) and capture its text output.

    `env` is added to this process's environment. With `inherit_settings=False` the
    HEDGER_* variables of this process are left out first, so only the flags, the
    config file and `env` configure the command.
    """
    base = dict(os.environ)
    if not inherit_settings:
        base = {k: v for k, v in base.items() if not k.startswith("HEDGER_")}
    return subprocess.run(
        [sys.executable, "-m", "streams", *argv],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        cwd=cwd or REPO,
        timeout=timeout,
        check=False,
    )


def hedger_ok(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`hedger` that fails the test, showing the command's output, on a non-zero exit."""
    done = hedger(*argv, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    return done
