"""The synthetic shapes dataset: determinism, pixel-exact visible masks, and
expressions that refer to exactly one object (checked by the library's
predicate AND by an independent parse of the sentence)."""
import hashlib
import math
import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

from tf_rmi.data import shapes
from tf_rmi.data.sources import DataError, Expression
from tf_rmi.data.text import tokenize
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def source():
    return shapes.ShapesSource(seed=3, num_train_images=40, num_val_images=6,
                               num_test_images=6)


@pytest.fixture(scope="module")
def train_pairs(source):
    return source.referring_expressions("train")


# --- determinism -------------------------------------------------------------


def test_same_seed_gives_identical_expressions_images_and_masks(source):
    again = shapes.ShapesSource(seed=3, num_train_images=40, num_val_images=6,
                                num_test_images=6)
    assert again.expressions("val") == source.expressions("val")
    for expr in source.expressions("val")[:6]:
        shapes._rendered.cache_clear()  # regenerate, not reuse
        image, mask = source.load_image(expr), source.load_mask(expr)
        shapes._rendered.cache_clear()
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


# --- images and masks ----------------------------------------------------------


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


def test_every_mask_is_exactly_the_visible_pixels_of_its_object(source, train_pairs):
    for expr, referring in train_pairs:
        scene = source.scene("train", int(expr.image_id[-6:]))
        mask, image = source.load_mask(expr), source.load_image(expr)
        # Independent painter's algorithm: the last object covering a pixel owns it.
        owner = np.full((scene.height, scene.width), -1)
        for k, obj in enumerate(scene.objects):
            owner[shapes.object_mask(obj, scene.height, scene.width)] = k
        k = referring.object_index
        assert expr.ref_id.endswith(f"-o{k}")
        np.testing.assert_array_equal(mask, owner == k)
        assert mask.sum() >= 0.65 * shapes.object_mask(scene.objects[k], scene.height,
                                                      scene.width).sum()
        assert (image[mask] == scene.objects[k].rgb).all()


def test_render_masks_are_disjoint_and_non_empty():
    for index in range(10):
        scene = shapes.generate_scene(0, "train", index)
        image, masks = shapes.render(scene)
        assert 3 <= len(scene.objects) <= 6 and masks.shape == (len(scene.objects),) + image.shape[:2]
        assert masks.sum(axis=0).max() == 1 and masks.any(axis=(1, 2)).all()


@pytest.mark.parametrize("shape,area_over_r2", [
    ("circle", math.pi), ("square", 1.6 ** 2), ("triangle", 3 * math.sqrt(3) / 4),
    ("diamond", 2 * 0.8), ("star", 5 * math.sin(math.radians(36)) * 0.45)])
def test_rasterized_shapes_have_their_geometric_area(shape, area_over_r2):
    obj = shapes.SceneObject(shape, "red", "big", (50.3, 40.7), 20.0, (215, 35, 35))
    mask = shapes.object_mask(obj, 100, 100)
    assert abs(mask.sum() / (area_over_r2 * 400.0) - 1) < 0.04
    ys, xs = np.nonzero(mask)  # inside the +-radius box the renderer's window covers
    assert np.abs(xs + 0.5 - 50.3).max() <= 20.0 and np.abs(ys + 0.5 - 40.7).max() <= 20.0


def test_background_is_textured_not_flat(source):
    for expr in source.expressions("val")[:10]:
        scene = source.scene("val", int(expr.image_id[-6:]))
        image, masks = shapes.render(scene)
        background = image[~masks.any(axis=0)].astype(float)
        assert background.std(axis=0).min() > 5  # stripes, gradient and noise
        assert len(np.unique(background, axis=0)) > 100


# --- expressions -----------------------------------------------------------------


def test_every_description_resolves_to_its_object(train_pairs, source):
    for expr, referring in train_pairs:
        scene = source.scene("train", int(expr.image_id[-6:]))
        states = shapes.evaluate(referring.description, scene)
        assert states.count(shapes.TRUE) == 1 and shapes.UNCLEAR not in states
        assert shapes.resolve(referring.description, scene) == referring.object_index


def test_resolve_rejects_an_ambiguous_description():
    scene = shapes.Scene(0, "train", 0, 100, 100, (
        shapes.SceneObject("circle", "red", "big", (20.0, 50.0), 10.0, (215, 35, 35)),
        shapes.SceneObject("circle", "red", "big", (25.0, 20.0), 10.0, (215, 35, 35)),
        shapes.SceneObject("square", "blue", "small", (80.0, 50.0), 6.0, (40, 75, 215))),
        shapes.generate_scene(0, "train", 0).background)
    red = shapes.Filter(colour="red")
    assert shapes.resolve(shapes.Description("attributes", red), scene) is None
    # 5 px apart < the 10 px margin: "leftmost red" is a near tie, so UNCLEAR.
    assert shapes.resolve(shapes.Description("extreme", red, "left"), scene) is None
    assert shapes.resolve(shapes.Description("extreme", red, "top"), scene) == 1
    below = shapes.Description("relation", shapes.Filter(shape="circle"), "bottom",
                               anchor=shapes.Filter(colour="blue"))
    assert shapes.resolve(below, scene) is None  # circle 0 is level with the square


