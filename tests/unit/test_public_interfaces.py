"""streams/ uses Faust, mode and aiokafka through their public interfaces only.

An AST scan of every module under streams/: an attribute access `x._name`
(a private member) is allowed only on `self`, `cls` or `super()`, that is,
on our own classes from inside them. Dunder names (`__name__`, `__class__`) are the
language's public protocol. Any other private access fails the test, with
its file and line; `ALLOWED` lists the exceptions, each with why.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.factories import REPO

STREAMS = REPO / "streams"
# (path relative to the repository, attribute): private members of our own
# classes reached from outside them. Empty: there is no such exception.
ALLOWED: frozenset[tuple[str, str]] = frozenset()


def private_accesses(path: Path) -> list[tuple[int, str, str]]:
    """(line, owner expression, attribute) of each `x._name` with x not self/cls."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or (name.startswith("__") and name.endswith("__")):
            continue
        owner = node.value
        if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
            continue
        if isinstance(owner, ast.Call) and ast.unparse(owner) == "super()":
            continue  # an override calling the method it overrides: its own class
        found.append((node.lineno, ast.unparse(owner), name))
    return sorted(found)


def test_streams_reads_no_private_member_of_another_object() -> None:
    modules = sorted(STREAMS.rglob("*.py"))
    assert len(modules) > 20
    offenders = [
        f"{path.relative_to(REPO)}:{line}: {owner}.{name}"
        for path in modules
        for line, owner, name in private_accesses(path)
        if (str(path.relative_to(REPO)), name) not in ALLOWED
    ]
    assert offenders == []


def test_the_scan_finds_a_private_member_and_spares_self(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "class A:\n"
        "    def f(self, consumer):\n"
        "        self._own = 1\n"
        "        consumer._client.force_metadata_update()\n"
        "        return type(self).__name__, cls_like._x, super()._y\n"
    )
    assert private_accesses(sample) == [(4, "consumer", "_client"), (5, "cls_like", "_x")]
