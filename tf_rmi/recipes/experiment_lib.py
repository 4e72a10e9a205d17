"""The paper's Table 1 as runnable experiments.

An experiment config (`experiments/configs/<name>.json`) names one model
variant (R/D x LSTM/RMI) on one dataset: a partial run config (the schema of
`config.load_config_file`) plus an `experiment` section; running it trains on the training
split and evaluates every evaluation split with and without DenseCRF in one
pass, so one config fills both the plain and the +DCRF row of Table 1 for that
dataset's columns. `results_table` puts the paper's numbers (every cell of
Table 1, read from `tf_rmi/data/published/table1.csv`) beside ours, ours
filled only for rows actually run; `write_table1` writes it as
`experiments/results/table1.md`.
"""
from __future__ import annotations

import dataclasses
import glob
import json
import os
from typing import Dict, List, Optional

from tf_rmi.config import (EvalConfig, ModelConfig, RunConfig, apply_partial, check_partial,
                           dataset_spec)
from tf_rmi.data import paper_tables

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



def paper_table1(path: str = paper_tables.TABLE1_CSV) -> Dict[str, Dict[str, Optional[float]]]:
    """Overall IoU (%) the paper reports, {row: {column title: value}}, read from
    the published CSV (a cell the CSV lacks is None and prints as "n/a")."""
    _, values = paper_tables.load_table1(path)
    return {row: {title: values.get(row, {}).get((dataset, split))
                  for dataset, split, title in TABLE1_COLUMNS} for row in TABLE1_ROWS}


# The `experiment` section of an experiment file: what to run and where its
# numbers go in Table 1. The rest of the file is a partial run config.
EXPERIMENT_FIELDS = ("name", "table1_row", "train_split", "eval_splits", "crf")


@dataclasses.dataclass
class Experiment:
    """One experiment config file.

    The file is a partial run config (sections `data`, `model`, `train`, the
    schema of `config.load_config_file`; `data.dataset` required) plus an
    `experiment` section (`EXPERIMENT_FIELDS`). `dataset` and `pretrained`
    are the file's data.dataset and train.pretrained; `data`, `model` and
    `train` hold the rest of those sections.
    """

    name: str
    table1_row: str  # "R+LSTM", "D+RMI", ...
    dataset: str
    train_split: str
    eval_splits: List[str]
    crf: bool = True
    model: dict = dataclasses.field(default_factory=dict)
    train: dict = dataclasses.field(default_factory=dict)
    pretrained: Optional[str] = None
    data: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def load(cls, path: str) -> "Experiment":
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"No experiment config {path}; the configs are in experiments/configs/.")
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
        if not isinstance(values, dict) or not isinstance(values.get("experiment"), dict):
            raise ValueError(f"{path}: an experiment config is a JSON object with an "
                             f"\"experiment\" section ({', '.join(EXPERIMENT_FIELDS)}) and "
                             "the run config sections data, model, train")
        meta = values.pop("experiment")
        unknown = sorted(set(meta) - set(EXPERIMENT_FIELDS))
        missing = [k for k in EXPERIMENT_FIELDS if k not in meta]
        if unknown or missing:
            raise ValueError(f"{path}: experiment fields {unknown or missing} "
                             f"{'unknown' if unknown else 'missing'}; the section holds "
                             f"{', '.join(EXPERIMENT_FIELDS)}")
        partial = check_partial(values, source=path)
        data, train = dict(partial.get("data", {})), dict(partial.get("train", {}))
        if "dataset" not in data:
            raise ValueError(f"{path}: data.dataset is required")
        dataset = data.pop("dataset")
        splits = dataset_spec(dataset).splits
        for split in [meta["train_split"], *meta["eval_splits"]]:
            if split not in splits:
                raise ValueError(f"{path}: {dataset} has no split {split!r}; its splits: "
                                 f"{', '.join(splits)}")
        return cls(**meta, dataset=dataset, model=dict(partial.get("model", {})), train=train,
                   pretrained=train.pop("pretrained", None), data=data)

    def run_config(self, tfrecord_dir: str, iterations: Optional[int] = None,
                   pretrained: Optional[str] = None) -> RunConfig:
        """The RunConfig this experiment trains with, validated.

        The file's fields over the dataclass defaults (model.vocab_size 0: taken
        from the dataset's vocabulary, 12112 or 8803, at training).
        `iterations` shrinks the budget (and the snapshot interval with it).
        `pretrained` replaces the config's weight file (e.g. the Keras
        Applications `.h5` instead of the original's TF-resnet checkpoint for
        the R rows; see checkpoints/README.md). A TF checkpoint is named by its
        prefix (the file name before `.index`)."""
        train = dict(self.train)
        if iterations:
            train["iterations"] = iterations
            train["snapshot_every"] = min(train.get("snapshot_every",
                                                    dataset_spec(self.dataset).snapshot_every),
                                          iterations)
        train["pretrained"] = pretrained or self.pretrained or None
        if train["pretrained"] and not (os.path.exists(train["pretrained"]) or
                                        os.path.exists(train["pretrained"] + ".index")):
            raise FileNotFoundError(
                f"Experiment {self.name} starts from {train['pretrained']} (a file, or a TF "
                "checkpoint prefix with its .index), which is missing: see "
                "checkpoints/README.md for the weight files, or pass --pretrained.")
        partial = check_partial({
            "data": dict(self.data, dataset=self.dataset, tfrecord_dir=tfrecord_dir),
            "model": self.model, "train": train}, source=f"experiment {self.name}")
        return apply_partial(RunConfig(model=ModelConfig(vocab_size=0)), partial).validate()


