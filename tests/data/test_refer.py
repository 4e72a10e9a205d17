"""ReferSource on REFER-layout fixtures written in the real formats."""
import os
import pickle

import numpy as np
import pytest
from PIL import Image

from tf_rmi.data import refer
from tf_rmi.data.sources import DataError
from tests.data import refer_fixtures as fixtures


@pytest.fixture
def refer_root(tmp_path):
    expected = fixtures.write_refer(str(tmp_path))
    return str(tmp_path), expected


def _by_ref(source, split, ref_id):
    return [e for e in source.expressions(split) if e.ref_id == str(ref_id)]


def test_dataset_flags_map_to_refer_names():
    assert refer.resolve_dataset("unc") == ("unc", "refcoco", "unc")
    assert refer.resolve_dataset("unc+") == ("unc+", "refcoco+", "unc")
    assert refer.resolve_dataset("Gref") == ("Gref", "refcocog", "google")
    assert refer.resolve_dataset("Gref_umd") == ("Gref_umd", "refcocog", "umd")
    assert refer.resolve_dataset("refcocog", "umd") == ("Gref_umd", "refcocog", "umd")


def test_image_name_is_zero_padded_to_twelve_digits():
    assert refer.coco_image_name("581857") == "COCO_train2014_000000581857.jpg"


def test_python2_byte_strings_are_decoded_as_utf8(tmp_path):
    path = tmp_path / "refs.p"
    path.write_bytes(fixtures.py2_pickle_dumps([{"sent": "café", "ref_id": 7}]))
    with pytest.raises(UnicodeDecodeError):  # why the reader needs its fallback
        pickle.loads(path.read_bytes())
    assert refer.load_refs(str(path)) == [{"sent": "café", "ref_id": 7}]


def test_unicode_pickles_load_directly(tmp_path):
    path = tmp_path / "refs.p"
    path.write_bytes(fixtures.py2_pickle_dumps([{"sent": "café"}], strings="unicode"))
    assert refer.load_refs(str(path)) == [{"sent": "café"}]


def test_expressions_one_per_sentence_in_file_order(refer_root):
    root, _ = refer_root
    source = refer.ReferSource(root, "unc")
    train = source.expressions("train")
    assert [(e.ref_id, e.sent_id, e.sentence) for e in train] == [
        ("1", "10", "the boxes on the left"), ("1", "11", "café table"),
        ("2", "20", "gray thing")]
    assert [e.ann_id for e in train] == ["101", "101", "102"]
    assert [e.sentence for e in source.expressions("val")] == ["small square", "the square ."]
    assert source.expressions("testA") == []


def test_sentence_is_the_sent_field_not_raw(refer_root):
    root, _ = refer_root
    source = refer.ReferSource(root, "unc")
    assert source.expressions("train")[0].sentence == "the boxes on the left"  # raw is upper


def test_splits_and_vocabulary_follow_the_dataset(refer_root):
    root, _ = refer_root
    source = refer.ReferSource(root, "unc")
    assert source.name == "unc"
    assert tuple(source.splits()) == ("train", "val", "testA", "testB")
    assert source.vocab_name == "vocabulary_Gref.txt"


def test_two_part_polygon_mask_is_the_union_of_rectangles(refer_root):
    root, expected = refer_root
    source = refer.ReferSource(root, "unc")
    mask = source.load_mask(_by_ref(source, "train", 1)[0])
    assert mask.dtype == bool and mask.shape == (24, 32)
    # Corners (2,3)-(10,8) and (20,10)-(30,20): 8*5 + 10*10 pixels.
    assert mask.sum() == 140
    np.testing.assert_array_equal(mask, expected["masks"][101])


def test_compressed_rle_mask(refer_root):
    root, expected = refer_root
    source = refer.ReferSource(root, "unc")
    np.testing.assert_array_equal(source.load_mask(_by_ref(source, "train", 2)[0]),
                                  expected["masks"][102])


def test_uncompressed_rle_mask(refer_root):
    root, expected = refer_root
    source = refer.ReferSource(root, "unc")
    mask = source.load_mask(_by_ref(source, "val", 3)[0])
    assert mask.sum() == 16
    np.testing.assert_array_equal(mask, expected["masks"][103])


