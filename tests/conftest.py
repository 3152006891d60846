"""Shared fixtures of the self-tests: a real mosquitto (never a mock)."""

from __future__ import annotations

import os

import pytest

from conformance.brokers.mosquitto import Mosquitto

pytest_plugins = ["pytester"]


def require_broker(cls) -> None:  # noqa: ANN001
    """Skip when a broker is missing on a developer machine; in CI (CI=true) that is a failure."""
    if not cls.available():
        if os.environ.get("CI"):
            pytest.fail(f"{cls.name} is not installed; .ci/run must install it")
        pytest.skip(f"{cls.name} is not installed (see .ci/install-brokers)")


@pytest.fixture(scope="session")
def mosquitto():  # noqa: ANN201
    require_broker(Mosquitto)
    with Mosquitto() as broker:
        yield broker
