"""Fixtures for the report tests: synthetic check results built by
report_samples.make_report_data (the integration test uses a real tiny run)."""
from __future__ import annotations

import pytest

from report_samples import HOSTILE_NAMES, make_report_data


@pytest.fixture
def report_data():
    return make_report_data()


@pytest.fixture
def hostile_report_data():
    return make_report_data(class_names=HOSTILE_NAMES)
