"""Segments the object an expression refers to in one image.

    tf_rmi predict --checkpoint=runs/demo_rmi --image=photo.jpg --expression="the man on the right"
    tf_rmi predict --saved_model=exports/demo_rmi --image=photo.png --expression="..."

Writes <name>_mask.png (0/255, the image's size) and <name>_overlay.png (the
image at full resolution, the mask tinted and outlined in a colour unlike the
object, under the text the model read), where <name> is the image's file name
with its extension (photo.jpg -> photo_jpg), and prints their paths. Unknown
words, words beyond the first T and punctuation-only expressions are read as
the original release reads them, with a warning on stderr. The work is
`tf_rmi.serving.predict.predict_to_files`.
"""
import sys

from absl import flags

from tf_rmi.cli import common


def define_flags(fv: flags.FlagValues) -> None:
    common.checkpoint(fv, required=False)
    common.saved_model(fv)
    common.image_and_expression(fv)
    common.output_dir(fv, "predictions", "Where to write the PNGs.")
    common.vocab_file(fv, "Vocabulary (default: the run's; --checkpoint only).")


def warner(prog: str):
    """A `warn(message)` that prints `<prog>: warning: <message>` on stderr."""
    def warn(message):
        print(f"{prog}: warning: {message}", file=sys.stderr, flush=True)
    return warn


def main(fv: flags.FlagValues, args) -> None:
    common.no_arguments(args)
    from tf_rmi.serving.predict import predict_to_files

    paths = predict_to_files(fv.image, fv.expression, fv.output_dir, fv.checkpoint,
                             fv.saved_model, fv.vocab_file, warn=warner("tf_rmi predict"))
    for path in paths:
        print(path)
