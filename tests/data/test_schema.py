"""TFRecord examples round-trip through make_example / parse_example."""
import numpy as np
import pytest
import tensorflow as tf

from tf_rmi.data import schema


def _record(h, w, padded, seed):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask = rng.uniform(size=(h, w)) > 0.5
    words = np.array([0, 0, 0, 17, 4, 3, 12111], dtype=np.int32)
    example = schema.make_example(
        schema.encode_png(image), schema.encode_mask_png(mask), words,
        "man on the left, café", image_id="COCO_42", ref_id=7, ann_id="1234",
        sent_id=99, orig_height=480, orig_width=640, padded=padded)
    return image, mask, words, example.SerializeToString()


@pytest.mark.parametrize("h,w,padded", [(32, 32, True), (17, 23, False)])
def test_round_trip_gives_back_every_field(h, w, padded):
    image, mask, words, serialized = _record(h, w, padded, seed=h)
    parsed = schema.parse_example(tf.constant(serialized))
    np.testing.assert_array_equal(parsed["image"].numpy(), image)
    assert parsed["image"].dtype == tf.uint8
    np.testing.assert_array_equal(parsed["mask"].numpy(), mask.astype(np.uint8))
    assert parsed["mask"].shape == (h, w)
    np.testing.assert_array_equal(parsed["words"].numpy(), words)
    assert parsed["words"].dtype == tf.int32
    assert parsed["sentence"].numpy().decode("utf-8") == "man on the left, café"
    assert parsed["image_id"].numpy() == b"COCO_42"
    assert parsed["ref_id"].numpy() == b"7"
    assert parsed["ann_id"].numpy() == b"1234"
    assert parsed["sent_id"].numpy() == b"99"
    assert parsed["orig_height"].numpy() == 480 and parsed["orig_height"].dtype == tf.int32
    assert parsed["orig_width"].numpy() == 640
    assert parsed["padded"].numpy() == padded


def test_parse_example_works_inside_dataset_map():
    _, _, words, serialized = _record(8, 8, True, seed=1)
    dataset = tf.data.Dataset.from_tensor_slices([serialized, serialized]).map(
        lambda s: schema.parse_example(s, num_words=7))
    element = next(iter(dataset))
    assert element["words"].shape == (7,)
    assert dataset.element_spec["words"].shape == (7,)
    np.testing.assert_array_equal(element["words"].numpy(), words)


def test_mask_png_is_single_channel_zero_one():
    mask = np.array([[0, 1], [1, 0]], dtype=bool)
    decoded = schema.decode_png(schema.encode_mask_png(mask))
    assert decoded.ndim == 2 and decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, [[0, 1], [1, 0]])


def test_mask_stored_as_0_255_still_parses_to_0_1():
    mask255 = np.array([[0, 255], [255, 0]], np.uint8)
    example = schema.make_example(schema.encode_png(np.zeros((2, 2, 3), np.uint8)),
                                  schema.encode_png(mask255), [1, 2], "a b", "1", "2", "3",
                                  "4", 2, 2, padded=False)
    parsed = schema.parse_example(example.SerializeToString())
    np.testing.assert_array_equal(parsed["mask"].numpy(), [[0, 1], [1, 0]])


def test_python_side_readers():
    _, _, _, serialized = _record(4, 4, True, seed=2)
    assert schema.words_length(serialized) == 7
    assert schema.is_padded(serialized)


def test_bad_word_ids_are_rejected():
    png = schema.encode_png(np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="word_ids"):
        schema.make_example(png, png, [], "a", "1", "2", "3", "4", 2, 2, padded=True)


def test_encode_png_rejects_non_uint8():
    with pytest.raises(TypeError, match="uint8"):
        schema.encode_png(np.zeros((2, 2), np.float32))
