"""Pretrains the small trunk on the synthetic set (the demo's stand-in for DeepLab).

    make pretrain-trunk                       # runs/shapes_trunk, the demo's settings
    python -m tf_rmi.pretrain_trunk --tfrecord_dir=data/tfrecords \\
        --output_dir=runs/shapes_trunk [--steps=1000]

The images and labels are regenerated from the seed and image counts recorded
in the shapes records' manifest. The small-trunk flags must be the ones the
referring-segmentation run will use (`make train DATASET=shapes` passes the
same); that run then takes `--pretrained=<output_dir>` and keeps the trunk
frozen. See tf_rmi/trunk_pretraining.py.
"""
from absl import app, flags

from tf_rmi.config import ModelConfig
from tf_rmi.demo_lib import DemoConfig
from tf_rmi.errors import clean_exit
from tf_rmi.trunk_pretraining import TRUNK_FIELDS, TrunkPretrainConfig

# Defaults: the demo's trunk (DemoConfig), which `make train DATASET=shapes` also uses.
_D, _P = DemoConfig(), TrunkPretrainConfig()
flags.DEFINE_string("tfrecord_dir", "data/tfrecords", "Root of the shapes TFRecords.")
flags.DEFINE_string("output_dir", None, "Directory to write (replaced whole).")
flags.DEFINE_integer("input_size", _D.input_size, "Image side, as the records'.")
flags.DEFINE_integer("small_trunk_width", _D.small_trunk_width,
                     "Width of the small trunk's first conv.")
flags.DEFINE_float("small_trunk_input_scale", _D.small_trunk_input_scale,
                   "Input scale of the small trunk.")
flags.DEFINE_enum("small_trunk_norm", _D.small_trunk_norm, ["none", "group"], "Normalisation.")
flags.DEFINE_integer("small_trunk_norm_groups", ModelConfig().small_trunk_norm_groups,
                     "Group-norm groups.")
flags.DEFINE_bool("small_trunk_residual", _D.small_trunk_residual, "Identity shortcuts.")
flags.DEFINE_bool("small_trunk_aligned", _D.small_trunk_aligned, "Cells centred on pixels 8k.")
flags.DEFINE_bool("small_trunk_standardize", _D.small_trunk_standardize, "Standardised output.")
flags.DEFINE_bool("small_trunk_context", _D.small_trunk_context, "Directional maxima.")
flags.DEFINE_integer("steps", _P.steps, "Training steps.")
flags.DEFINE_integer("batch_size", _P.batch_size, "Images per step.")
flags.DEFINE_float("learning_rate", _P.learning_rate, "Adam learning rate.")
flags.DEFINE_integer("seed", _P.seed, "Initialisation and shuffling seed.")
flags.mark_flag_as_required("output_dir")
FLAGS = flags.FLAGS
_TRUNK_FLAGS = ("input_size",) + TRUNK_FIELDS


@clean_exit("pretrain_trunk")
def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from tf_rmi import trunk_pretraining

    model_cfg = ModelConfig(trunk="small", **{k: FLAGS[k].value for k in _TRUNK_FLAGS})
    cfg = TrunkPretrainConfig(steps=FLAGS.steps, batch_size=FLAGS.batch_size,
                              learning_rate=FLAGS.learning_rate, seed=FLAGS.seed)
    source = trunk_pretraining.shapes_source_for(FLAGS.tfrecord_dir)
    info = trunk_pretraining.pretrain_small_trunk(model_cfg, source, FLAGS.output_dir, cfg)
    shown = ", ".join(f"{k} {100 * v:.1f} %" for k, v in info["val_accuracy"].items())
    print(f"Wrote {FLAGS.output_dir} in {info['seconds']:.0f} s; val accuracy over object "
          f"cells: {shown}")


def run():
    from tf_rmi.usage import run_with_help
    run_with_help(main, __name__, __doc__)


if __name__ == "__main__":
    run()
