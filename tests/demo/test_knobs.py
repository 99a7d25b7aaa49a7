"""The demo knobs and small helpers of the demo tasks."""

import pytest

from pfstui.demo.tasks.base import data_id_matches, parse_data_id_spec


def test_parse_spec_both_separators():
    assert parse_data_id_spec("visit:12,arm:r spectrograph=1") == {"visit": "12", "arm": "r", "spectrograph": "1"}


def test_parse_spec_rejects_garbage():
    with pytest.raises(ValueError, match="key:value"):
        parse_data_id_spec("visit12")


def test_match():
    data_id = {"visit": 12, "arm": "r", "spectrograph": 1, "instrument": "PFS"}
    assert data_id_matches("visit:12,arm:r", data_id)
    assert not data_id_matches("visit:12,arm:b", data_id)
    assert not data_id_matches("", data_id)
    assert not data_id_matches("detector:3", data_id)