_LEADS = r"^(please find|find|select|look for|show me) "
_TAILS = r" (in the picture|in the image)$"
_SIZES = {"small": "small", "little": "small", "big": "big", "large": "big"}
_REGIONS = {"near the top": "top", "in the upper part": "top", "near the bottom": "bottom",
            "in the lower part": "bottom", "on the left side": "left",
            "near the left edge": "left", "on the right side": "right",
            "near the right edge": "right"}
_SUPERLATIVES = {"leftmost": "left", "rightmost": "right", "topmost": "top", "highest": "top",
                 "lowest": "bottom", "bottommost": "bottom"}
_PAIRS = {"left": "left", "right": "right", "top": "top", "upper": "top", "bottom": "bottom",
          "lower": "bottom"}
_RELATIONS = {"to the left of": "left", "left of": "left", "to the right of": "right",
              "right of": "right", "above": "top", "below": "bottom", "under": "bottom",
              "beneath": "bottom", "closest to": "near", "nearest to": "near",
              "next to": "near"}


def _parse_noun_phrase(text):
    """{'colour','shape','size','region','extreme','ordinal'} from words like
    'the second big red circle near the top from the left' (independent of the library)."""
    found = {}
    for phrase, region in _REGIONS.items():
        if phrase in text:
            found["region"], text = region, text.replace(phrase, " ")
    match = re.search(r"(furthest to the (left|right)|closest to the (top|bottom))$", text.strip())
    if match:
        found["extreme"] = match.group(2) or match.group(3)
        text = text.strip()[:match.start()]
    match = re.search(r"from (the )?(left|right|top|bottom)$", text.strip())
    if match:
        found["from"] = match.group(2)
        text = text.strip()[:match.start()]
    words = text.split()
    if words and words[0] == "the":
        words = words[1:]
    if words and words[0] in _PAIRS and len(words) > 1:
        found["extreme"] = _PAIRS[words.pop(0)]
    for word in words:
        if word in shapes.COLOURS:
            found["colour"] = word
        elif word in shapes.SHAPES:
            found["shape"] = word
        elif word in _SIZES:
            found["size"] = _SIZES[word]
        elif word in _SUPERLATIVES:
            found["extreme"] = _SUPERLATIVES[word]
        elif word in ("second", "third"):
            found["ordinal"] = 2 if word == "second" else 3
        else:
            assert word in ("shape", "object", "one"), (word, text)
    return found


def _candidates(found, scene):
    """Objects with the parsed attributes; a region loosely means 'in that half'."""
    out = []
    for k, obj in enumerate(scene.objects):
        if any(found.get(a) not in (None, getattr(obj, a)) for a in ("colour", "shape", "size")):
            continue
        x, y = obj.center[0] / scene.width, obj.center[1] / scene.height
        half = {"top": y < 0.5, "bottom": y > 0.5, "left": x < 0.5, "right": x > 0.5}
        if "region" in found and not half[found["region"]]:
            continue
        out.append(k)
    return out


def _key(obj, direction):
    return {"left": obj.center[0], "right": -obj.center[0], "top": obj.center[1],
            "bottom": -obj.center[1]}[direction]


def _independent_referent(sentence, scene):
    """The object a sentence picks out, by a parse that shares no code with the generator.

    Returns the index or None when the sentence does not pick exactly one.
    """
    text = re.sub(r"[.,]", " ", sentence.lower())
    text = " ".join(text.split())
    text = re.sub(_TAILS, "", re.sub(_LEADS, "", text))
    text = re.sub(r"\b(that is just|that is|which is) ", "", text)
    for phrase in sorted(_RELATIONS, key=len, reverse=True):
        match = re.search(rf"\b{phrase} (?!the (top|bottom)$)", text)
        if match:
            anchors = _candidates(_parse_noun_phrase(text[match.end():]), scene)
            if len(anchors) != 1:
                return None
            anchor = scene.objects[anchors[0]]
            group = [k for k in _candidates(_parse_noun_phrase(text[:match.start()]), scene)
                     if k != anchors[0]]
            if _RELATIONS[phrase] == "near":
                return min(group, key=lambda k: math.dist(scene.objects[k].center, anchor.center))
            side = _RELATIONS[phrase]
            beyond = [k for k in group if _key(scene.objects[k], side) < _key(anchor, side)]
            return beyond[0] if len(beyond) == 1 else None
    if text in _SUPERLATIVES:
        text = "the " + text + " shape"
    found = _parse_noun_phrase(text)
    group = _candidates(found, scene)
    if "from" in found:
        ranked = sorted(group, key=lambda k: _key(scene.objects[k], found["from"]))
        return ranked[found["ordinal"] - 1]
    if "extreme" in found:
        return min(group, key=lambda k: _key(scene.objects[k], found["extreme"]))
    return group[0] if len(group) == 1 else None


