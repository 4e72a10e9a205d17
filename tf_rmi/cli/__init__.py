"""`tf_rmi <command> [flags]`: the one command line of tf_rmi.

    tf_rmi preprocess --dataset=unc --data_root=data/refer
    tf_rmi train --dataset=unc --run_dir=runs/unc_RMI_deeplab --pretrained=...
    tf_rmi evaluate --checkpoint=runs/unc_RMI_deeplab --split=val [--crf]
    tf_rmi export --checkpoint=runs/unc_RMI_deeplab --output_dir=exports/unc_rmi
    tf_rmi predict --checkpoint=runs/unc_RMI_deeplab --image=photo.jpg --expression="..."

Each command is a module of this package (`COMMANDS`) with a docstring (its
help), `define_flags(flag_values)` and `main(flag_values, args)`. The
dispatcher gives every run a fresh `absl.flags.FlagValues`, so the commands
share flag definitions (`tf_rmi.cli.common`) without sharing state, and any
number of them can be imported and run in one process. One error handler
(`tf_rmi.errors.clean_exit`) ends every command: a bad flag or input exits
non-zero with one line naming the problem and the fix, never a traceback.

The older entry points (`tf_rmi_train`, `python -m tf_rmi.evaluate`,
`python -m preprocess.build_data`, ...) are aliases made by `alias`; they keep
their own name in messages. No TensorFlow import here: `--help` stays fast.
"""
from __future__ import annotations

import dataclasses
import importlib
import re
import sys
from typing import Callable, List, Optional, Sequence

from absl import app, flags

from tf_rmi.errors import clean_exit
from tf_rmi.cli import help as help_lib


@dataclasses.dataclass(frozen=True)
class Command:
    module: str  # tf_rmi.cli.<module>
    summary: str


COMMANDS = {
    "preprocess": Command("preprocess", "Write a dataset's TFRecords (the original's build_batches)."),
    "pretrain-trunk": Command("pretrain_trunk", "Pretrain the small trunk on the synthetic set."),
    "train": Command("train", "Train RMI or the LSTM baseline (resumes a run directory)."),
    "evaluate": Command("evaluate", "Score a run on a split: overall IoU, mean IoU, P@X [+ DenseCRF]."),
    "export": Command("export", "Export a run as a self-contained SavedModel."),
    "predict": Command("predict", "Segment what an expression refers to in one image."),
    "figures": Command("figures", "Paper-style figures (Fig. 5-7) for one image and expression."),
    "import": Command("import_weights", "Convert an original-release TF1 snapshot into a run."),
    "experiment": Command("experiment", "Run one row of the paper's Table 1: train, then evaluate."),
    "demo": Command("demo", "The whole pipeline on the embedded synthetic set (CPU, minutes)."),
    "bench": Command("bench", "Run the benchmarks (benchmarks/; a source checkout)."),
}
USAGE = "usage: tf_rmi <command> [flags]   (tf_rmi <command> --help lists its flags)"


def command_module(name: str):
    """The module of command `name` (imported on first use)."""
    return importlib.import_module(f"tf_rmi.cli.{COMMANDS[name].module}")


def top_help() -> str:
    lines = [USAGE, "", "Referring image segmentation with Recurrent Multimodal Interaction "
             "(RMI, ICCV 2017).", "", "commands:"]
    lines += [f"  {name:<15} {command.summary}" for name, command in COMMANDS.items()]
    lines += ["", "Examples:", "",
              "  tf_rmi train --dataset=shapes --run_dir=runs/shapes_RMI --trunk=small",
              '  tf_rmi predict --checkpoint=runs/shapes_RMI --image=photo.jpg '
              '--expression="the red circle"', "",
              "`make help` lists the make targets, which run these commands."]
    return "\n".join(lines)


def parse_flags(name: str, argv: Sequence[str]):
    """A fresh FlagValues holding command `name`'s flags parsed from `argv`
    (program name first). Returns (flag_values, the remaining arguments).
    A bad flag is a UsageError naming it."""
    flag_values = flags.FlagValues()
    command_module(name).define_flags(flag_values)
    try:
        rest = flag_values(list(argv))
    except flags.Error as err:
        missing = re.findall(r"Flag --(\w+) must have a value other than None", str(err))
        raise app.UsageError(" and ".join(f"--{flag}" for flag in missing)
                             + (" are required" if len(missing) > 1 else " is required")
                             if missing else str(err)) from None
    return flag_values, rest[1:]


def run_command(name: str, args: Sequence[str], prog: Optional[str] = None) -> None:
    """Runs command `name` with the arguments `args` (no program name).

    `prog` names the program in messages (default "tf_rmi <name>"). -h/--help
    print the command's help and exit 0; a usage error exits 2 and a known
    library error 1, each with one line on stderr."""
    prog = prog or f"tf_rmi {name}"
    if any(a in help_lib.HELP_ARGS[:-1] for a in args):
        print(command_help(name, prog))
        sys.exit(0)
    # absl's logging reads its own flags, which no command defines: mark them
    # parsed so that a library's log line is not preceded by a warning.
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
    try:
        with clean_exit(prog):
            flag_values, rest = parse_flags(name, [prog] + list(args))
            command_module(name).main(flag_values, rest)
    except app.UsageError as err:
        print(f"{prog}: {err}\n(`{prog} --help` lists the flags)", file=sys.stderr)
        sys.exit(2)


def command_help(name: str, prog: Optional[str] = None) -> str:
    """The command's docstring, a usage line and its flags (with defaults)."""
    prog = prog or f"tf_rmi {name}"
    flag_values = flags.FlagValues()
    module = command_module(name)
    module.define_flags(flag_values)
    return "\n".join([(module.__doc__ or "").strip(), "", f"usage: {prog} [flags]", "", "flags:"]
                     + help_lib.flag_lines(flag_values, sorted(flag_values)))


def run(argv: Optional[List[str]] = None) -> None:
    """The `tf_rmi` console script: `tf_rmi <command> [flags]`."""
    argv = list(sys.argv if argv is None else argv)
    args = argv[1:]
    if not args:
        print(top_help(), file=sys.stderr)
        sys.exit(2)
    if args[0] in help_lib.HELP_ARGS:
        print(top_help())
        sys.exit(0)
    name = args[0]
    if name not in COMMANDS:
        sys.exit(f"tf_rmi: unknown command {name!r}\n{USAGE}\ncommands: {', '.join(COMMANDS)}")
    run_command(name, args[1:])


def alias(name: str, prog: str) -> Callable[[], None]:
    """The `run()` of an older entry point: `tf_rmi <name>` with the process's
    arguments, named `prog` in messages (what the user typed)."""

    def run_alias(argv: Optional[List[str]] = None) -> None:
        argv = list(sys.argv if argv is None else argv)
        run_command(name, argv[1:], prog=prog)

    run_alias.__doc__ = f"`{prog}`: an alias of `tf_rmi {name}`."
    return run_alias
