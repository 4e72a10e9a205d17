"""The paper's Table 1 as runnable experiments.

An experiment config (`experiments/configs/<name>.json`) names one model
variant (R/D x LSTM/RMI) on one dataset; running it trains on the training
split and evaluates every evaluation split with and without DenseCRF in one
pass, so one config fills both the plain and the +DCRF row of Table 1 for that
dataset's columns. `results_table` puts the paper's numbers beside ours, ours
filled only for rows actually run.
"""
from __future__ import annotations

import dataclasses
import glob
import json
import os
from typing import Dict, List, Optional

from tf_rmi.config import (DEFAULT_SNAPSHOT_EVERY, DataConfig, EvalConfig,
                           ModelConfig, RunConfig, TrainConfig)

# Table 1 columns, in the paper's order: (dataset, split, column title).
TABLE1_COLUMNS = (
    ("Gref", "val", "G-Ref val"),
    ("unc", "val", "UNC val"),
    ("unc", "testA", "UNC testA"),
    ("unc", "testB", "UNC testB"),
    ("unc+", "val", "UNC+ val"),
    ("unc+", "testA", "UNC+ testA"),
    ("unc+", "testB", "UNC+ testB"),
    ("referit", "test", "ReferIt test"),
)
TABLE1_ROWS = ("R+LSTM", "R+LSTM+DCRF", "R+RMI", "R+RMI+DCRF",
               "D+LSTM", "D+LSTM+DCRF", "D+RMI", "D+RMI+DCRF")

# Overall IoU (%) reported in the paper. Only values checked against a
# published source are filled; the others are left for a maintainer with the
# paper at hand (None prints as "n/a", never as a made-up number).
PAPER_TABLE1: Dict[str, Dict[str, Optional[float]]] = {
    row: {col[2]: None for col in TABLE1_COLUMNS} for row in TABLE1_ROWS
}
PAPER_TABLE1["D+RMI+DCRF"].update({
    "G-Ref val": 34.52, "UNC val": 45.18, "UNC testA": 45.69, "UNC testB": 45.57,
    "UNC+ val": 29.86, "UNC+ testA": 30.48, "UNC+ testB": 29.50,
})


@dataclasses.dataclass
class Experiment:
    """One experiment config file."""

    name: str
    table1_row: str  # "R+LSTM", "D+RMI", ...
    dataset: str
    train_split: str
    eval_splits: List[str]
    crf: bool = True
    model: dict = dataclasses.field(default_factory=dict)
    train: dict = dataclasses.field(default_factory=dict)
    pretrained: Optional[str] = None

    @classmethod
    def load(cls, path: str) -> "Experiment":
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"No experiment config {path}; the configs are in experiments/configs/.")
        with open(path) as f:
            values = json.load(f)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"{path}: unknown experiment fields {unknown}")
        return cls(**values)

    def run_config(self, tfrecord_dir: str, iterations: Optional[int] = None) -> RunConfig:
        """The RunConfig this experiment trains with."""
        train = dict(self.train)
        if iterations:
            train["iterations"] = iterations
            train["snapshot_every"] = min(train.get("snapshot_every",
                                                    DEFAULT_SNAPSHOT_EVERY[self.dataset]),
                                          iterations)
        train["pretrained"] = self.pretrained if self.pretrained else None
        if train["pretrained"] and not os.path.exists(train["pretrained"]):
            raise FileNotFoundError(
                f"Experiment {self.name} starts from {train['pretrained']}, which is "
                "missing: see checkpoints/README.md for the weight files.")
        # vocab_size 0: taken from the dataset's vocabulary (12112 or 8803) at training.
        model = dict({"vocab_size": 0}, **self.model)
        return RunConfig(data=DataConfig(dataset=self.dataset, tfrecord_dir=tfrecord_dir),
                         model=ModelConfig(**model), train=TrainConfig(**train))


def run_experiment(exp: Experiment, tfrecord_dir: str, runs_dir: str = "runs",
                   results_dir: str = "experiments/results",
                   iterations: Optional[int] = None, progress: bool = True) -> dict:
    """Trains (or resumes) then evaluates every split with and without CRF."""
    from tf_rmi import eval_lib, train_lib
    from tf_rmi.run_dir import restore_model

    run_dir = os.path.join(runs_dir, exp.name)
    run_config = exp.run_config(tfrecord_dir, iterations)
    train_lib.train(run_config, run_dir, progress=progress, split=exp.train_split)
    model, run_config, _ = restore_model(run_dir)
    results = {}
    for split in exp.eval_splits:
        eval_cfg = EvalConfig(split=split, crf=exp.crf)
        out_dir = os.path.join(results_dir, exp.name, split)
        results[split] = eval_lib.evaluate(model, run_config, eval_cfg, tfrecord_dir,
                                           out_dir=out_dir, progress=progress)
    return results


def _overall_iou(result: dict, crf: bool) -> Optional[float]:
    """Reads overall IoU from a results.json written by evaluation."""
    section = result.get("crf" if crf else "raw")
    if not isinstance(section, dict):
        return None
    value = section.get("overall_iou")
    return None if value is None else 100.0 * float(value)


def collect_results(results_dir: str, configs_dir: str) -> Dict[str, Dict[str, float]]:
    """Our Table 1 cells from the results.json files of experiments run."""
    ours: Dict[str, Dict[str, float]] = {}
    titles = {(d, s): t for d, s, t in TABLE1_COLUMNS}
    for path in sorted(glob.glob(os.path.join(configs_dir, "*.json"))):
        exp = Experiment.load(path)
        for split in exp.eval_splits:
            result_path = os.path.join(results_dir, exp.name, split, "results.json")
            if not os.path.exists(result_path):
                continue
            with open(result_path) as f:
                result = json.load(f)
            title = titles.get((exp.dataset, split))
            if title is None:
                continue
            for crf, row in ((False, exp.table1_row), (True, exp.table1_row + "+DCRF")):
                value = _overall_iou(result, crf)
                if value is not None:
                    ours.setdefault(row, {})[title] = value
    return ours


def results_table(ours: Dict[str, Dict[str, float]]) -> str:
    """Markdown: for each row, the paper's overall IoU and ours ("paper / ours")."""
    header = "| row | " + " | ".join(t for _, _, t in TABLE1_COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(TABLE1_COLUMNS) + 1)]
    for row in TABLE1_ROWS:
        cells = []
        for _, _, title in TABLE1_COLUMNS:
            paper = PAPER_TABLE1[row][title]
            mine = ours.get(row, {}).get(title)
            cells.append(f"{'n/a' if paper is None else f'{paper:.2f}'} / "
                         f"{'—' if mine is None else f'{mine:.2f}'}")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
