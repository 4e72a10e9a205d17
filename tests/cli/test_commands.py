"""The `tf_rmi` dispatcher (tf_rmi/cli/__init__.py): every command's flags live in
its own FlagValues, so all commands load in one process; one error handler; the
older entry points are aliases that keep their name in messages."""
import importlib
import os

import pytest
from absl import flags

from tf_rmi import cli

# The older entry points: module -> (the command it runs, its name in messages).
ALIASES = {
    "tf_rmi.train": ("train", "train"),
    "tf_rmi.evaluate": ("evaluate", "evaluate"),
    "tf_rmi.export": ("export", "export"),
    "tf_rmi.import_weights": ("import", "import_weights"),
    "tf_rmi.demo": ("demo", "demo"),
    "tf_rmi.pretrain_trunk": ("pretrain-trunk", "pretrain_trunk"),
    "preprocess.build_data": ("preprocess", "build_data"),
    "experiments.run_experiment": ("experiment", "run_experiment"),
    "benchmarks.run_benchmarks": ("bench", "run_benchmarks"),
}


def _exit(capsys, fn, *args):
    with pytest.raises(SystemExit) as exit:
        fn(*args)
    out, err = capsys.readouterr()
    return exit.value.code, out, err


def test_the_issue_lists_every_command():
    assert set(cli.COMMANDS) >= {"preprocess", "train", "evaluate", "export", "predict",
                                 "figures", "import", "demo", "bench"}


def test_all_commands_define_their_flags_in_one_process_without_clashing():
    # The old entry points each defined absl flags on the global FLAGS: two of
    # them could not be imported together. Now each run gets its own FlagValues.
    before = set(flags.FLAGS)
    defined = {}
    for name in cli.COMMANDS:
        fv = flags.FlagValues()
        cli.command_module(name).define_flags(fv)
        defined[name] = set(fv)
    assert set(flags.FLAGS) == before
    assert "checkpoint" in defined["evaluate"] and "checkpoint" in defined["export"]
    assert "run_dir" in defined["train"] and "image" in defined["predict"]


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_each_command_help_shows_its_usage_and_every_flag(name, capsys):
    code, out, _ = _exit(capsys, cli.run, ["tf_rmi", name, "--help"])
    assert code == 0
    assert f"usage: tf_rmi {name} [flags]" in out
    fv = flags.FlagValues()
    cli.command_module(name).define_flags(fv)
    for flag in fv:
        assert f"  --{flag}\n" in out


def test_an_unknown_flag_is_a_usage_error_naming_it(capsys):
    code, _, err = _exit(capsys, cli.run, ["tf_rmi", "export", "--checkpoint=r", "--output=x"])
    assert code == 2
    assert err.splitlines()[0] == ("tf_rmi export: Unknown command line flag 'output'. "
                                   "Did you mean: output_dir ?")
    assert "`tf_rmi export --help` lists the flags" in err


def test_missing_required_flags_are_named(capsys):
    code, _, err = _exit(capsys, cli.run, ["tf_rmi", "export"])
    assert code == 2
    assert err.splitlines()[0] == "tf_rmi export: --checkpoint and --output_dir are required"


def test_a_stray_word_is_refused(capsys):
    code, _, err = _exit(capsys, cli.run, ["tf_rmi", "evaluate", "--checkpoint=r", "crf"])
    assert code == 2 and "unexpected arguments ['crf']" in err


def test_a_library_error_ends_with_one_line_naming_the_command(tmp_path, capsys):
    code, _, _ = _exit(capsys, cli.run, ["tf_rmi", "evaluate",
                                         f"--checkpoint={tmp_path / 'no_run'}"])
    # A string code: the interpreter prints it on stderr and exits with 1.
    assert isinstance(code, str) and code.startswith("tf_rmi evaluate: ")
    assert "\n" not in code and str(tmp_path / "no_run") in code


def test_flags_of_one_run_do_not_leak_into_the_next(tmp_path, capsys):
    # Same process, two runs: the second must not see the first's --split.
    _exit(capsys, cli.run, ["tf_rmi", "evaluate", f"--checkpoint={tmp_path}/a", "--split=testA"])
    fv, rest = cli.parse_flags("evaluate", ["tf_rmi evaluate", "--checkpoint=b"])
    assert fv.split == "val" and rest == []


@pytest.mark.parametrize("module", list(ALIASES))
def test_older_entry_points_run_their_command_under_their_own_name(module, capsys):
    command, prog = ALIASES[module]
    run = importlib.import_module(module).run
    code, out, _ = _exit(capsys, run, [module, "--help"])
    assert code == 0 and f"usage: {prog} [flags]" in out
    assert out.startswith(cli.command_module(command).__doc__.strip().splitlines()[0])
    code, _, err = _exit(capsys, run, [module, "--no_such_flag=1"])
    assert code == 2 and err.startswith(f"{prog}: Unknown command line flag 'no_such_flag'")


def test_console_scripts_name_existing_functions():
    # setup.py's console_scripts: each `module:function` must resolve.
    import re

    from tests.conftest import REPO_ROOT

    with open(os.path.join(REPO_ROOT, "setup.py")) as f:
        scripts = re.findall(r'"(tf_rmi\w*)=([\w.]+):(\w+)"', f.read())
    assert {name for name, _, _ in scripts} >= {"tf_rmi", "tf_rmi_train", "tf_rmi_evaluate"}
    for _, module, function in scripts:
        assert callable(getattr(importlib.import_module(module), function))
