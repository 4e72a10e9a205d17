"""Converts an original-release TF1 snapshot into a tf_rmi run directory.

    tf_rmi import --original=/path/to/model_iter_750000.tfmodel --model=RMI \\
        --weights=deeplab --vocab_file=vocabulary_Gref.txt --run_dir=runs/imported_unc

The run directory (config.json + checkpoints/ckpt-0) is then used like a
trained run: `make eval CKPT=runs/imported_unc`, `make export CKPT=...`.
The work is `tf_rmi.training.weights_import_lib.import_original`.
"""
from absl import flags

from tf_rmi.cli import common


def define_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_string("original", None, "Prefix of the original TF1 snapshot.", flag_values=fv)
    flags.mark_flag_as_required("original", flag_values=fv)
    common.model_kind(fv, "Head of the snapshot.")
    common.weights_kind(fv, "Trunk of the snapshot.")
    flags.DEFINE_integer("vocab_size", None, "Embedding rows (12112 Gref/UNC, 8803 ReferIt).",
                         flag_values=fv)
    common.vocab_file(fv, "Vocabulary file; its line count gives vocab_size.")
    common.dataset(fv, "unc", "Dataset the snapshot was trained on (recorded).")
    common.run_dir(fv, "Run directory to write.")


def main(fv: flags.FlagValues, args) -> None:
    common.no_arguments(args)
    from tf_rmi.training import weights_import_lib

    report = weights_import_lib.import_original(
        fv.original, fv.run_dir, model=fv.model, weights=fv.weights, vocab_size=fv.vocab_size,
        vocab_file=fv.vocab_file, dataset=fv.dataset)
    print(report.summary())
    print(f"Wrote {fv.run_dir}: evaluate with `make eval CKPT={fv.run_dir}`")
