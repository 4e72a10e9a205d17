"""`tf_rmi <command>`: predict (mask + overlay PNGs) and figures (paper-style).

    tf_rmi predict --checkpoint=runs/demo_rmi --image=photo.jpg --expression="the man on the right"
    tf_rmi predict --saved_model=exports/demo_rmi --image=photo.png --expression="..."
    tf_rmi figures --checkpoint=runs/demo_rmi --image=photo.jpg --expression="..." \\
        [--ground_truth=mask.png]

`predict` writes `<name>_mask.png` (0/255) and `<name>_overlay.png`, where
<name> is the image's file name with its extension (photo.jpg -> photo_jpg);
`figures` writes `<name>_fig6_response_maps.png` (RMI models),
`<name>_fig5_per_word.png` and, with --ground_truth, `<name>_fig7_result.png`.
`tf_rmi --help` lists the commands, `tf_rmi <command> --help` its flags.
"""
import os
import sys

from absl import app, flags

from tf_rmi.errors import clean_exit
from tf_rmi.usage import HELP_ARGS, flag_lines

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint", None, "Run directory or checkpoint prefix.")
flags.DEFINE_string("saved_model", None, "Exported SavedModel directory (instead of --checkpoint).")
flags.DEFINE_string("image", None, "Image file (JPEG, PNG, GIF, BMP, TIFF, ...).")
flags.DEFINE_string("expression", None, "The referring expression (UTF-8).")
flags.DEFINE_string("output_dir", "predictions", "Where to write the PNGs.")
flags.DEFINE_string("ground_truth", None,
                    "Ground-truth mask image (non-zero = object) for the Fig. 7 row.")
flags.DEFINE_string("vocab_file", None, "Vocabulary (default: the run's; --checkpoint only).")

COMMANDS = {
    "predict": ("Segments the object an expression refers to in one image.",
                "Writes <name>_mask.png (0/255, the image's size) and <name>_overlay.png (the "
                "image at full resolution, the mask tinted and outlined in a colour unlike the "
                "object, under the text the model read). Unknown words, words beyond the "
                "first T and punctuation-only expressions are read as the original release "
                "reads them, with a warning on stderr.",
                ("checkpoint", "saved_model", "image", "expression", "output_dir",
                 "vocab_file")),
    "figures": ("Paper-style figures for one image and expression.",
                "Writes <name>_fig6_response_maps.png (RMI: the response map after each word, "
                "with a colour bar), <name>_fig5_per_word.png (the segmentation after each "
                "word) and, with --ground_truth, <name>_fig7_result.png (image | ground truth "
                "| prediction, IoU). A SavedModel works through its `explain` signature.",
                ("checkpoint", "saved_model", "image", "expression", "ground_truth",
                 "output_dir", "vocab_file")),
}
USAGE = (f"usage: tf_rmi {{{'|'.join(COMMANDS)}}} --image=PATH --expression=TEXT "
         "(--checkpoint=RUN | --saved_model=DIR) [--output_dir=DIR]")


def top_help() -> str:
    lines = [USAGE, "", "Referring image segmentation (RMI, ICCV 2017) from the command line.",
             "", "commands:"]
    lines += [f"  {name:<9} {summary}" for name, (summary, _, _) in COMMANDS.items()]
    lines += ["", "`tf_rmi <command> --help` lists the command's flags. Examples:", "",
              '  tf_rmi predict --checkpoint=runs/shapes_RMI_deeplab --image=photo.jpg '
              '--expression="the red circle"',
              '  tf_rmi figures --saved_model=exports/shapes_rmi --image=photo.jpg '
              '--expression="the red circle"', "",
              "Other entry points (each with --help): tf_rmi_preprocess, tf_rmi_train, "
              "tf_rmi_evaluate, tf_rmi_export, tf_rmi_import; `make help` lists the make "
              "targets."]
    return "\n".join(lines)


def command_help(command: str) -> str:
    summary, details, names = COMMANDS[command]
    return "\n".join([f"usage: tf_rmi {command} [flags]", "", summary, details, "",
                      "flags:"] + flag_lines(names))


def main(argv):
    command = argv[1] if len(argv) > 1 else ""
    if command not in COMMANDS or len(argv) > 2:
        sys.exit(f"tf_rmi: unexpected arguments {argv[1:]}\n{USAGE}" if command in COMMANDS
                 else f"tf_rmi: unknown command {command!r}\n{USAGE}\n(tf_rmi --help lists "
                 "the commands)")
    if not FLAGS.image or FLAGS.expression is None:
        sys.exit(f"tf_rmi {command}: --image and --expression are required\n{USAGE}")

    def warn(message):
        print(f"tf_rmi {command}: warning: {message}", file=sys.stderr, flush=True)

    with clean_exit(f"tf_rmi {command}"):
        if command == "predict":
            from tf_rmi.predict import predict_to_files
            paths = predict_to_files(FLAGS.image, FLAGS.expression, FLAGS.output_dir,
                                     FLAGS.checkpoint, FLAGS.saved_model, FLAGS.vocab_file,
                                     warn=warn)
        else:
            from tf_rmi.predict import figures_to_files
            paths = figures_to_files(FLAGS.image, FLAGS.expression, FLAGS.output_dir,
                                     FLAGS.checkpoint, FLAGS.ground_truth, FLAGS.vocab_file,
                                     saved_model=FLAGS.saved_model, warn=warn)
    for path in paths:
        print(path)


def run(argv=None):
    argv = list(sys.argv if argv is None else argv)
    args = argv[1:]
    words = [a for a in args if not a.startswith("-")]
    if not args:
        print(top_help(), file=sys.stderr)
        sys.exit(2)
    if any(a in HELP_ARGS for a in args):
        command = next((w for w in words if w in COMMANDS), None)
        print(command_help(command) if command else top_help())
        sys.exit(0)
    app.run(main, argv=argv)


if __name__ == "__main__":
    run()