def run_experiment(exp: Experiment, tfrecord_dir: str, runs_dir: str = "runs",
                   results_dir: str = "experiments/results",
                   iterations: Optional[int] = None, progress: bool = True,
                   pretrained: Optional[str] = None) -> dict:
    """Trains (or resumes) then evaluates every split with and without CRF."""
    from tf_rmi.evaluation import eval_lib
    from tf_rmi.training import train_lib
    from tf_rmi.training.run_dir import restore_model

    run_dir = os.path.join(runs_dir, exp.name)
    run_config = exp.run_config(tfrecord_dir, iterations, pretrained=pretrained)
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


def results_table(ours: Dict[str, Dict[str, float]],
                  paper: Optional[Dict[str, Dict[str, Optional[float]]]] = None) -> str:
    """Markdown: for each of the 8 rows and 8 columns of Table 1, the paper's
    overall IoU and ours ("paper / ours"; ours "—" where not run)."""
    paper = paper_table1() if paper is None else paper
    header = "| row | " + " | ".join(t for _, _, t in TABLE1_COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(TABLE1_COLUMNS) + 1)]
    for row in TABLE1_ROWS:
        cells = []
        for _, _, title in TABLE1_COLUMNS:
            value = paper[row][title]
            mine = ours.get(row, {}).get(title)
            cells.append(f"{'n/a' if value is None else f'{value:.2f}'} / "
                         f"{'—' if mine is None else f'{mine:.2f}'}")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


TABLE1_PREAMBLE = """# Table 1: overall IoU (%), paper / ours

Each cell: the paper's number (Liu et al., ICCV 2017, Table 1, from
`tf_rmi/data/published/table1.csv`) / ours from `experiments/results/<config>/<split>/results.json`
("—": not run here). R = ImageNet ResNet-101, D = DeepLab-101 (VOC12), DCRF = DenseCRF.
Generated by `tf_rmi experiment --table_only` (also after every run).
"""


def write_table1(results_dir: str, configs_dir: str, path: Optional[str] = None) -> str:
    """Writes `<results_dir>/table1.md` (or `path`) atomically; returns its text."""
    text = TABLE1_PREAMBLE + "\n" + results_table(collect_results(results_dir, configs_dir))
    path = path or os.path.join(results_dir, "table1.md")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return text
