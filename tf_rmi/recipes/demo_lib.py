"""The demo's library (`make demo`, entry point tf_rmi/demo.py): the whole pipeline on the embedded synthetic set, on a laptop CPU.

Generates the 'shapes' referring dataset (train / val / test, plus a test
split drawn with another seed), writes it to TFRecords, trains the small-trunk
RMI model and the LSTM baseline with the same budget while scoring the
validation split every `eval_every` steps, restores each model's best
validation step, evaluates it on the test split (raw and DenseCRF, with the
paper's length breakdown) and on the fresh-seed test split, and writes tables
and figures to experiments/demo/:

    summary.md / summary.json   both models, the targets, RMI - LSTM with a
                                bootstrap confidence interval, the relative gain
                                by length group beside the paper's Tables 2-5
    learning_curves.png         validation overall IoU against step
    RMI/, LSTM/                 results.json / results.md, fig7_results.png
    figures/                    Fig. 5/6 style per-word figures

    python -m tf_rmi.demo [--steps=N] [--output_dir=experiments/demo]
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Dict, List, Optional


@dataclasses.dataclass
class DemoConfig:
    """Sizes chosen so both models train and evaluate in minutes on 2 CPU cores.

    The architecture is the paper's at a smaller scale: a small trunk, pretrained
    on the synthetic training images and then frozen (no pretrained weights
    exist offline; the original's DeepLab trunk is pretrained and frozen too),
    instead of ResNet-101, a 16x16 feature map (128x128 input) instead of 40x40,
    64-wide embeddings and LSTMs instead of 1000/500. The loss, weight decay,
    Adam, polynomial decay and doubled bias gradients are the original recipe;
    batch, learning rates (one per head), decay length, the trunk's layers,
    input scaling, output standardisation and pretraining, and the data are the
    demo's own (README, "The demo"). Chosen on the validation split, never on test.
    """

    input_size: int = 128
    small_trunk_width: int = 16
    small_trunk_input_scale: float = 1.0 / 128
    small_trunk_norm: str = "none"
    small_trunk_residual: bool = True
    small_trunk_aligned: bool = True
    # Standardised trunk output and a trunk stepping at 1/20 of the head's
    # rate: together they end the "objectness" plateau (README, "Why it
    # learned slowly").
    small_trunk_standardize: bool = True
    small_trunk_context: bool = False
    # Used only when the trunk is trained from scratch (pretrain_trunk=False).
    trunk_learning_rate_mult: float = 0.05
    # Stage 1b (the original's trunk is pretrained and frozen): the small trunk
    # first learns per-cell colour / shape / size labels of the training images
    # (tf_rmi.training.trunk_pretraining), then both models train with it frozen.
    pretrain_trunk: bool = True
    pretrain_steps: int = 1000
    pretrain_batch_size: int = 16
    pretrain_learning_rate: float = 1e-3
    dim: int = 64
    # T, the words read per expression (the paper's 20). The head is unrolled
    # over T steps, so a smaller T (longer expressions cut to their first T
    # words, as the original release cuts them) traces and trains faster: for
    # smoke runs such as the tests'.
    num_words: int = 20
    steps: int = 3000
    batch_size: int = 16
    # Each batch from one bucket of sentence lengths (train.bucket_by_length):
    # the RMI step then runs about as many word steps as its sentences have,
    # not as the longest of 16 mixed ones (2.3x faster, benchmarks/README.md).
    bucket_by_length: bool = True
    # The frozen pretrained trunk's outputs computed once per training image
    # (train.cache_trunk_features): the step runs the head only.
    cache_trunk_features: bool = True
    learning_rate: float = 1e-2  # RMI
    # Chosen on val for each head separately (issue 10): the LSTM baseline is
    # best at a lower rate with the frozen pretrained trunk.
    lstm_learning_rate: float = 2.5e-3
    seed: int = 0
    fresh_seed: int = 1  # a second draw of the same distribution, scored on its test split
    # Images are drawn square at the input size: no resize, no padding, so
    # objects keep their pixels on the 16x16 logit map.
    square_images: bool = True
    object_scale: float = 1.3  # both size classes 30 % larger than the generator's default
    num_train_images: int = 1000
    num_val_images: int = 40
    num_test_images: int = 100
    eval_every: int = 1000
    eval_max_expressions: int = 0  # 0 = the whole validation split
    visualize: int = 6
    bootstrap_resamples: int = 2000

    def shapes_args(self, num_train_images: Optional[int] = None,
                    num_test_images: Optional[int] = None) -> dict:
        args = dict(num_train_images=self.num_train_images, num_val_images=self.num_val_images,
                    num_test_images=self.num_test_images)
        if num_train_images is not None:
            args.update(num_train_images=num_train_images,
                        num_val_images=max(2, num_train_images // 5))
        if num_test_images is not None:
            args["num_test_images"] = num_test_images
        if self.square_images:
            args.update(min_size=self.input_size, max_size=self.input_size)
        if self.object_scale != 1.0:
            args["object_scale"] = self.object_scale
        return args


def _run_config(cfg: DemoConfig, model: str, tfrecord_dir: str,
                pretrained_trunk: Optional[str] = None):
    from tf_rmi.training import train_lib

    return train_lib.config_from_flags(
        "shapes", tfrecord_dir, model=model, weights="deeplab", trunk="small",
        small_trunk_width=cfg.small_trunk_width, input_size=cfg.input_size,
        num_words=cfg.num_words,
        iterations=cfg.steps, snapshot_every=cfg.steps, batch_size=cfg.batch_size,
        learning_rate=cfg.lstm_learning_rate if model == "LSTM" else cfg.learning_rate,
        seed=cfg.seed, visual_dim=cfg.dim,
        embed_dim=cfg.dim, lstm_units=cfg.dim, mlstm_units=cfg.dim, lr_decay_steps=0,
        eval_every=cfg.eval_every, eval_max_expressions=cfg.eval_max_expressions,
        bucket_by_length=cfg.bucket_by_length,
        cache_trunk_features=cfg.cache_trunk_features and bool(pretrained_trunk),
        small_trunk_input_scale=cfg.small_trunk_input_scale,
        small_trunk_norm=cfg.small_trunk_norm, small_trunk_residual=cfg.small_trunk_residual,
        small_trunk_aligned=cfg.small_trunk_aligned,
        small_trunk_standardize=cfg.small_trunk_standardize,
        small_trunk_context=cfg.small_trunk_context,
        pretrained=pretrained_trunk,
        trunk_learning_rate_mult=1.0 if pretrained_trunk else cfg.trunk_learning_rate_mult)


def pretrain_trunk(cfg: DemoConfig, tfrecord_dir: str, output_dir: str,
                   progress: bool = True) -> dict:
    """Stage 1b: `trunk_pretraining.pretrain_small_trunk` on the demo's training
    images with the demo's trunk settings; returns its trunk.json contents."""
    from tf_rmi.training import trunk_pretraining

    model_cfg = _run_config(cfg, "RMI", tfrecord_dir).model
    pre = trunk_pretraining.TrunkPretrainConfig(
        steps=cfg.pretrain_steps, batch_size=cfg.pretrain_batch_size,
        learning_rate=cfg.pretrain_learning_rate, seed=cfg.seed)
    return trunk_pretraining.pretrain_small_trunk(
        model_cfg, trunk_pretraining.shapes_source_for(tfrecord_dir), output_dir, pre,
        progress=progress)


def run_demo(cfg: DemoConfig, output_dir: str, work_dir: str, crf: bool = True,
             num_train_images: int = None, num_test_images: int = None,
             progress: bool = True) -> dict:
    """Runs every phase; returns the summary (also written as summary.json)."""
    from tf_rmi.evaluation import eval_lib
    from tf_rmi.training import train_lib
    from tf_rmi.config import EvalConfig
    from tf_rmi.data import preprocess_lib
    from tf_rmi.training.run_dir import restore_model

    timings = {}
    tfrecord_dir = os.path.join(work_dir, "tfrecords")
    fresh_dir = os.path.join(work_dir, f"tfrecords_seed{cfg.fresh_seed}")
    shapes_args = cfg.shapes_args(num_train_images, num_test_images)
    start = time.monotonic()
    print("== 1/4 generating the synthetic set and writing TFRecords", flush=True)
    preprocess_lib.preprocess("shapes", data_root="", output_dir=tfrecord_dir,
                              splits=("train", "val", "test"), image_size=cfg.input_size,
                              num_words=cfg.num_words, seed=cfg.seed, progress=progress,
                              shapes_args=shapes_args)
    preprocess_lib.preprocess("shapes", data_root="", output_dir=fresh_dir, splits=("test",),
                              image_size=cfg.input_size, num_words=cfg.num_words,
                              seed=cfg.fresh_seed, progress=progress, shapes_args=shapes_args)
    timings["preprocess_s"] = time.monotonic() - start

    summary = {"config": dataclasses.asdict(cfg), "models": {}, "curves": {}}
    trunk_dir = None
    if cfg.pretrain_trunk:
        print(f"== 1b/4 pretraining the small trunk ({cfg.pretrain_steps} steps of per-cell "
              "colour / shape / size labels of the training images)", flush=True)
        t0 = time.monotonic()
        trunk_dir = os.path.join(work_dir, "runs", "trunk")
        info = pretrain_trunk(cfg, tfrecord_dir, trunk_dir, progress=progress)
        summary["trunk_pretraining"] = {k: info[k] for k in (
            "val_accuracy", "val_accuracy_all", "initial_loss", "final_loss", "train_images",
            "val_images")}
        timings["pretrain_trunk_s"] = time.monotonic() - t0
    per_expression = {}
    for k, model_kind in enumerate(("RMI", "LSTM")):
        print(f"== {2 + k}/4 training {model_kind} ({cfg.steps} steps, validation every "
              f"{cfg.eval_every})", flush=True)
        run_dir = os.path.join(work_dir, "runs", model_kind)
        t0 = time.monotonic()
        trained = train_lib.train(_run_config(cfg, model_kind, tfrecord_dir, trunk_dir), run_dir,
                                  progress=progress)
        timings[f"train_{model_kind}_s"] = time.monotonic() - t0
        t0 = time.monotonic()
        best = trained["best"]
        # Checkpoint selection on val: the best validation step's weights.
        chosen = os.path.join(run_dir, best["checkpoint"]) if best else run_dir
        model, run_config, prefix = restore_model(chosen)
        results = eval_lib.evaluate(model, run_config,
                                    EvalConfig(split="test", crf=crf, visualize=cfg.visualize),
                                    out_dir=os.path.join(output_dir, model_kind),
                                    progress=progress, checkpoint=os.path.relpath(prefix))
        fresh = eval_lib.evaluate(model, run_config, EvalConfig(split="test"),
                                  tfrecord_dir=fresh_dir, progress=progress,
                                  checkpoint=os.path.relpath(prefix))
        timings[f"eval_{model_kind}_s"] = time.monotonic() - t0
        print(eval_lib.console_summary(results), flush=True)
        per_expression[model_kind] = results["per_expression"]
        summary["curves"][model_kind] = train_lib.read_validation_history(run_dir)
        summary["models"][model_kind] = dict(
            {k2: results[k2] for k2 in ("raw", "crf", "length_group_bounds", "expressions")},
            best_step=best["step"] if best else trained["step"],
            best_val_overall_iou=best["overall_iou"] if best else None,
            fresh_seed_test={"seed": cfg.fresh_seed, "expressions": fresh["expressions"],
                             "overall_iou": fresh["raw"]["overall_iou"],
                             "mean_iou": fresh["raw"]["mean_iou"],
                             "precision": fresh["raw"]["precision"]})
        if model_kind == "RMI":
            _expression_figures(model, run_config, tfrecord_dir, output_dir)
    kinds = expression_kinds(cfg, num_train_images, num_test_images)
    for model_kind, per in per_expression.items():
        summary["models"][model_kind]["by_kind"] = kind_breakdown(per, kinds)
    summary["comparison"] = compare_models(per_expression["RMI"], per_expression["LSTM"],
                                           summary["models"]["RMI"]["length_group_bounds"],
                                           cfg.bootstrap_resamples)
    summary["paper_relative_gain"] = paper_relative_gains()
    timings["total_s"] = time.monotonic() - start
    summary["timings"] = timings
    summary["targets"] = _targets(summary)
    plot_learning_curves(summary["curves"], os.path.join(output_dir, "learning_curves.png"))
    _write(summary, output_dir)
    return summary


def compare_models(rmi: dict, lstm: dict, bounds, num_resamples: int = 2000) -> dict:
    """RMI - LSTM overall IoU, overall and per length group, with paired bootstrap
    95 % intervals over expressions, and the relative gain (RMI / LSTM - 1) per
    group as in the paper's Tables 2-5. `rmi`/`lstm` are `evaluate`'s
    `per_expression` of the same split."""
    import numpy as np

    from tf_rmi.evaluation import metrics

    if rmi["sent_id"] != lstm["sent_id"]:
        raise ValueError("RMI and LSTM were scored on different expressions: cannot pair them")
    lengths = np.asarray(rmi["length"])
    arrays = [np.asarray(x) for x in (rmi["raw"]["intersection"], rmi["raw"]["union"],
                                      lstm["raw"]["intersection"], lstm["raw"]["union"])]
    overall = metrics.bootstrap_overall_iou_difference(*arrays, num_resamples=num_resamples)
    groups = []
    for g, (lo, hi) in enumerate(bounds):
        sel = (lengths >= lo) & (lengths <= hi)
        if not sel.any():
            continue
        i_a, u_a, i_b, u_b = (x[sel] for x in arrays)
        diff = metrics.bootstrap_overall_iou_difference(i_a, u_a, i_b, u_b,
                                                        num_resamples=num_resamples, seed=g + 1)
        rmi_iou, lstm_iou = metrics.overall_iou(i_a, u_a), metrics.overall_iou(i_b, u_b)
        groups.append(dict(diff, lengths=[int(lo), int(hi)], rmi=rmi_iou, lstm=lstm_iou,
                           relative_gain_percent=(100.0 * (rmi_iou / lstm_iou - 1.0)
                                                  if lstm_iou > 0 else None)))
    return {"overall": overall, "groups": groups}


def expression_kinds(cfg: DemoConfig, num_train_images: Optional[int] = None,
                     num_test_images: Optional[int] = None) -> Dict[str, str]:
    """{sent_id: what the expression asks for} of the demo's test split: the
    generator's description kind (attributes, extreme, ordinal, relation,
    nearest; tf_rmi.data.shapes.KINDS)."""
    from tf_rmi.data.shapes import ShapesSource

    source = ShapesSource(seed=cfg.seed, **cfg.shapes_args(num_train_images, num_test_images))
    return {expr.sent_id: meaning.description.kind
            for expr, meaning in source.referring_expressions("test")}


def kind_breakdown(per_expression: dict, kinds: Dict[str, str]) -> Dict[str, dict]:
    """Overall IoU and P@0.5 of `evaluate`'s `per_expression` (raw) by the
    expression's kind (`expression_kinds`); {kind: {count, overall_iou, precision_50}}."""
    import numpy as np

    from tf_rmi.evaluation import metrics

    inter = np.asarray(per_expression["raw"]["intersection"])
    union = np.asarray(per_expression["raw"]["union"])
    labels = np.asarray([kinds.get(sid, "unknown") for sid in per_expression["sent_id"]])
    out = {}
    for kind in sorted(set(labels.tolist())):
        sel = labels == kind
        ious = [metrics.iou(i, u) for i, u in zip(inter[sel], union[sel])]
        out[kind] = {"count": int(sel.sum()),
                     "overall_iou": metrics.overall_iou(inter[sel], union[sel]),
                     "precision_50": metrics.precision_at(ious, (0.5,))["0.5"]}
    return out


def paper_relative_gains() -> Dict[str, List[dict]]:
    """The paper's Tables 2-5 by dataset (`paper_tables.load_length_breakdown`)."""
    from tf_rmi.data import paper_tables

    return paper_tables.load_length_breakdown()


def plot_learning_curves(curves: Dict[str, List[dict]], path: str) -> Optional[str]:
    """Validation overall IoU (%) against step, one line per model; written atomically."""
    if not any(curves.values()):
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for kind, history in curves.items():
        if history:
            ax.plot([h["step"] for h in history], [100 * h["overall_iou"] for h in history],
                    marker="o", label=kind)
    ax.set_xlabel("training step")
    ax.set_ylabel("validation overall IoU (%)")
    ax.set_title("shapes: validation during training")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}.png"
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _expression_figures(model, run_config, tfrecord_dir, output_dir):
    """Fig. 6 and Fig. 1/5 style figures for the first test expressions."""
    import dataclasses as dc

    from tf_rmi.viz import visualize
    from tf_rmi.data import pipeline
    from tf_rmi.data.text import Vocabulary

    data_cfg = dc.replace(run_config.data, tfrecord_dir=tfrecord_dir)
    vocab = Vocabulary.from_file(pipeline.resolve_vocab_file(data_cfg))
    seen = 0
    records = pipeline.eval_dataset(data_cfg, "test", num_words=run_config.model.num_words)
    for record in records.as_numpy_iterator():
        sentence = record["sentence"].decode("utf-8")
        if len(sentence.split()) < 4:
            continue
        visualize.expression_figures(model, vocab, record["image"], sentence,
                                     os.path.join(output_dir, "figures"), stem=f"test{seen}")
        seen += 1
        if seen == 2:
            break


