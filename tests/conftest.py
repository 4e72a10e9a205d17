"""Shared test harness: paths to ../shared, tiny configurations and models, the
shared fixtures, and the entry-point worker. Records and run directories on
disk: tests/records.py."""
import os
import subprocess

import pytest

from tf_rmi.config import ModelConfig

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DIR = os.path.join(os.path.dirname(REPO_ROOT), "shared")


def shared_path(*parts):
    """Path under ../shared, skipping the test when it is not beside the checkout."""
    path = os.path.join(SHARED_DIR, *parts)
    if not os.path.exists(path):
        pytest.skip(f"{path} not found: ../shared must sit beside the checkout")
    return path


def tiny_model_config(**overrides) -> ModelConfig:
    """The small-trunk model at small sizes: fast enough for every test."""
    values = dict(trunk="small", small_trunk_width=8, vocab_size=50, input_size=64,
                  num_words=6, visual_dim=16, embed_dim=12, lstm_units=10,
                  mlstm_units=8)
    values.update(overrides)
    return ModelConfig(**values)


@pytest.fixture
def tiny_config():
    return tiny_model_config()


def decisive_tiny_model(cfg: ModelConfig, seed: int = 0):
    """A seeded tiny model whose masks are decided well away from the threshold.

    A random tiny model's logits all sit near 0, where float rounding that
    differs between execution paths (eager vs graph, batch sizes) could flip a
    pixel at the 1e-9 threshold. Scaling conv2 and centring its bias on the
    median logit of a probe image gives masks that are neither empty nor full.
    """
    import keras
    import numpy as np

    from tf_rmi.models.segmenter import build_model

    keras.utils.set_random_seed(seed)
    model = build_model(cfg)
    model.conv2.kernel.assign(model.conv2.kernel * 1000.0)
    size = cfg.input_size
    probe = np.random.RandomState(5).randn(1, size, size, 3).astype(np.float32) * 50
    words = np.zeros((1, cfg.num_words), np.int32)
    words[0, -3:] = [4, 5, 6]
    logits = model((probe, words))["logits"].numpy()
    model.conv2.bias.assign(model.conv2.bias - np.median(logits))
    return model


def write_tiny_run(run_dir: str, words, vocab_path: str, seed: int = 1):
    """A run directory of a decisive tiny RMI model: config.json naming the
    vocabulary `words` (written to `vocab_path`) and one checkpoint. Returns `run_dir`."""
    from tests.records import write_run

    model = decisive_tiny_model(tiny_model_config(vocab_size=len(words)), seed=seed)
    write_run(run_dir, model, words=words, vocab_path=vocab_path)
    return run_dir


TINY_WORDS = ["<pad>", "<go>", "<eos>", "<unk>", "the", "red", "circle", "left", "of", "big"]


@pytest.fixture(scope="session")
def tiny_run_dir(tmp_path_factory):
    """`write_tiny_run` over TINY_WORDS (seed 1), shared by the modules that only
    read it: config.json names the vocabulary by absolute path outside the run,
    and the run holds its own copy, vocab.txt, as training writes it."""
    import shutil

    root = tmp_path_factory.mktemp("tiny_run")
    vocab_path = str(root / "words.txt")
    run_dir = write_tiny_run(str(root / "run"), TINY_WORDS, vocab_path)
    shutil.copyfile(vocab_path, os.path.join(run_dir, "vocab.txt"))
    return run_dir


@pytest.fixture(scope="session")
def tiny_run_export(tiny_run_dir, tmp_path_factory):
    """The SavedModel export of `tiny_run_dir` (export_lib.export_run)."""
    from tf_rmi.serving import export_lib

    return export_lib.export_run(tiny_run_dir, str(tmp_path_factory.mktemp("tiny_export") / "rmi"))


def copy_run_with_a_missing_config_vocabulary(run_dir: str, dest) -> str:
    """A copy of `run_dir` whose config.json names a vocabulary that does not
    exist, so only the run's own vocab.txt can serve. Returns the copy's path."""
    import json
    import shutil

    shutil.copytree(run_dir, dest)
    path = os.path.join(str(dest), "config.json")
    with open(path) as f:
        config = json.load(f)
    config["data"]["vocab_file"] = "gone/vocab.txt"
    with open(path, "w") as f:
        json.dump(config, f)
    return str(dest)


