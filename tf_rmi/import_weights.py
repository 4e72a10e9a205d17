"""Converts an original-release TF1 snapshot into a tf_rmi run directory.

    tf_rmi_import --original=/path/to/model_iter_750000.tfmodel --model=RMI \
        --weights=deeplab --vocab_file=vocabulary_Gref.txt --run_dir=runs/imported_unc

The run directory (config.json + checkpoints/ckpt-0) is then used like a
trained run: `make eval CKPT=runs/imported_unc`, `make export CKPT=...`.
"""
from absl import app, flags

from tf_rmi import weights_import_lib
from tf_rmi.errors import clean_exit

FLAGS = flags.FLAGS
flags.DEFINE_string("original", None, "Prefix of the original TF1 snapshot.")
flags.DEFINE_enum("model", "RMI", ["RMI", "LSTM"], "Head of the snapshot.")
flags.DEFINE_enum("weights", "deeplab", ["deeplab", "resnet"], "Trunk of the snapshot.")
flags.DEFINE_integer("vocab_size", None, "Embedding rows (12112 Gref/UNC, 8803 ReferIt).")
flags.DEFINE_string("vocab_file", None, "Vocabulary file; its line count gives vocab_size.")
flags.DEFINE_string("dataset", "unc", "Dataset the snapshot was trained on (recorded).")
flags.DEFINE_string("run_dir", None, "Run directory to write.")
flags.mark_flags_as_required(["original", "run_dir"])


@clean_exit("import_weights")
def main(argv):
    del argv
    report = weights_import_lib.import_original(
        FLAGS.original, FLAGS.run_dir, model=FLAGS.model, weights=FLAGS.weights,
        vocab_size=FLAGS.vocab_size, vocab_file=FLAGS.vocab_file, dataset=FLAGS.dataset)
    print(report.summary())
    print(f"Wrote {FLAGS.run_dir}: evaluate with `make eval CKPT={FLAGS.run_dir}`")


def run():
    app.run(main)


if __name__ == "__main__":
    run()
