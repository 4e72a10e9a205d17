"""Import of snapshots written by the original release's `main.py` (TF1 checkpoints).

`load_original_checkpoint(prefix, model="RMI"|"LSTM", weights="deeplab"|"resnet",
vocab_size=V)` builds a paper-size `ReferringSegmenter` and loads every variable
by its original name (see ORIGINAL.md "Checkpoint names"):

    DeepLab/... or ResNet/...                       the trunk (trunk.original_variables())
    ResNet/fc1000/{DW,biases}                       visual projection (resnet)
    text_objseg/conv0/{DW,biases}                   visual projection (deeplab)
    text_objseg/embedding
    text_objseg/RNN/WLSTM/multi_rnn_cell/cell_0/basic_lstm_cell/{kernel,bias}   (RMI)
    text_objseg/RNN/ALSTM/multi_rnn_cell/cell_0/basic_lstm_cell/{kernel,bias}   (RMI)
    text_objseg/RNN/multi_rnn_cell/cell_0/basic_lstm_cell/{kernel,bias}         (LSTM)
    text_objseg/conv1/{DW,biases}                   (LSTM baseline)
    text_objseg/conv2/{DW,biases}

TF 1.0-1.1 named the LSTM leaves `weights`/`biases`; both spellings load.
Optimizer slots (`.../Adam`, `.../Adam_1`, `beta1_power`, `beta2_power`), step
counters and DeepLab's unused classifier `fc1_voc12` are ignored and reported;
anything else left over is reported as unused. Every name, shape and value is
checked before anything is assigned: no partial load.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Dict, List

from tf_rmi.config import ModelConfig
from tf_rmi.models.pretrained import (PretrainedWeightsError, checkpoint_entries,
                                      validate_and_assign)

_IGNORED = re.compile(r"(/Adam(_1)?$|^beta[12]_power$|(^|/)global_step$|(^|/)Variable$"
                      r"|/fc1_voc12/)")
_LSTM_LEAVES = (("kernel", "bias"), ("weights", "biases"))


@dataclasses.dataclass
class OriginalImportReport:
    """What `load_original_checkpoint` loaded, ignored (optimizer slots, step
    counters, the DeepLab classifier) and found unused."""

    prefix: str
    loaded: List[str]
    ignored: List[str]
    unused: List[str]
    lstm_leaf_names: str

    def summary(self) -> str:
        text = (f"Loaded {len(self.loaded)} variables from {self.prefix} (LSTM leaves "
                f"'{self.lstm_leaf_names}'); ignored {len(self.ignored)} optimizer/step/"
                f"classifier entries")
        if self.unused:
            text += f"; {len(self.unused)} unused: " + ", ".join(self.unused[:10])
        return text


def original_variable_map(model, lstm_leaves=("kernel", "bias")) -> Dict[str, object]:
    """{original TF1 name: model variable} for a ReferringSegmenter."""
    c = model.config
    scope = "DeepLab" if c.weights == "deeplab" else "ResNet"
    names = {f"{scope}/{name}": var for name, var in model.trunk.original_variables().items()}
    proj = "ResNet/fc1000" if c.weights == "resnet" else "text_objseg/conv0"
    names[f"{proj}/DW"] = model.visual_proj.kernel
    names[f"{proj}/biases"] = model.visual_proj.bias
    names["text_objseg/embedding"] = model.embedding
    kernel, bias = lstm_leaves
    cell = "multi_rnn_cell/cell_0/basic_lstm_cell"
    if c.model == "RMI":
        for scope_name, layer in (("WLSTM", model.lang_lstm), ("ALSTM", model.mlstm)):
            names[f"text_objseg/RNN/{scope_name}/{cell}/{kernel}"] = layer.kernel
            names[f"text_objseg/RNN/{scope_name}/{cell}/{bias}"] = layer.bias
    else:
        names[f"text_objseg/RNN/{cell}/{kernel}"] = model.lang_lstm.kernel
        names[f"text_objseg/RNN/{cell}/{bias}"] = model.lang_lstm.bias
        names["text_objseg/conv1/DW"] = model.conv1.kernel
        names["text_objseg/conv1/biases"] = model.conv1.bias
    names["text_objseg/conv2/DW"] = model.conv2.kernel
    names["text_objseg/conv2/biases"] = model.conv2.bias
    return names


def load_into(model, prefix: str) -> OriginalImportReport:
    """Loads an original snapshot into an existing (built) ReferringSegmenter."""
    entries = checkpoint_entries(prefix)
    leaves = _LSTM_LEAVES[0]
    for candidate in _LSTM_LEAVES:
        if any(name.endswith("basic_lstm_cell/" + candidate[0]) for name in entries):
            leaves = candidate
            break
    targets = original_variable_map(model, leaves)
    _check_model_kind(entries, model.config)
    loaded = validate_and_assign(targets, entries, prefix, "Original snapshot")
    rest = sorted(set(entries) - set(targets))
    ignored = [n for n in rest if _IGNORED.search(n)]
    unused = [n for n in rest if not _IGNORED.search(n)]
    return OriginalImportReport(prefix, loaded, ignored, unused, "/".join(leaves))


def _check_model_kind(entries, cfg: ModelConfig) -> None:
    """A clear error when the snapshot is of the other model kind or trunk."""
    has_alstm = any("/RNN/ALSTM/" in n for n in entries)
    has_conv1 = any(n.startswith("text_objseg/conv1/") for n in entries)
    if cfg.model == "RMI" and not has_alstm and has_conv1:
        raise PretrainedWeightsError(
            "The snapshot holds an LSTM-baseline head (text_objseg/conv1, no RNN/ALSTM): "
            "load it with model='LSTM'.")
    if cfg.model == "LSTM" and has_alstm:
        raise PretrainedWeightsError(
            "The snapshot holds an RMI head (text_objseg/RNN/ALSTM): load it with model='RMI'.")
    scope = "DeepLab/" if cfg.weights == "deeplab" else "ResNet/group_"
    other = "ResNet/group_" if cfg.weights == "deeplab" else "DeepLab/"
    if not any(n.startswith(scope) for n in entries) and any(n.startswith(other) for n in entries):
        right = "resnet" if cfg.weights == "deeplab" else "deeplab"
        raise PretrainedWeightsError(
            f"The snapshot's trunk is under {other.rstrip('/_')}/, not {scope.rstrip('/_')}/: "
            f"load it with weights='{right}'.")


def load_original_checkpoint(prefix: str, model: str = "RMI", weights: str = "deeplab",
                             vocab_size: int = 12112, return_report: bool = False,
                             **config_overrides):
    """Builds the model of an original-release snapshot and loads it.

    Args:
      prefix: TF1 checkpoint prefix (the name before `.index` / `.data-*`).
      model: "RMI" or "LSTM"; weights: "deeplab" or "resnet".
      vocab_size: rows of `text_objseg/embedding` (12112 for unc/unc+/Gref, 8803
        for ReferIt).
      config_overrides: other ModelConfig fields (e.g. `input_size` for other
        image sizes); defaults are the paper's.
    Returns the ReferringSegmenter (and the report with `return_report=True`).
    Its call on `(images [N,320,320,3], words [N,20])` returns `logits`
    [N,40,40,1], `upsampled_logits` and `probabilities` [N,320,320,1], and for
    RMI `response_map` [N,320,320].
    """
    from tf_rmi.models.segmenter import build_model

    cfg = ModelConfig(model=model, weights=weights, trunk="resnet101",
                      vocab_size=int(vocab_size), **config_overrides)
    segmenter = build_model(cfg)
    report = load_into(segmenter, prefix)
    return (segmenter, report) if return_report else segmenter