def checkout_env(**extra):
    """This process's environment with the checkout first on PYTHONPATH (the
    checkout's tf_rmi whatever the working directory), plus `extra`."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join([REPO_ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


# Runs `<module>.run()` once per request line {"args": [...], "cwd": ...}, as
# `python -m <module> <args>` from `cwd` would: fresh flags, file descriptors 1
# and 2 captured (Python's and the libraries' output alike), the exit status as
# the interpreter would give it (SystemExit's code; its message on stderr and 1;
# an uncaught exception's traceback on stderr and 1). Answers one JSON line per
# request on a duplicate of the original stdout; anything else written outside
# a command goes to stderr.
_WORKER = r"""
import os, sys
reply = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
sys.path[0] = os.getcwd()  # as `python -m` from the worker's directory, not each command's
import importlib, json, tempfile, traceback
from absl import flags
entry_point = importlib.import_module(sys.argv[1])
for line in sys.stdin:
    request = json.loads(line)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        saved = os.dup(1), os.dup(2)
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            os.chdir(request["cwd"])
            flags.FLAGS.unparse_flags()
            sys.argv = [entry_point.__file__] + request["args"]
            entry_point.run()
            code = 0
        except SystemExit as exit:
            code = exit.code
            if code is None:
                code = 0
            elif not isinstance(code, int):
                print(code, file=sys.stderr)
                code = 1
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        out.seek(0)
        err.seek(0)
        reply.write(json.dumps({"returncode": code, "stdout": out.read().hex(),
                                "stderr": err.read().hex()}) + "\n")
        reply.flush()
"""


class EntryPointWorker:
    """One `python -m <module>` process that runs many commands in turn.

    For tests about what an entry point does, not about starting a process:
    TensorFlow is imported once for all the commands instead of once each.
    `run(*args, cwd=...)` returns what `subprocess.run([sys.executable, "-m",
    module, *args], cwd=cwd, capture_output=True)` would (bytes streams).
    Each command parses into its own FlagValues (tf_rmi/cli), so one worker may
    run any mix of commands of its module. `env`: the worker's environment (default: this process's, with
    the checkout first on PYTHONPATH)."""

    def __init__(self, module, env=None):
        import sys
        import threading

        if env is None:
            env = checkout_env()
        self.module = module
        self.proc = subprocess.Popen([sys.executable, "-c", _WORKER, module],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=REPO_ROOT, env=env, text=True)
        # Drained so that a chatty worker never blocks on a full pipe.
        self.stderr = []
        self._drain = threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr),
                                       daemon=True)
        self._drain.start()

    def run(self, *args, cwd=REPO_ROOT, timeout=600):
        import json
        import threading

        self.proc.stdin.write(json.dumps({"args": list(args), "cwd": str(cwd)}) + "\n")
        self.proc.stdin.flush()
        timer = threading.Timer(timeout, self.proc.kill)
        timer.start()
        try:
            line = self.proc.stdout.readline()
        finally:
            timer.cancel()
        assert line, f"the {self.module} worker died: " + "".join(self.stderr)[-3000:]
        reply = json.loads(line)
        return subprocess.CompletedProcess(
            ["-m", self.module, *args], reply["returncode"], bytes.fromhex(reply["stdout"]),
            bytes.fromhex(reply["stderr"]))

    def close(self):
        # Every command has answered: nothing is left to finish (an orderly exit of
        # TensorFlow and matplotlib takes seconds).
        self.proc.kill()
        self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()


@pytest.fixture(scope="session")
def cli_worker():
    """`tf_rmi <command> ...` (tf_rmi.cli) commands, all run by one worker process."""
    worker = EntryPointWorker("tf_rmi.cli", env=checkout_env(TF_CPP_MIN_LOG_LEVEL="3"))
    yield worker
    worker.close()
