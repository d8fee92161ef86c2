"""Reading the contract configuration file (SPEC §8) into a `HedgerConfig`.

Owns: `load_config`, with every failure one `ConfigError` naming the file and
the field. Kept apart from the connection settings (`streams.settings`) so
that the offline commands load no pydantic-settings. Imports the standard
library and `hedger.config`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from hedger.config import ConfigError, HedgerConfig, config_from_mapping, unknown_keys


def load_config(path: str | Path) -> HedgerConfig:
    """Read and validate a configuration file; raise `ConfigError` on any problem.

    A key the contract does not define is refused (SPEC §8), never ignored:
    a typo such as `halt = true` must not silently lift a halt. Every such
    key is named, on one line.
    """
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such configuration file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    unknown = unknown_keys(data)
    if len(unknown) > 1:
        raise ConfigError(
            f"{file}: unknown keys {', '.join(unknown)} (SPEC §8 defines no such keys)"
        )
    try:
        return config_from_mapping(data)
    except ConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from None
