"""How the command-line entry points end on a known error: the one owner.

The library reports what a user can fix (bad flags or input, missing or
unwritable files, incompatible records, runs or weights, a diverged run) as
`KNOWN_ERRORS`, with a message naming the cause and the fix. `clean_exit(name)`
turns those into `SystemExit("<name>: <message>")`: the interpreter prints that
one line on stderr and exits with status 1, without a traceback. Anything
else is a bug and still raises with its traceback.

    @clean_exit("train")
    def main(argv): ...                      # absl: app.run(main)

    with clean_exit(f"tf_rmi {command}"):    # a name known only inside main
        ...

No TensorFlow import: `tf_rmi --help` stays fast.
"""
import contextlib

from tf_rmi.data.sources import DataError

# ValueError also covers the library's own subclasses (ConfigMismatchError,
# TrunkPretrainingError, PretrainedWeightsError, EmptySentenceError, ...);
# OSError covers missing, unreadable and unwritable files (FileNotFoundError,
# PermissionError, PIL's UnidentifiedImageError); FloatingPointError is
# train_lib.NonFiniteLossError; DataError is a bad sample under --strict.
KNOWN_ERRORS = (ValueError, OSError, FloatingPointError, DataError)


@contextlib.contextmanager
def clean_exit(name: str):
    """Context manager and decorator: a `KNOWN_ERRORS` exception inside becomes
    `SystemExit(f"{name}: {err}")` (exit status 1, the message on stderr);
    other exceptions pass through unchanged."""
    try:
        yield
    except KNOWN_ERRORS as err:
        # `from None`: the library error's message is the whole report.
        raise SystemExit(f"{name}: {err}") from None
