"""Fixtures for the report tests: synthetic check results built by
support.report_samples.make_report_data (the integration test uses a real tiny run)."""
from __future__ import annotations

import pytest

from support.report_samples import HOSTILE_NAMES, make_report_data


@pytest.fixture
def report_data():
    return make_report_data()


@pytest.fixture
def hostile_report_data():
    return make_report_data(class_names=HOSTILE_NAMES)


@pytest.fixture(scope="session")
def built():
    """report.build of the default synthetic data (built once; do not mutate)."""
    from edgekit.runtime import report

    data = make_report_data()
    return data, report.build(data)


@pytest.fixture(scope="session")
def built_hostile():
    """report.build of synthetic data whose class names contain markup (built once)."""
    from edgekit.runtime import report

    data = make_report_data(class_names=HOSTILE_NAMES)
    return data, report.build(data)
