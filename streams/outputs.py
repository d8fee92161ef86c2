"""Output files that never destroy inputs: checked targets, atomic writes.

Owns: the rules every file a command writes follows (`replay`'s orders, dead
letters, sellers and metrics, `dump --out`):

* an output is never one of the command's inputs, nor another output of the
  same command (paths compared resolved, so symlinks and relative spellings
  count as the same file);
* an output is a regular file or does not exist yet: a directory, a device
  (`/dev/null`), a FIFO or a socket is refused, never replaced;
* a missing output folder is created (so `--orders-out build/orders.jsonl`
  works on a fresh clone); a folder path that is a file is refused;
* the content goes to a temporary file in the target's folder, which replaces
  the target (`os.replace`) only once complete: a failed run leaves the old
  file as it was, and a reader never sees half a file. A symlinked target is
  written through: the link keeps pointing to the new file.

Problems raise `OutputError`, one line naming the file. Imports the standard
library only.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, BinaryIO, TextIO


class OutputError(ValueError):
    """An output that may not or cannot be written: one line naming it."""


def resolve_output(path: str | Path) -> Path:
    """The file `path` names, symlinks resolved; `OutputError` unless it may be written.

    Refuses an existing target that is not a regular file, and a folder path
    that exists but is not a folder. Creates nothing.
    """
    shown = str(path)
    try:
        target = Path(path).expanduser().resolve()
        mode: int | None = target.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):  # the folder is checked below
        mode = None
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python 3.11)
        reason = exc.strerror if isinstance(exc, OSError) else "symlink loop"
        raise OutputError(f"{shown}: cannot use as output: {reason}") from None
    if mode is not None and not stat.S_ISREG(mode):
        raise OutputError(f"{shown}: is {_kind(mode)}, not a regular file; refusing to replace it")
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{shown}: {parent} is not a folder")
            break
    return target


def check_outputs(inputs: Iterable[str | Path], outputs: Iterable[str | Path | None]) -> None:
    """Refuse an output that is an input or another output, or may not be written."""
    seen: dict[Path, str] = {}
    for path in inputs:
        try:
            seen[Path(path).expanduser().resolve()] = f"the input {path}"
        except (OSError, RuntimeError):  # a symlink loop: the input's own check reports it
            continue
    for output in outputs:
        if output is None:
            continue
        target = resolve_output(output)
        if target in seen:
            raise OutputError(f"{output}: is {seen[target]}; refusing to overwrite it")
        seen[target] = f"also the output {output}"


@contextmanager
def atomic_text(path: str | Path) -> Iterator[TextIO]:
    """`with atomic_text(path) as out:` — write `path` (UTF-8) whole or not at all.

    The target is checked (`resolve_output`) and its folder created if
    missing; on an exception inside the block the temporary file is removed
    and the target left untouched.
    """
    with _replacing(path) as (fd, target):
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            yield out
            _sync(out, target)


@contextmanager
def atomic_bytes(path: str | Path) -> Iterator[BinaryIO]:
    """Like `atomic_text`, for bytes."""
    with _replacing(path) as (fd, target):
        with os.fdopen(fd, "wb") as out:
            yield out
            _sync(out, target)


def _sync(out: IO[str] | IO[bytes], target: Path) -> None:
    out.flush()
    os.fsync(out.fileno())
    os.fchmod(out.fileno(), _mode_for(target))


@contextmanager
def _replacing(path: str | Path) -> Iterator[tuple[int, Path]]:
    """A temporary file's descriptor beside the target; replaces the target on success."""
    target = resolve_output(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
        )
    except OSError as exc:
        raise OutputError(f"{path}: cannot write in {target.parent}: {exc.strerror}") from None
    temp = Path(temp_name)
    try:
        yield fd, target
        # The target may have become something else meanwhile: check again.
        resolve_output(target)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _mode_for(target: Path) -> int:
    """The existing file's permissions, or what a new file gets under the umask."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"
