"""Root of the test tree: what every test directory shares.

Helpers shared between test modules live in the tests/support package; test
modules import them from there, never from each other (tests/unit/test_test_imports.py).
Fixtures for the real broker live in tests/integration/conftest.py.
"""

import pytest

# The support helpers assert too (e.g. an order emitted twice with other content):
# rewrite their asserts like the tests' own, so a failure shows the values compared.
pytest.register_assert_rewrite("tests.support")