def test_images_load_with_their_stored_channels(refer_root):
    root, expected = refer_root
    source = refer.ReferSource(root, "unc")
    rgb = source.load_image(_by_ref(source, "train", 1)[0])
    gray = source.load_image(_by_ref(source, "train", 2)[0])
    assert rgb.shape == (24, 32, 3) and rgb.dtype == np.uint8
    assert gray.shape == (20, 28) and gray.dtype == np.uint8
    # JPEG at quality 95 of a smooth image stays within a few grey levels.
    assert np.abs(rgb.astype(int) - expected["images"][1]).mean() < 3


def test_image_dir_defaults_to_the_refer_layout_when_present(tmp_path):
    fixtures.write_refer(str(tmp_path))
    os.makedirs(tmp_path / "images" / "mscoco" / "images")
    os.rename(tmp_path / "images" / "train2014",
              tmp_path / "images" / "mscoco" / "images" / "train2014")
    source = refer.ReferSource(str(tmp_path), "unc")
    assert source.image_dir.endswith(os.path.join("mscoco", "images", "train2014"))
    assert source.load_image(source.expressions("val")[0]).shape == (16, 16, 3)


def test_missing_image_is_a_data_error_naming_the_file(tmp_path):
    fixtures.write_refer(str(tmp_path), bad=True)
    source = refer.ReferSource(str(tmp_path), "unc")
    with pytest.raises(DataError) as info:
        source.load_image(_by_ref(source, "train", 10)[0])
    assert info.value.reason == "missing_image"
    assert info.value.path.endswith("COCO_train2014_000000000010.jpg")


def test_unreadable_image_is_a_data_error(tmp_path):
    fixtures.write_refer(str(tmp_path), bad=True)
    source = refer.ReferSource(str(tmp_path), "unc")
    with pytest.raises(DataError) as info:
        source.load_image(_by_ref(source, "train", 11)[0])
    assert info.value.reason == "unreadable_image"


def test_missing_annotation_is_a_data_error(tmp_path):
    fixtures.write_refer(str(tmp_path), bad=True)
    source = refer.ReferSource(str(tmp_path), "unc")
    with pytest.raises(DataError) as info:
        source.load_mask(_by_ref(source, "train", 12)[0])
    assert info.value.reason == "missing_annotation"
    assert "999" in str(info.value)


def test_missing_annotation_file_names_the_path(tmp_path):
    fixtures.write_refer(str(tmp_path))
    os.remove(tmp_path / "refcoco" / "instances.json")
    with pytest.raises(FileNotFoundError, match=r"instances\.json"):
        refer.ReferSource(str(tmp_path), "unc")


def test_missing_data_root_says_what_to_put_there(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"refs\(google\)\.p"):
        refer.ReferSource(str(tmp_path / "absent"), "Gref")


def test_grayscale_fixture_is_really_grayscale(refer_root):
    root, _ = refer_root
    with Image.open(fixtures.coco_image_path(root, 2)) as image:
        assert image.mode == "L"


def test_polygons_pycocotools_refuses_are_a_value_error():
    # A first part of 4 coordinates is read by pycocotools as a box list and refused;
    # the original's build_batches stopped there, so there is no score to match.
    with pytest.raises(ValueError, match="frPyObjects"):
        refer.decode_segmentation([[1, 1, 5, 1], [1, 1, 5, 1, 5, 5]], 8, 8)


def test_short_polygon_parts_decode_exactly_as_pycocotools():
    from pycocotools import mask as cocomask

    for segmentation in ([[1, 1, 6, 1, 6, 6, 1, 6], [2, 2, 3, 3]],   # 4-coordinate part
                         [[1, 1, 6, 1, 6, 6, 1]],                    # odd length
                         [[1, 1, 6, 1, 6]]):                          # 5 coordinates
        direct = np.max(cocomask.decode(cocomask.frPyObjects(segmentation, 8, 8)), axis=2) > 0
        np.testing.assert_array_equal(refer.decode_segmentation(segmentation, 8, 8), direct)
