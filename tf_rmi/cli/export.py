"""Exports a run as a self-contained SavedModel (see tf_rmi/serving/export_lib.py).

    make export CKPT=runs/shapes_RMI_deeplab EXPORT_DIR=exports/shapes_rmi
    tf_rmi export --checkpoint=runs/shapes_RMI_deeplab --output_dir=exports/shapes_rmi
    saved_model_cli show --dir exports/shapes_rmi --all

The run directory carries its vocabulary (vocab.txt), so it exports from any
working directory; runs from before that fall back to the preprocess manifest.
"""
from absl import flags

from tf_rmi.cli import common


def define_flags(fv: flags.FlagValues) -> None:
    common.checkpoint(fv)
    common.output_dir(fv, None, "Where to write the SavedModel.", required=True)
    common.vocab_file(fv)


def main(fv: flags.FlagValues, args) -> None:
    common.no_arguments(args)
    from tf_rmi.serving import export_lib

    path = export_lib.export_run(fv.checkpoint, fv.output_dir, fv.vocab_file)
    print(f"SavedModel written to {path}; inspect with `saved_model_cli show --dir {path} --all`")
