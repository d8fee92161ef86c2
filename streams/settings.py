"""Loading the contract configuration from a TOML file.

Owns: reading and parsing the file and turning every failure into one
`ConfigError` message that names the file and the field. Imports the
standard library and `hedger.config`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from hedger.config import ConfigError, HedgerConfig, config_from_mapping, unknown_keys


def load_config(path: str | Path) -> HedgerConfig:
    """Read and validate a configuration file; raise `ConfigError` on any problem."""
    config, _ = load_config_with_warnings(path)
    return config


def load_config_with_warnings(path: str | Path) -> tuple[HedgerConfig, list[str]]:
    """Like `load_config`, plus the keys the contract does not know (ignored)."""
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such configuration file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    try:
        return config_from_mapping(data), unknown_keys(data)
    except ConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from None
