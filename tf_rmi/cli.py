"""`tf_rmi <command>`: predict (mask + overlay PNGs) and figures (paper-style).

    tf_rmi predict --checkpoint=runs/demo_rmi --image=photo.jpg --expression="the man on the right"
    tf_rmi predict --saved_model=exports/demo_rmi --image=photo.png --expression="..."
    tf_rmi figures --checkpoint=runs/demo_rmi --image=photo.jpg --expression="..." \
        [--ground_truth=mask.png]

`predict` writes `<stem>_mask.png` (0/255) and `<stem>_overlay.png`;
`figures` writes `<stem>_fig6_response_maps.png` (RMI models),
`<stem>_fig5_per_word.png` and, with --ground_truth, `<stem>_fig7_result.png`.
"""
import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint", None, "Run directory or checkpoint prefix.")
flags.DEFINE_string("saved_model", None, "Exported SavedModel directory (predict only).")
flags.DEFINE_string("image", None, "Image file (JPEG, PNG, ...).")
flags.DEFINE_string("expression", None, "The referring expression.")
flags.DEFINE_string("output_dir", "predictions", "Where to write the PNGs.")
flags.DEFINE_string("ground_truth", None,
                    "figures: ground-truth mask image (non-zero = object) for the Fig. 7 row.")
flags.DEFINE_string("vocab_file", None, "Vocabulary (default: the run's).")

COMMANDS = ("predict", "figures")
USAGE = (f"usage: tf_rmi {{{'|'.join(COMMANDS)}}} --image=PATH --expression=TEXT "
         "(--checkpoint=RUN | --saved_model=DIR) [--output_dir=DIR]")


def main(argv):
    command = argv[1] if len(argv) > 1 else ""
    if command not in COMMANDS or len(argv) > 2:
        sys.exit(USAGE)
    if not FLAGS.image or FLAGS.expression is None:
        sys.exit(f"tf_rmi {command}: --image and --expression are required\n{USAGE}")
    try:
        if command == "predict":
            from tf_rmi.predict import predict_to_files
            paths = predict_to_files(FLAGS.image, FLAGS.expression, FLAGS.output_dir,
                                     FLAGS.checkpoint, FLAGS.saved_model, FLAGS.vocab_file)
        else:
            from tf_rmi.visualize import figures_to_files
            paths = figures_to_files(FLAGS.image, FLAGS.expression, FLAGS.output_dir,
                                     FLAGS.checkpoint, FLAGS.ground_truth, FLAGS.vocab_file)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"tf_rmi {command}: {err}")
    for path in paths:
        print(path)


def run():
    app.run(main)


if __name__ == "__main__":
    run()
