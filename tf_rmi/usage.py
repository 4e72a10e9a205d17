"""Help for the command-line entry points: `-h` / `--help` print the entry
point's description and its flags and exit 0 (absl's own `--help` prints a
bare "USAGE: ... [flags]" line and exits 1 when run as a console script).
No flags are defined here."""
import os
import sys

from absl import app, flags

FLAGS = flags.FLAGS
HELP_ARGS = ("-h", "--help", "-help", "--helpshort", "help")


def flag_lines(names) -> list:
    """`--name=DEFAULT  help` lines for the named flags."""
    lines = []
    for name in names:
        flag = FLAGS[name]
        default = "" if flag.default is None else f" (default: {flag.default!r})"
        lines.append(f"  --{name}\n      {flag.help}{default}")
    return lines


def module_help(module_name: str, doc: str) -> str:
    """Help of a standalone entry point: its docstring and the flags it defines."""
    module = sys.modules.get(module_name)
    paths = {module_name, os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""}
    if module is not None and getattr(module, "__file__", None):
        paths.add(os.path.abspath(module.__file__))
    names = []
    for key, defined in FLAGS.flags_by_module_dict().items():
        if key in paths or (os.path.sep in key and os.path.abspath(key) in paths):
            names += [f.name for f in defined]
    return "\n".join([(doc or "").strip(), "", "flags:"] + flag_lines(sorted(set(names))))


def run_with_help(main, module_name: str, doc: str, argv=None) -> None:
    """`app.run(main)`, but -h / --help print the entry point's help and exit 0."""
    argv = list(sys.argv if argv is None else argv)
    if any(a in HELP_ARGS[:-1] for a in argv[1:]):
        print(module_help(module_name, doc))
        sys.exit(0)
    app.run(main, argv=argv)
