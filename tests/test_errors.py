"""tf_rmi.errors.clean_exit: a known error ends an entry point with one line on
stderr and a non-zero status; anything else still raises (bugs stay visible)."""
import os
import re
import subprocess
import sys

import pytest
from absl import app

from tests.conftest import REPO_ROOT, checkout_env
from tf_rmi.data.sources import DataError
from tf_rmi.errors import KNOWN_ERRORS, clean_exit
from tf_rmi.training.train_lib import ConfigMismatchError, NonFiniteLossError
from tf_rmi.training.trunk_pretraining import TrunkPretrainingError

# Every absl program of the project: the `tf_rmi` dispatcher, which runs every
# command and alias (tests/cli/test_commands.py), and the experiment scripts.
# (tf_rmi.data.order_stats is an argparse simulation that reads no user files.)
ENTRY_POINTS = ["tf_rmi/cli/__init__.py", "experiments/demo_ablation.py",
                "experiments/learning_diagnosis.py"]


@pytest.mark.parametrize("error", [
    ValueError("bad --split 'x': use one of train, val"),
    FileNotFoundError("No records directory r: pass --tfrecord_dir"),
    PermissionError("Cannot write o: make the location writable"),
    ConfigMismatchError("model differs from config.json: num_words"),
    TrunkPretrainingError("no trunk.json in t: run make pretrain-trunk"),
    NonFiniteLossError(3, float("nan"), float("nan"), 0.0, None),
    DataError("missing_image", "image i.jpg does not exist", "i.jpg"),
])
def test_a_known_error_becomes_one_line_and_a_non_zero_exit(error):
    @clean_exit("tool")
    def main(argv):
        raise error

    with pytest.raises(SystemExit) as exit:
        main(["tool"])
    # A string code: the interpreter prints it on stderr and exits with 1.
    assert exit.value.code == f"tool: {error}"
    assert "\n" not in exit.value.code
    assert exit.value.__cause__ is None and exit.value.__suppress_context__


@pytest.mark.parametrize("error", [KeyError("k"), TypeError("t"), RuntimeError("r"),
                                   AssertionError("a"), app.UsageError("u")])
def test_other_errors_pass_through_unchanged(error):
    # Bugs keep their traceback; absl's UsageError reaches app.run (usage, exit 1).
    assert not isinstance(error, KNOWN_ERRORS)
    with pytest.raises(type(error)) as raised:
        with clean_exit("tool"):
            raise error
    assert raised.value is error


def test_the_decorated_main_keeps_its_name_and_result():
    @clean_exit("tool")
    def main(argv):
        """Doc."""
        return len(argv)

    assert main.__name__ == "main" and main.__doc__ == "Doc."
    assert main(["a", "b"]) == 2 and main(["a"]) == 1  # reusable: one call per run


_SCRIPT = """
import sys
from tf_rmi.errors import clean_exit
@clean_exit("tool")
def main():
    raise {error}
main()
"""


def _run(error):
    return subprocess.run([sys.executable, "-c", _SCRIPT.format(error=error)], cwd=REPO_ROOT,
                          capture_output=True, text=True, env=checkout_env(), timeout=120)


def test_the_process_prints_one_line_without_traceback():
    result = _run('FileNotFoundError("No records directory r: pass --tfrecord_dir=DIR")')
    assert result.returncode == 1
    assert result.stderr == "tool: No records directory r: pass --tfrecord_dir=DIR\n"


def test_an_unexpected_error_still_shows_its_traceback():
    result = _run('KeyError("settings")')
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "KeyError: 'settings'" in result.stderr


@pytest.mark.parametrize("path", ENTRY_POINTS)
def test_every_entry_point_uses_the_one_handler(path):
    with open(os.path.join(REPO_ROOT, path), encoding="utf-8") as f:
        source = f.read()
    assert "clean_exit(" in source, path
    # No private copy of the handler left behind.
    assert not re.search(r"except \([^)]*\) as \w+:\s*\n\s*(sys\.exit|raise SystemExit)\(",
                         source), path
