"""Outputs never destroy inputs: checked targets, atomic writes.

Through the real `hedger replay` and `hedger dump` command lines: an output
equal to the input (also via a symlink or a relative path) is refused and the
input is left byte for byte; a device, a folder or a pipe is never replaced;
a missing output folder is created; a failed run leaves the previous output
as it was; `dump --out` is checked before Kafka is contacted.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from streams.cli.common import EXIT_CORRUPT_LOG, EXIT_OK, EXIT_USAGE
from streams.cli.main import main
from streams.outputs import OutputError, atomic_text, check_outputs, resolve_output
from tests.factories import REPO

SAMPLE = REPO / "samples" / "desk-day.jsonl"
CONFIG = REPO / "config" / "hedger.toml"


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """A small copy of the sample log (its first 200 lines)."""
    path = tmp_path / "in.jsonl"
    with SAMPLE.open(encoding="utf-8") as source:
        path.write_text("".join(line for _, line in zip(range(200), source, strict=False)))
    return path


def replay(log: Path, tmp_path: Path, *extra: str) -> list[str]:
    argv = ["replay", str(log), "--config", str(CONFIG), "--quiet"]
    if "--orders-out" not in extra:
        argv += ["--orders-out", str(tmp_path / "orders.jsonl")]
    if "--dead-letters-out" not in extra:
        argv += ["--dead-letters-out", str(tmp_path / "dead.jsonl")]
    return [*argv, *extra]


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith("error: "), err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("spelling", ["same", "relative", "symlink", "dotted"])
@pytest.mark.parametrize("option", ["--orders-out", "--dead-letters-out", "--metrics-out"])
def test_an_output_equal_to_the_input_log_is_refused(
    spelling: str,
    option: str,
    log: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = log.read_bytes()
    monkeypatch.chdir(tmp_path)
    if spelling == "same":
        target = str(log)
    elif spelling == "relative":
        target = log.name
    elif spelling == "dotted":
        (tmp_path / "sub").mkdir()
        target = f"sub/../{log.name}"
    else:
        (tmp_path / "link.jsonl").symlink_to(log)
        target = "link.jsonl"
    assert main(replay(log, tmp_path, option, target)) == EXIT_USAGE
    err = one_error_line(capsys)
    assert "is the input" in err and "refusing to overwrite" in err
    assert log.read_bytes() == before
    assert not (tmp_path / "orders.jsonl").exists()  # nothing written at all


def test_the_configuration_is_an_input_too(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "hedger.toml"
    config.write_bytes(CONFIG.read_bytes())
    argv = replay(log, tmp_path, "--sellers-out", str(config))
    argv[argv.index("--config") + 1] = str(config)
    assert main(argv) == EXIT_USAGE
    assert "is the input" in one_error_line(capsys)
    assert config.read_bytes() == CONFIG.read_bytes()


def test_two_outputs_on_one_file_are_refused(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    same = str(tmp_path / "out.jsonl")
    assert main(replay(log, tmp_path, "--orders-out", same, "--dead-letters-out", same)) == 2
    assert "also the output" in one_error_line(capsys)


@pytest.mark.parametrize(
    "option", ["--orders-out", "--dead-letters-out", "--metrics-out", "--sellers-out"]
)
@pytest.mark.parametrize("target", ["/dev/null", "folder", "fifo"])
def test_a_device_a_folder_or_a_pipe_is_never_replaced(
    option: str, target: str, log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if target == "folder":
        path = tmp_path / "a-folder"
        path.mkdir()
        kind = "a folder"
    elif target == "fifo":
        path = tmp_path / "a-fifo"
        os.mkfifo(path)
        kind = "a pipe"
    else:
        path = Path(target)
        kind = "a device"
    before = path.stat()
    assert main(replay(log, tmp_path, option, str(path))) == EXIT_USAGE
    err = one_error_line(capsys)
    assert f"is {kind}, not a regular file" in err
    after = path.stat()
    assert (after.st_ino, after.st_mode, after.st_rdev) == (
        before.st_ino,
        before.st_mode,
        before.st_rdev,
    )
    if target == "/dev/null":
        assert stat.S_ISCHR(after.st_mode)


def test_missing_output_folders_are_created(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The README's command on a fresh clone: build/ does not exist yet.
    monkeypatch.chdir(tmp_path)
    argv = replay(
        log,
        tmp_path,
        "--orders-out",
        "build/orders.jsonl",
        "--dead-letters-out",
        "build/deep/dead-letters.jsonl",
        "--metrics-out",
        "build/metrics.prom",
        "--sellers-out",
        "build/sellers.jsonl",
    )
    assert main(argv) == EXIT_OK, capsys.readouterr().err
    build = tmp_path / "build"
    assert (build / "orders.jsonl").read_text().count("\n") > 0
    assert (build / "deep" / "dead-letters.jsonl").is_file()
    assert "hedger_events_total" in (build / "metrics.prom").read_text()
    assert (build / "sellers.jsonl").is_file()
    leftovers = [p.name for p in build.rglob(".*.tmp")]
    assert leftovers == []
    mode = stat.S_IMODE((build / "orders.jsonl").stat().st_mode)
    assert mode & 0o600 == 0o600 and mode & 0o044  # readable as a normal file, not 0600


def test_a_folder_path_through_a_file_is_one_line(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "build"
    blocker.write_text("a file, not a folder")
    argv = replay(log, tmp_path, "--orders-out", str(blocker / "orders.jsonl"))
    assert main(argv) == EXIT_USAGE
    assert "is not a folder" in one_error_line(capsys)
    assert blocker.read_text() == "a file, not a folder"


def test_a_failed_replay_leaves_the_previous_outputs_as_they_were(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    orders = tmp_path / "orders.jsonl"
    orders.write_text("previous run\n")
    with log.open("a") as stream:
        stream.write("{not json\n")  # a corrupt line at the end: exit 3
    assert main(replay(log, tmp_path)) == EXIT_CORRUPT_LOG
    capsys.readouterr()
    assert orders.read_text() == "previous run\n"
    assert not (tmp_path / "dead.jsonl").exists()
    assert [p.name for p in tmp_path.glob(".*.tmp")] == []


def test_a_symlinked_output_is_written_through(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = tmp_path / "real-orders.jsonl"
    real.write_text("old\n")
    link = tmp_path / "orders-link.jsonl"
    link.symlink_to(real)
    assert main(replay(log, tmp_path, "--orders-out", str(link))) == EXIT_OK
    capsys.readouterr()
    assert link.is_symlink() and link.resolve() == real
    assert real.read_text() != "old\n" and real.read_text().startswith("{")


@pytest.mark.parametrize("target", ["/dev/null", "folder", "input-like"])
def test_dump_out_is_checked_before_kafka_is_contacted(
    target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Port 9 (discard) on localhost: were Kafka contacted, this would be exit 1.
    if target == "folder":
        out = str(tmp_path)
    elif target == "input-like":
        out = str(tmp_path / "file" / "x.jsonl")
        (tmp_path / "file").write_text("")
    else:
        out = target
    argv = ["dump", "orders", "--bootstrap", "127.0.0.1:9", "--out", out]
    assert main(argv) == EXIT_USAGE
    err = one_error_line(capsys)
    assert out in err


def test_atomic_text_keeps_the_old_file_on_an_exception(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(ZeroDivisionError):
        with atomic_text(target) as out:
            out.write("half")
            raise ZeroDivisionError
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_check_outputs_and_resolve_output_directly(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("x")
    with pytest.raises(OutputError, match="is the input"):
        check_outputs([source], [None, tmp_path / "." / "in.jsonl"])
    check_outputs([source], [tmp_path / "a", tmp_path / "b", None])
    assert resolve_output(tmp_path / "new" / "file") == (tmp_path / "new" / "file").resolve()
