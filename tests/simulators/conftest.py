"""Fixtures for the simulator tests (no broker needed except in test_publisher.py)."""

from __future__ import annotations

import pytest

from lifewatch.city import City, load_city


@pytest.fixture(scope="session")
def city() -> City:
    return load_city()
