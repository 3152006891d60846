"""Errors of the harness's input: each says what the user has to change."""

from __future__ import annotations

from .codec.errors import HarnessError


class ConfigError(HarnessError):
    """Bad user input (option, URL, profile): exit code 2 with a one-line message."""
