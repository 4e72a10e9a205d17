"""Exports a run as a self-contained SavedModel (see tf_rmi/export_lib.py).

    make export CKPT=runs/shapes_RMI_deeplab EXPORT_DIR=exports/shapes_rmi
    saved_model_cli show --dir exports/shapes_rmi --all

The run directory carries its vocabulary (vocab.txt), so it exports from any
working directory; runs from before that fall back to the preprocess manifest.
"""
from absl import flags

from tf_rmi.errors import clean_exit

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint", None, "Run directory or checkpoint prefix.")
flags.DEFINE_string("output_dir", None, "Where to write the SavedModel.")
flags.DEFINE_string("vocab_file", None, "Vocabulary (default: the run's).")
flags.mark_flags_as_required(["checkpoint", "output_dir"])


@clean_exit("export")  # e.g. bad input, or an unwritable/full output_dir
def main(argv):
    del argv
    from tf_rmi import export_lib

    path = export_lib.export_run(FLAGS.checkpoint, FLAGS.output_dir, FLAGS.vocab_file)
    print(f"SavedModel written to {path}; inspect with `saved_model_cli show --dir {path} --all`")


def run():
    from tf_rmi.usage import run_with_help
    run_with_help(main, __name__, __doc__)


if __name__ == "__main__":
    run()
