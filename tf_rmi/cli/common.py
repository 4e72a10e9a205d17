"""Flag definitions that several `tf_rmi` commands share, defined once.

Each function defines its flag(s) on the `flag_values` it is given (a
command's own `absl.flags.FlagValues`, never the global FLAGS). The defaults
of model and trainer flags come from the config dataclasses, so a default is
written in tf_rmi/config.py only.
"""
from __future__ import annotations

from typing import Optional

from absl import flags

from tf_rmi import config


def checkpoint(fv: flags.FlagValues, required: bool = True) -> None:
    flags.DEFINE_string("checkpoint", None, "Run directory or checkpoint prefix.", flag_values=fv)
    if required:
        flags.mark_flag_as_required("checkpoint", flag_values=fv)


def saved_model(fv: flags.FlagValues) -> None:
    flags.DEFINE_string("saved_model", None, "Exported SavedModel directory (instead of "
                        "--checkpoint).", flag_values=fv)


def tfrecord_dir(fv: flags.FlagValues, default: Optional[str] = "data/tfrecords",
                 help: str = "Holds <dataset>/<split>-*.tfrecord.") -> None:
    flags.DEFINE_string("tfrecord_dir", default, help, flag_values=fv)


def output_dir(fv: flags.FlagValues, default: Optional[str], help: str,
               required: bool = False) -> None:
    flags.DEFINE_string("output_dir", default, help, flag_values=fv)
    if required:
        flags.mark_flag_as_required("output_dir", flag_values=fv)


def run_dir(fv: flags.FlagValues, help: str) -> None:
    flags.DEFINE_string("run_dir", None, help, flag_values=fv)
    flags.mark_flag_as_required("run_dir", flag_values=fv)


def vocab_file(fv: flags.FlagValues, help: str = "Vocabulary (default: the run's).") -> None:
    flags.DEFINE_string("vocab_file", None, help, flag_values=fv)


def dataset(fv: flags.FlagValues, default: str = "shapes", help: str = "") -> None:
    """--dataset, checked against the registry (config.DATASETS) when parsed."""
    flags.DEFINE_string("dataset", default, help or "One of " + ", ".join(config.DATASETS) + ".",
                        flag_values=fv)

    def known(name):
        try:
            config.dataset_spec(name)
        except ValueError as err:
            raise flags.ValidationError(str(err)) from None
        return True

    flags.register_validator("dataset", known, flag_values=fv)


def model_kind(fv: flags.FlagValues, help: str = "RMI or the LSTM baseline.") -> None:
    flags.DEFINE_enum("model", "RMI", list(config.MODELS), help, flag_values=fv)


def weights_kind(fv: flags.FlagValues, help: str = "Visual feature: res5c + conv0 (deeplab) "
                 "or fc1000 (resnet).") -> None:
    flags.DEFINE_enum("weights", "deeplab", list(config.WEIGHTS), help, flag_values=fv)


def image_and_expression(fv: flags.FlagValues) -> None:
    flags.DEFINE_string("image", None, "Image file (JPEG, PNG, GIF, BMP, TIFF, ...).",
                        flag_values=fv)
    flags.DEFINE_string("expression", None, "The referring expression (UTF-8).", flag_values=fv)
    flags.mark_flags_as_required(["image", "expression"], flag_values=fv)


def small_trunk(fv: flags.FlagValues, defaults: config.ModelConfig, exclude=()) -> None:
    """The small trunk's architecture flags (`config.SMALL_TRUNK_FIELDS`, which
    train and pretrain-trunk must agree on), but `exclude`, with `defaults`'
    values as their defaults."""
    definitions = {
        "small_trunk_width": (flags.DEFINE_integer, {}, "base width."),
        "small_trunk_input_scale": (flags.DEFINE_float, {}, "input multiplier."),
        "small_trunk_norm": (flags.DEFINE_enum, {"enum_values": list(config.SMALL_TRUNK_NORMS)},
                             "normalisation."),
        "small_trunk_norm_groups": (flags.DEFINE_integer, {}, "group-norm groups."),
        "small_trunk_residual": (flags.DEFINE_bool, {}, "identity shortcuts."),
        "small_trunk_aligned": (flags.DEFINE_bool, {}, "cell k centred on pixel 8k."),
        "small_trunk_standardize": (flags.DEFINE_bool, {}, "linear last conv, output "
                                    "standardised per image and channel over the cells."),
        "small_trunk_context": (flags.DEFINE_bool, {}, "append the maxima over the cells left "
                                "of, right of, above and below each cell."),
    }
    for name in config.SMALL_TRUNK_FIELDS:
        if name not in exclude:
            define, extra, help = definitions[name]
            define(name=name, default=getattr(defaults, name), help="Small trunk only: " + help,
                   flag_values=fv, **extra)


def values(fv: flags.FlagValues, names) -> dict:
    """{name: value} of the named flags."""
    return {name: fv[name].value for name in names}


def no_arguments(args) -> None:
    """Commands take flags only: a stray word (a typo'd flag without --) is refused."""
    if args:
        from absl import app

        raise app.UsageError(f"unexpected arguments {list(args)}")
