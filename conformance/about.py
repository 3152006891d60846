"""The harness's own release version (written only here: pyproject.toml's version is read from it)."""

__version__ = "0.1.0"
