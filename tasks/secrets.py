"""Passwords from Prefect Secret blocks, for deployments that keep them out of the host's files.

Set ``GRMUX_SECRET_BLOCKS`` on the worker, e.g.
``HTCC_PASSWORD=grmux-htcc,RCS_PASSWORD=grmux-rcs,WEBDAV_PASSWORD=grmux-webdav``: before the
configuration is read, each named Secret block is loaded into that environment variable of the
flow-run process (unless the variable is already set), and the loader's usual rule applies: the
environment wins over muxer.cfg. The values never become parameters, logs or artifacts.
Rotate a password with ``prefect block`` / ``Secret(value=...).save(name, overwrite=True)``.
"""

from __future__ import annotations

import os

from grmux_core.config import ENV_SECRETS
from grmux_core.errors import ConfigError


def parse_block_map(text: str) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        env_name, _, block = item.partition("=")
        if env_name not in ENV_SECRETS or not block:
            raise ConfigError(
                f"GRMUX_SECRET_BLOCKS item {item!r} is not valid: allowed is VAR=block-name with VAR one of "
                + ", ".join(ENV_SECRETS)
            )
        mapping[env_name] = block
    return mapping


def load_secret_blocks() -> list[str]:
    """Fill password variables from Secret blocks; returns the variables that were filled."""
    mapping = parse_block_map(os.environ.get("GRMUX_SECRET_BLOCKS", ""))
    filled = []
    for env_name, block in mapping.items():
        if os.environ.get(env_name):
            continue
        from prefect.blocks.system import Secret

        os.environ[env_name] = Secret.load(block).get()
        filled.append(env_name)
    return filled