# The targets for the demo (tf_rmi issue 10).
TARGET_OVERALL_IOU = 0.75
TARGET_PRECISION_50 = 0.80
TARGET_FRESH_SEED_GAP = 0.05  # "a few points at most"


def _targets(summary: dict) -> dict:
    rmi, lstm = summary["models"]["RMI"], summary["models"]["LSTM"]
    longest = summary["comparison"]["groups"][-1] if summary["comparison"]["groups"] else None
    gap = rmi["fresh_seed_test"]["overall_iou"] - rmi["raw"]["overall_iou"]
    return {"rmi_overall_iou": rmi["raw"]["overall_iou"],
            "rmi_overall_iou_target": TARGET_OVERALL_IOU,
            "rmi_overall_iou_met": rmi["raw"]["overall_iou"] >= TARGET_OVERALL_IOU,
            "rmi_precision_50": rmi["raw"]["precision"]["0.5"],
            "rmi_precision_50_target": TARGET_PRECISION_50,
            "rmi_precision_50_met": rmi["raw"]["precision"]["0.5"] >= TARGET_PRECISION_50,
            "longest_group_rmi": longest["rmi"] if longest else None,
            "longest_group_lstm": longest["lstm"] if longest else None,
            "rmi_beats_lstm_on_longest": bool(longest and longest["low"] > 0),
            "fresh_seed_gap": gap,
            "fresh_seed_gap_met": abs(gap) <= TARGET_FRESH_SEED_GAP,
            "lstm_fresh_seed_gap": lstm["fresh_seed_test"]["overall_iou"] - lstm["raw"]["overall_iou"]}


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.2f}"


