"""Help text of the `tf_rmi` commands: the flags' lines. No flags are defined here."""
from __future__ import annotations

from typing import Iterable, List

from absl import flags

# What asks for help: `tf_rmi --help`, `tf_rmi help`, `tf_rmi train -h`, ...
# ("help" alone only as the command: a command's positional "help" is an argument).
HELP_ARGS = ("-h", "--help", "-help", "--helpshort", "help")


def flag_lines(flag_values: flags.FlagValues, names: Iterable[str]) -> List[str]:
    """`  --name` then its help and default, for each named flag of `flag_values`."""
    lines = []
    for name in names:
        flag = flag_values[name]
        default = "" if flag.default is None else f" (default: {flag.default!r})"
        lines.append(f"  --{name}\n      {flag.help}{default}")
    return lines
