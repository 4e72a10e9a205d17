"""shapes.meaning: every generated description resolves to its object by the
library's predicate, and ambiguous descriptions (near ties, non-unique
anchors) resolve to nothing."""
from tf_rmi.data import shapes


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
