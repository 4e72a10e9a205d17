"""shapes.scenes: pixel-exact visible masks, rasterized areas, textured
backgrounds and the object scale."""
import math

import numpy as np
import pytest

from tf_rmi.data import shapes
from tf_rmi.data.shapes.scenes import _RADIUS_RANGE


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


def test_object_scale_enlarges_every_object_and_keeps_the_size_classes():
    plain = shapes.generate_scene(2, "train", 0, 128, 128)
    big = shapes.generate_scene(2, "train", 0, 128, 128, object_scale=1.3)
    radii = lambda scene, size: [o.radius / 128 for o in scene.objects if o.size == size]  # noqa
    for size, (low, high) in _RADIUS_RANGE.items():
        assert all(1.3 * low <= r <= 1.3 * high for r in radii(big, size))
        assert all(low <= r <= high for r in radii(plain, size))
    src = shapes.ShapesSource(seed=2, num_train_images=2, num_val_images=1, num_test_images=1,
                              min_size=128, max_size=128, object_scale=1.3)
    expr = src.expressions("train")[0]
    assert src.load_mask(expr).sum() > 0 and src.scene("train", 0) == big
    with pytest.raises(ValueError, match="object_scale"):
        shapes.ShapesSource(object_scale=2.0)
