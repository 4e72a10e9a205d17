"""shapes.source: the `ShapesSource`: determinism (also in a fresh process),
loaded images and masks, structured ids, disjoint splits, and bad input named."""
import hashlib
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

from tf_rmi.data import shapes
from tf_rmi.data.shapes.source import _rendered
from tf_rmi.data.sources import DataError, Expression
from tf_rmi.data.text import tokenize
from tests.conftest import REPO_ROOT

# --- determinism -------------------------------------------------------------


def test_same_seed_gives_identical_expressions_images_and_masks(source):
    again = shapes.ShapesSource(seed=3, num_train_images=40, num_val_images=6,
                                num_test_images=6)
    assert again.expressions("val") == source.expressions("val")
    for expr in source.expressions("val")[:6]:
        _rendered.cache_clear()  # regenerate, not reuse
        image, mask = source.load_image(expr), source.load_mask(expr)
        _rendered.cache_clear()
        np.testing.assert_array_equal(again.load_image(expr), image)
        np.testing.assert_array_equal(again.load_mask(expr), mask)


def test_different_seed_gives_different_data(source):
    other = shapes.ShapesSource(seed=4, num_train_images=40, num_val_images=6,
                                num_test_images=6)
    assert ([e.sentence for e in other.expressions("val")]
            != [e.sentence for e in source.expressions("val")])
    first = source.expressions("val")[0]
    assert not np.array_equal(shapes.render(shapes.generate_scene(3, "val", 0))[0],
                              shapes.render(shapes.generate_scene(4, "val", 0))[0])
    assert first.image_id == other.expressions("val")[0].image_id  # ids do not depend on seed


def test_fewer_images_give_a_prefix_of_the_expressions():
    small = shapes.ShapesSource(seed=1, num_train_images=3, num_val_images=0, num_test_images=0)
    large = shapes.ShapesSource(seed=1, num_train_images=6, num_val_images=0, num_test_images=0)
    few, many = small.expressions("train"), large.expressions("train")
    assert few and many[:len(few)] == few and len(many) > len(few)


def test_source_works_from_a_fresh_process(source):
    expr = source.expressions("test")[4]
    script = ("import pickle, sys, hashlib; src = pickle.loads(sys.stdin.buffer.read()); "
              "e = src.expressions('test')[4]; "
              "print(e.sent_id, hashlib.md5(src.load_image(e).tobytes()"
              " + src.load_mask(e).tobytes()).hexdigest())")
    result = subprocess.run([sys.executable, "-c", script], input=pickle.dumps(source),
                            capture_output=True, cwd=REPO_ROOT, check=True)
    digest = hashlib.md5(source.load_image(expr).tobytes() + source.load_mask(expr).tobytes())
    assert result.stdout.decode().split() == [expr.sent_id, digest.hexdigest()]


# --- images, masks and ids ------------------------------------------------


def test_load_image_is_uint8_rgb_of_varied_sizes(source):
    sizes = set()
    for expr in source.expressions("test"):
        image = source.load_image(expr)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert 96 <= image.shape[0] <= 200 and 96 <= image.shape[1] <= 200
        mask = source.load_mask(expr)
        assert mask.dtype == bool and mask.shape == image.shape[:2]
        sizes.add(image.shape[:2])
    assert len({round(h / w, 1) for h, w in sizes}) >= 3  # several aspect ratios


def test_targets_have_two_to_four_distinct_sentences_with_structured_ids(source, train_pairs):
    per_ref = {}
    for expr, _ in train_pairs:
        assert expr.ann_id == expr.ref_id and expr.sent_id.startswith(expr.ref_id + "-s")
        assert re.fullmatch(r"shapes-train-\d{6}-o\d-s\d", expr.sent_id)
        assert expr.split == "train" and tokenize(expr.sentence)
        per_ref.setdefault(expr.ref_id, []).append(expr.sentence)
    assert all(2 <= len(s) <= 4 and len(set(s)) == len(s) for s in per_ref.values())
    per_image = {}
    for ref in per_ref:
        per_image.setdefault(ref.rsplit("-o", 1)[0], set()).add(ref)
    assert max(len(r) for r in per_image.values()) == 3


def test_splits_have_disjoint_images(source):
    ids = {split: {e.image_id for e in source.expressions(split)} for split in source.splits()}
    assert not ids["train"] & ids["val"] and not ids["train"] & ids["test"]
    assert not ids["val"] & ids["test"]
    train0 = shapes.render(shapes.generate_scene(3, "train", 0))[0]
    val0 = shapes.render(shapes.generate_scene(3, "val", 0))[0]
    assert train0.shape != val0.shape or not np.array_equal(train0, val0)


# --- bad input -------------------------------------------------------------------


def test_unknown_ids_raise_data_error(source):
    good = source.expressions("val")[0]
    with pytest.raises(DataError, match="not a shapes image id") as info:
        source.load_image(Expression("COCO_1", "1", "1", "1", "x", "val"))
    assert info.value.reason == "missing_image"
    with pytest.raises(DataError, match="beyond the 6 images"):
        source.load_image(Expression("shapes-val-000006", "r", "r", "s", "x", "val"))
    with pytest.raises(DataError, match="names no object") as info:
        source.load_mask(Expression(good.image_id, good.image_id + "-o9", "a", "s", "x", "val"))
    assert info.value.reason == "missing_annotation"


def test_bad_constructor_arguments_and_splits_are_named():
    with pytest.raises(ValueError, match="num_val_images"):
        shapes.ShapesSource(num_val_images=-1)
    with pytest.raises(ValueError, match="min_size"):
        shapes.ShapesSource(min_size=120, max_size=100)
    with pytest.raises(ValueError, match="unknown shapes split 'testA'"):
        shapes.ShapesSource(num_train_images=1).expressions("testA")
