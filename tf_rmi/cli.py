"""`tf_rmi <command>`: predict (mask + overlay PNGs) and figures (paper-style).

    tf_rmi predict --checkpoint=runs/demo_rmi --image=photo.jpg --expression="the man on the right"
    tf_rmi predict --saved_model=exports/demo_rmi --image=photo.png --expression="..."
    tf_rmi figures --checkpoint=runs/demo_rmi --image=photo.jpg --expression="..."
"""
import os
import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint", None, "Run directory or checkpoint prefix.")
flags.DEFINE_string("saved_model", None, "Exported SavedModel directory (predict only).")
flags.DEFINE_string("image", None, "Image file (JPEG, PNG, ...).")
flags.DEFINE_string("expression", None, "The referring expression.")
flags.DEFINE_string("output_dir", "predictions", "Where to write the PNGs.")

COMMANDS = ("predict", "figures")


def main(argv):
    command = argv[1] if len(argv) > 1 else ""
    if command not in COMMANDS:
        sys.exit(f"usage: tf_rmi {{{'|'.join(COMMANDS)}}} --image=... --expression=... "
                 "(--checkpoint=RUN | --saved_model=DIR)")
    if not FLAGS.image or FLAGS.expression is None:
        sys.exit("tf_rmi: --image and --expression are required")
    try:
        if command == "predict":
            from tf_rmi.predict import predict_to_files
            paths = predict_to_files(FLAGS.image, FLAGS.expression, FLAGS.output_dir,
                                     FLAGS.checkpoint, FLAGS.saved_model)
        else:
            from tf_rmi import visualize
            from tf_rmi.predict import RunPredictor, load_image
            if not FLAGS.checkpoint:
                sys.exit("tf_rmi figures: --checkpoint is required")
            predictor = RunPredictor(FLAGS.checkpoint)
            stem = os.path.splitext(os.path.basename(FLAGS.image))[0]
            paths = visualize.expression_figures(predictor.model, predictor.vocab,
                                                 load_image(FLAGS.image), FLAGS.expression,
                                                 FLAGS.output_dir, stem).values()
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"tf_rmi {command}: {err}")
    for path in paths:
        print(path)


def run():
    app.run(main)


if __name__ == "__main__":
    run()