def summary_markdown(summary: dict) -> str:
    cfg = summary["config"]
    lines = [f"Test split (seed {cfg['seed']}), each model at its best validation step:", "",
             "| model | best step | overall IoU | mean IoU | P@0.5 | P@0.7 | P@0.9 | "
             "overall IoU, DenseCRF | overall IoU, test of seed "
             f"{cfg['fresh_seed']} |",
             "|---|---|---|---|---|---|---|---|---|"]
    for kind, m in summary["models"].items():
        raw, crf = m["raw"], m["crf"]
        lines.append(f"| {kind} | {m['best_step']} | {_pct(raw['overall_iou'])} | "
                     f"{_pct(raw['mean_iou'])} | {_pct(raw['precision']['0.5'])} | "
                     f"{_pct(raw['precision']['0.7'])} | {_pct(raw['precision']['0.9'])} | "
                     f"{_pct(crf['overall_iou']) if crf else '—'} | "
                     f"{_pct(m['fresh_seed_test']['overall_iou'])} |")
    comparison = summary["comparison"]
    lines += ["", "Overall IoU by expression length (words), raw; RMI - LSTM with a paired "
              f"bootstrap 95 % interval ({comparison['overall']['num_resamples']} resamples "
              "of the expressions); relative gain = RMI / LSTM - 1, as the paper's Tables 2-5:",
              "", "| words | expressions | LSTM | RMI | RMI - LSTM [95 % CI] | relative gain |",
              "|---|---|---|---|---|---|"]
    for g in comparison["groups"]:
        gain = "—" if g["relative_gain_percent"] is None else f"{g['relative_gain_percent']:+.1f} %"
        lines.append(f"| {g['lengths'][0]}-{g['lengths'][1]} | {g['count']} | {_pct(g['lstm'])} | "
                     f"{_pct(g['rmi'])} | {100 * g['difference']:+.2f} "
                     f"[{100 * g['low']:+.2f}, {100 * g['high']:+.2f}] | {gain} |")
    o = comparison["overall"]
    lines.append(f"| all | {o['count']} | | | {100 * o['difference']:+.2f} "
                 f"[{100 * o['low']:+.2f}, {100 * o['high']:+.2f}] | |")
    by_kind = {m: summary["models"][m].get("by_kind") for m in summary["models"]}
    if all(by_kind.values()):
        names = sorted(set().union(*[set(v) for v in by_kind.values()]))
        lines += ["", "Overall IoU (P@0.5) by what the expression asks for (the generator's "
                  "description kind; synthetic set only):", "",
                  "| kind | expressions | " + " | ".join(by_kind) + " |",
                  "|---|---|" + "---|" * len(by_kind)]
        for name in names:
            cells = [by_kind[m].get(name) for m in by_kind]
            count = next(c["count"] for c in cells if c)
            lines.append(f"| {name} | {count} | " + " | ".join(
                f"{_pct(c['overall_iou'])} ({_pct(c['precision_50'])})" if c else "—"
                for c in cells) + " |")
    paper = summary.get("paper_relative_gain") or {}
    if paper:
        lines += ["", "The paper's relative gain of R+RMI over R+LSTM by length group "
                  "(Tables 2-5, tf_rmi/data/published/length_breakdown.csv):", "",
                  "| dataset | group 1 | group 2 | group 3 | group 4 |", "|---|---|---|---|---|"]
        for dataset, rows in paper.items():
            lines.append(f"| {dataset} | " + " | ".join(
                f"{r['words'][0]}-{r['words'][1]} w: {r['relative_gain_percent']:+.2f} %"
                for r in rows) + " |")
    t = summary["targets"]

    def verdict(ok):
        return "met" if ok else "NOT met"

    lines += ["", "Targets:",
              f"- RMI overall IoU {_pct(t['rmi_overall_iou'])} (target >= 75: "
              f"{verdict(t['rmi_overall_iou_met'])}); P@0.5 {_pct(t['rmi_precision_50'])} "
              f"(target >= 80: {verdict(t['rmi_precision_50_met'])}).",
              f"- Longest group: RMI {_pct(t['longest_group_rmi'])} vs LSTM "
              f"{_pct(t['longest_group_lstm'])}, interval of the difference excludes 0 on the "
              f"positive side: {verdict(t['rmi_beats_lstm_on_longest'])}.",
              f"- Fresh draw (test split of seed {cfg['fresh_seed']}) minus reported test: RMI "
              f"{100 * t['fresh_seed_gap']:+.2f}, LSTM {100 * t['lstm_fresh_seed_gap']:+.2f} points "
              f"(target |gap| <= {100 * TARGET_FRESH_SEED_GAP:.0f}: "
              f"{verdict(t['fresh_seed_gap_met'])}).",
              "", "Time (s): " + ", ".join(f"{k[:-2]} {v:.0f}"
                                          for k, v in summary["timings"].items())]
    return "\n".join(lines) + "\n"


def _write(summary: dict, output_dir: str) -> None:
    os.makedirs(output_dir, exist_ok=True)
    from tf_rmi import atomic_io

    atomic_io.write_json(os.path.join(output_dir, "summary.json"), summary)
    atomic_io.write_text(os.path.join(output_dir, "summary.md"), summary_markdown(summary))


README_BEGIN = "<!-- demo-summary:begin (generated from experiments/demo/summary.md) -->"
README_END = "<!-- demo-summary:end -->"


def update_readme(summary_md: str, readme: str) -> None:
    """Replaces the README's text between README_BEGIN and README_END with
    `summary_md` (the demo's summary.md), atomically: `make demo-readme`."""
    with open(summary_md, encoding="utf-8") as f:
        table = f.read().strip()
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        raise ValueError(f"{readme} has no {README_BEGIN} ... {README_END} block to replace")
    from tf_rmi import atomic_io

    atomic_io.write_text(readme, text[:begin + len(README_BEGIN)] + "\n" + table + "\n"
                         + text[end:])
