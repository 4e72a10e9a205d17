"""ReferItSource on fixtures in the real formats and on the real val query file."""
import json
import os
import shutil

import numpy as np
import pytest

from tf_rmi.data import referit
from tf_rmi.data.sources import DataError
from tests.conftest import shared_path
from tests.data import refer_fixtures as fixtures


@pytest.fixture
def referit_root(tmp_path):
    expected = fixtures.write_referit(str(tmp_path))
    return str(tmp_path), expected


def test_expressions_one_per_sentence_in_file_order(referit_root):
    root, _ = referit_root
    source = referit.ReferItSource(root)
    exprs = source.expressions("trainval")
    assert [(e.image_id, e.ref_id, e.sent_id, e.sentence) for e in exprs] == [
        ("100", "100_1", "100_1-0", "left man"), ("100", "100_1", "100_1-1", "man on the left"),
        ("100", "100_2", "100_2-0", "sky"), ("200", "200_1", "200_1-0", "top part")]
    assert all(e.split == "trainval" for e in exprs)


def test_mask_is_where_segimg_t_is_zero(referit_root):
    root, expected = referit_root
    source = referit.ReferItSource(root)
    for expr in source.expressions("trainval") + source.expressions("test"):
        mask = source.load_mask(expr)
        assert mask.dtype == bool
        np.testing.assert_array_equal(mask, expected["masks"][expr.ref_id])


def test_image_of_key_is_the_image_id_jpg(referit_root):
    root, expected = referit_root
    source = referit.ReferItSource(root)
    expr = source.expressions("test")[0]
    assert source.load_image(expr).shape == expected["sizes"]["300"] + (3,)


def test_splits_and_vocabulary():
    source_cls = referit.ReferItSource
    assert source_cls.vocab_name == "vocabulary_referit.txt"
    assert source_cls.name == "referit"


def test_missing_query_file_names_the_path(referit_root):
    root, _ = referit_root
    source = referit.ReferItSource(root)
    with pytest.raises(FileNotFoundError, match=r"referit_query_val\.json"):
        source.expressions("val")


def test_missing_mask_is_a_data_error(referit_root):
    root, _ = referit_root
    os.remove(os.path.join(root, "mask", "200_1.mat"))
    source = referit.ReferItSource(root)
    expr = source.expressions("trainval")[-1]
    with pytest.raises(DataError) as info:
        source.load_mask(expr)
    assert info.value.reason == "missing_mask"
    assert info.value.path.endswith("200_1.mat")


def test_mat_without_segimg_t_is_unreadable_mask(referit_root):
    import scipy.io

    root, _ = referit_root
    scipy.io.savemat(os.path.join(root, "mask", "300_1.mat"), {"other": np.zeros((2, 2))})
    source = referit.ReferItSource(root)
    with pytest.raises(DataError) as info:
        source.load_mask(source.expressions("test")[0])
    assert info.value.reason == "unreadable_mask"


def test_real_query_file_keys_parse(tmp_path):
    real = shared_path("referit", "referit_query_val.json")
    shutil.copy(real, tmp_path / "referit_query_val.json")
    with open(real) as f:
        queries = json.load(f)
    source = referit.ReferItSource(str(tmp_path))
    exprs = source.expressions("val")
    assert len(exprs) == sum(len(v) for v in queries.values())
    first_key = next(iter(queries))
    assert exprs[0].ref_id == first_key
    assert exprs[0].image_id == first_key.split("_", 1)[0]
    assert all(e.image_id.isdigit() for e in exprs)
    # Images and masks are absent here: loading is a counted DataError.
    with pytest.raises(DataError) as info:
        source.load_image(exprs[0])
    assert info.value.reason == "missing_image"
    with pytest.raises(DataError) as info:
        source.load_mask(exprs[0])
    assert info.value.reason == "missing_mask"
