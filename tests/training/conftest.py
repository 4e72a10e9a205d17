"""Fixtures of the training tests."""
import pytest


@pytest.fixture(scope="module")
def tfrecord_dir(tmp_path_factory):
    """The quadrant set (tests/records.py write_quadrant_records), written once per module."""
    from tests.records import write_quadrant_records

    return write_quadrant_records(str(tmp_path_factory.mktemp("train_records")))
