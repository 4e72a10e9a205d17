"""Pretrains the small trunk on the synthetic set (the demo's stand-in for DeepLab).

    make pretrain-trunk                       # runs/shapes_trunk, the demo's settings
    tf_rmi pretrain-trunk --tfrecord_dir=data/tfrecords \\
        --output_dir=runs/shapes_trunk [--steps=1000]

The images and labels are regenerated from the seed and image counts recorded
in the shapes records' manifest. The small-trunk flags must be the ones the
referring-segmentation run will use (`make train DATASET=shapes` passes the
same); that run then takes `--pretrained=<output_dir>` and keeps the trunk
frozen. See tf_rmi/training/trunk_pretraining.py.
"""
from absl import flags

from tf_rmi.cli import common
from tf_rmi.config import SMALL_TRUNK_FIELDS, ModelConfig


def define_flags(fv: flags.FlagValues) -> None:
    # Defaults: the demo's trunk (DemoConfig), which `make train DATASET=shapes` also uses.
    from tf_rmi.recipes.demo_lib import DemoConfig
    from tf_rmi.training.trunk_pretraining import TrunkPretrainConfig

    demo, pre = DemoConfig(), TrunkPretrainConfig()
    common.tfrecord_dir(fv, help="Root of the shapes TFRecords.")
    common.output_dir(fv, None, "Directory to write (replaced whole).", required=True)
    flags.DEFINE_integer("input_size", demo.input_size, "Image side, as the records'.",
                         flag_values=fv)
    common.small_trunk(fv, ModelConfig(**{name: getattr(demo, name, getattr(ModelConfig(), name))
                                          for name in SMALL_TRUNK_FIELDS}))
    flags.DEFINE_integer("steps", pre.steps, "Training steps.", flag_values=fv)
    flags.DEFINE_integer("batch_size", pre.batch_size, "Images per step.", flag_values=fv)
    flags.DEFINE_float("learning_rate", pre.learning_rate, "Adam learning rate.", flag_values=fv)
    flags.DEFINE_integer("seed", pre.seed, "Initialisation and shuffling seed.", flag_values=fv)


def main(fv: flags.FlagValues, args) -> None:
    common.no_arguments(args)
    from tf_rmi.training import trunk_pretraining

    model_cfg = ModelConfig(trunk="small", input_size=fv.input_size,
                            **common.values(fv, SMALL_TRUNK_FIELDS))
    cfg = trunk_pretraining.TrunkPretrainConfig(steps=fv.steps, batch_size=fv.batch_size,
                                                learning_rate=fv.learning_rate, seed=fv.seed)
    source = trunk_pretraining.shapes_source_for(fv.tfrecord_dir)
    info = trunk_pretraining.pretrain_small_trunk(model_cfg, source, fv.output_dir, cfg)
    shown = ", ".join(f"{k} {100 * v:.1f} %" for k, v in info["val_accuracy"].items())
    print(f"Wrote {fv.output_dir} in {info['seconds']:.0f} s; val accuracy over object "
          f"cells: {shown}")