def test_sentences_pick_out_their_object_by_an_independent_parse(train_pairs, source):
    for expr, referring in train_pairs:
        scene = source.scene("train", int(expr.image_id[-6:]))
        assert _independent_referent(expr.sentence, scene) == referring.object_index, (
            expr.sentence, referring.description)


def test_sentence_kinds_cover_attributes_spatial_and_relations(train_pairs):
    kinds = {referring.description.kind for _, referring in train_pairs}
    assert kinds == set(shapes.KINDS)


def test_most_targets_need_more_than_one_attribute_word(train_pairs, source):
    """Distractors share colour or shape: one word rarely singles out the target."""
    needs_more = 0
    for expr, referring in train_pairs:
        scene = source.scene("train", int(expr.image_id[-6:]))
        obj = scene.objects[referring.object_index]
        single = [shapes.Filter(colour=obj.colour), shapes.Filter(shape=obj.shape),
                  shapes.Filter(size=obj.size)]
        if all(shapes.resolve(shapes.Description("attributes", f), scene) is None
               for f in single):
            needs_more += 1
    assert needs_more / len(train_pairs) > 0.6


def test_default_lengths_range_from_1_to_at_least_15_tokens():
    source = shapes.ShapesSource()
    histogram = shapes.length_histogram(e.sentence for e in source.expressions("train"))
    assert min(histogram) == 1 and max(histogram) >= 15
    assert max(histogram) <= shapes.MAX_TOKENS
    assert all(histogram.get(n, 0) > 0 for n in range(1, 18))  # no gaps in between
    assert 1500 <= sum(histogram.values()) <= 3000


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


def test_vocabulary_is_the_grammars_and_the_same_for_every_seed(tmp_path):
    # Word ids must not depend on the draw: a model trained on seed 0 reads the
    # records of seed 77 (written with their own preprocess run) with the same ids.
    from tf_rmi.data import preprocess_lib
    from tf_rmi.data.text import SPECIAL_TOKENS, read_vocabulary_lines

    files = []
    for seed in (0, 77):
        out = str(tmp_path / f"s{seed}")
        preprocess_lib.build_dataset(shapes.ShapesSource(seed=seed, num_train_images=3,
                                                         num_val_images=1, num_test_images=1),
                                     out, splits=["val"], image_size=48, num_workers=1,
                                     progress=False)
        files.append(read_vocabulary_lines(os.path.join(out, "shapes", "vocabulary.txt")))
    assert files[0] == files[1] == shapes.vocabulary_tokens()
    assert tuple(files[0][:4]) == SPECIAL_TOKENS


def test_every_generated_word_is_in_the_vocabulary():
    vocab = set(shapes.vocabulary_tokens())
    words = set()
    for seed in (0, 5):
        src = shapes.ShapesSource(seed=seed, num_train_images=60, num_val_images=1,
                                  num_test_images=1)
        for expr in src.expressions("train"):
            words.update(tokenize(expr.sentence))
    # Pieces that carry whitespace (", ") stay <unk>, as in the original vocabularies.
    assert {w for w in words if w == w.strip()} <= vocab
    assert len(words & vocab) > 50


def test_object_scale_enlarges_every_object_and_keeps_the_size_classes():
    plain = shapes.generate_scene(2, "train", 0, 128, 128)
    big = shapes.generate_scene(2, "train", 0, 128, 128, object_scale=1.3)
    radii = lambda scene, size: [o.radius / 128 for o in scene.objects if o.size == size]  # noqa
    for size, (low, high) in shapes._RADIUS_RANGE.items():
        assert all(1.3 * low <= r <= 1.3 * high for r in radii(big, size))
        assert all(low <= r <= high for r in radii(plain, size))
    src = shapes.ShapesSource(seed=2, num_train_images=2, num_val_images=1, num_test_images=1,
                              min_size=128, max_size=128, object_scale=1.3)
    expr = src.expressions("train")[0]
    assert src.load_mask(expr).sum() > 0 and src.scene("train", 0) == big
    with pytest.raises(ValueError, match="object_scale"):
        shapes.ShapesSource(object_scale=2.0)
