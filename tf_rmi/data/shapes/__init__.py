"""A synthetic referring-segmentation dataset ("shapes"), generated from a seed.

Every image is a scene of 3 to 6 coloured shapes on a textured background;
every referring expression singles out one object of its scene, and its mask
is the object's VISIBLE pixels (objects are painted back to front, so a later
object hides the parts of earlier ones it covers). Nothing is downloaded: an
image, its masks and its expressions are a pure function of
`(seed, split, index)`, so preprocessing workers in other processes regenerate
exactly the same data from the ids alone.

One module per concern, each importing only the ones above it:
  scenes: the objects and background of an image, rendering, visible masks.
  meaning: `Description`s and what they refer to (`evaluate`, `resolve`).
  grammar: the words, `describe`, and the expressions of a scene
    (`generate_expressions`).
  source: `ShapesSource` (ids, splits, cached images and masks),
    `length_histogram`.
The names other code uses are re-exported here (`shapes.ShapesSource`, ...).
"""
from tf_rmi.data.shapes.grammar import MAX_TOKENS, vocabulary_tokens
from tf_rmi.data.shapes.meaning import (KINDS, TRUE, UNCLEAR, Description, Filter, evaluate,
                                        resolve)
from tf_rmi.data.shapes.scenes import (COLOURS, SHAPES, SIZES, Scene, SceneObject,
                                       generate_scene, object_mask, render)
from tf_rmi.data.shapes.source import ShapesSource, length_histogram

__all__ = [
    "COLOURS", "SHAPES", "SIZES", "Scene", "SceneObject", "generate_scene", "object_mask",
    "render",
    "KINDS", "TRUE", "UNCLEAR", "Description", "Filter", "evaluate", "resolve",
    "MAX_TOKENS", "vocabulary_tokens",
    "ShapesSource", "length_histogram",
]
