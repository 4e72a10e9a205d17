"""Paper-style figures for one image and expression.

    tf_rmi figures --checkpoint=runs/demo_rmi --image=photo.jpg --expression="..." \\
        [--ground_truth=mask.png]

Writes <name>_fig6_response_maps.png (RMI: the response map after each word,
with a colour bar), <name>_fig5_per_word.png (the segmentation after each
word) and, with --ground_truth, <name>_fig7_result.png (image | ground truth |
prediction, IoU), and prints their paths. A SavedModel works through its
`explain` signature. The work is `tf_rmi.serving.predict.figures_to_files`.
"""
from absl import flags

from tf_rmi.cli import common
from tf_rmi.cli.predict import warner


def define_flags(fv: flags.FlagValues) -> None:
    common.checkpoint(fv, required=False)
    common.saved_model(fv)
    common.image_and_expression(fv)
    flags.DEFINE_string("ground_truth", None, "Ground-truth mask image (non-zero = object) for "
                        "the Fig. 7 row.", flag_values=fv)
    common.output_dir(fv, "predictions", "Where to write the PNGs.")
    common.vocab_file(fv, "Vocabulary (default: the run's; --checkpoint only).")


def main(fv: flags.FlagValues, args) -> None:
    common.no_arguments(args)
    from tf_rmi.serving.predict import figures_to_files

    paths = figures_to_files(fv.image, fv.expression, fv.output_dir, fv.checkpoint,
                             fv.ground_truth, fv.vocab_file, saved_model=fv.saved_model,
                             warn=warner("tf_rmi figures"))
    for path in paths:
        print(path)
