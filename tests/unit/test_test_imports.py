"""No test module imports another: shared helpers live in tests/support/.

Importing a test module runs its module-level code and re-exports its fixtures,
and a helper hidden in one test file is hard to find from another.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def is_test_module(name: str) -> bool:
    return name.startswith("tests.") and name.rsplit(".", 1)[-1].startswith("test_")


def test_no_test_module_imports_another() -> None:
    offenders = [
        f"{path.relative_to(TESTS)}: {name}"
        for path in sorted(TESTS.rglob("*.py"))
        for name in imported_modules(path)
        if is_test_module(name)
    ]
    assert offenders == []


def test_the_check_sees_both_import_forms(tmp_path: Path) -> None:
    module = tmp_path / "test_example.py"
    module.write_text(
        "from tests.integration import test_operations\n"
        "from tests.unit.test_stages import Pipeline\n"
        "import tests.property.test_engine_properties\n"
        "from tests.support.bookings import booking\n"
        "from tests.integration.worker_harness import WorkerProcess\n"
    )
    found = [name for name in imported_modules(module) if is_test_module(name)]
    assert found == [
        "tests.integration.test_operations",
        "tests.unit.test_stages",
        "tests.property.test_engine_properties",
    ]
