"""Secrets never reach a log line or a settings dump."""

import io
import json
import logging

import structlog
from pydantic import SecretStr

from streams.observe import logs
from streams.settings import WorkerSettings

SECRET = "correct-horse-battery-staple"  # noqa: S105 - a test value


def test_settings_dump_masks_the_sasl_password() -> None:
    settings = WorkerSettings(sasl_username="desk", sasl_password=SecretStr(SECRET))
    assert SECRET not in json.dumps(settings.masked())
    assert SECRET not in repr(settings)
    assert settings.sasl_password is not None
    assert settings.sasl_password.get_secret_value() == SECRET


def test_redactor_scrubs_our_lines_and_the_libraries(capsys) -> None:
    logs.configure(json=True, level="INFO", secrets=[SECRET])
    logs.get_logger("hedger.test").info(
        "connecting", url=f"sasl://desk:{SECRET}@broker", nested={"pw": [SECRET]}
    )
    logging.getLogger("aiokafka").warning("auth failed for password %s", SECRET)
    err = capsys.readouterr().err
    assert err.count("\n") >= 2
    assert SECRET not in err
    assert logs.REDACTED in err
    structlog.reset_defaults()
    logging.getLogger().handlers[:] = [logging.StreamHandler(io.StringIO())]
