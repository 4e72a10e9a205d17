"""Old import paths of modules that moved into the stage subpackages.

`import tf_rmi.train_lib` (and `from tf_rmi import eval_lib`, mock.patch
strings naming the old path, ...) keeps working: the old name is the SAME
module object as the new one, so patching either patches both. New code
imports the new paths; this table is the only place the old ones live.
Entry-point modules (`python -m tf_rmi.train`, ...) are real files, since
`python -m` needs one (tf_rmi/train.py etc.: aliases of `tf_rmi <command>`).
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

MOVED = {
    "tf_rmi.train_lib": "tf_rmi.training.train_lib",
    "tf_rmi.trunk_pretraining": "tf_rmi.training.trunk_pretraining",
    "tf_rmi.run_dir": "tf_rmi.training.run_dir",
    "tf_rmi.weights_import_lib": "tf_rmi.training.weights_import_lib",
    "tf_rmi.eval_lib": "tf_rmi.evaluation.eval_lib",
    "tf_rmi.metrics": "tf_rmi.evaluation.metrics",
    "tf_rmi.crf": "tf_rmi.evaluation.crf",
    "tf_rmi.inference": "tf_rmi.serving.inference",
    "tf_rmi.export_lib": "tf_rmi.serving.export_lib",
    "tf_rmi.predict": "tf_rmi.serving.predict",
    "tf_rmi.graph_ops": "tf_rmi.serving.graph_ops",
    "tf_rmi.visualize": "tf_rmi.viz.visualize",
    "tf_rmi.demo_lib": "tf_rmi.recipes.demo_lib",
    "tf_rmi.experiment_lib": "tf_rmi.recipes.experiment_lib",
    "tf_rmi.usage": "tf_rmi.cli.help",
}


class _AliasLoader(importlib.abc.Loader):
    """Hands back the module imported under its new name."""

    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        return importlib.import_module(self.target)

    def exec_module(self, module):
        # Already executed under its new name; executing again would make a
        # second copy of every class (and break isinstance across the two).
        pass


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Finds the old names in `MOVED` (and nothing else)."""

    def find_spec(self, fullname, path=None, target=None):
        new = MOVED.get(fullname)
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(new))


def install() -> None:
    """Puts the finder on `sys.meta_path` once (tf_rmi/__init__.py calls it)."""
    if not any(isinstance(f, MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
