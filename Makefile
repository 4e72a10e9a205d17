# tf_rmi: every target creates or reuses the local virtualenv .venv.
PYTHON_BOOT ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

DATASET ?= shapes
DATA_ROOT ?= data/raw
OUT ?= data/tfrecords
SPLITS ?=
MODEL ?= RMI
WEIGHTS ?= deeplab
ITERS ?=
RUN ?= runs/$(DATASET)_$(MODEL)_$(WEIGHTS)
SPLIT ?= val
CKPT ?= $(RUN)
PRETRAINED ?=
# default | mirrored (local devices) | multi_worker (reads TF_CONFIG; README)
STRATEGY ?=
PRECISION ?=
DETERMINISTIC ?=
# make train: a partial run config (JSON) and section.field=value overrides,
# applied after the other flags (e.g. SET="train.learning_rate=1e-3 train.seed=2").
TRAIN_CONFIG ?=
SET ?=
CRF ?= 0
EXPORT_DIR ?= exports/$(notdir $(RUN))
PYTEST_ARGS ?=

# The synthetic set trains at the demo's sizes (tf_rmi/demo.py DemoConfig): a
# small trainable trunk at 128x128 with 64-wide head layers; the real datasets
# use the paper's ResNet-101 at 320x320 with 1000/1000/500.
# The small trunk is first pretrained on the shapes training images and then
# frozen (`make pretrain-trunk`, which `make train DATASET=shapes` runs first).
SHAPES_TRUNK ?= runs/shapes_trunk
SHAPES_TRUNK_FLAGS := --small_trunk_width=16 --input_size=128 --small_trunk_input_scale=0.0078125 \
  --small_trunk_residual --small_trunk_aligned --small_trunk_standardize
ifeq ($(DATASET),shapes)
TRUNK ?= small
ifeq ($(PRETRAINED),)
PRETRAINED := $(SHAPES_TRUNK)
endif
ifeq ($(ITERS),)
ITERS := 2000
endif
SHAPES_TRAIN_FLAGS := $(SHAPES_TRUNK_FLAGS) --visual_dim=64 --embed_dim=64 \
  --lstm_units=64 --mlstm_units=64 --batch_size=16 \
  --learning_rate=$(if $(filter LSTM,$(MODEL)),2.5e-3,1e-2)
SHAPES_PRE_FLAGS := --image_size=128
SHAPES_TRAIN_NEEDS := $(SHAPES_TRUNK)/trunk.json
endif
TRUNK ?=

.PHONY: help venv test demo demo-readme preprocess pretrain-trunk train eval export bench tensorboard clean-venv
.DEFAULT_GOAL := venv

# The datasets tf_rmi knows (tf_rmi/config.py); the targets that read DATASET
# stop at once on any other name.
KNOWN_DATASETS := unc unc+ Gref Gref_umd referit shapes
ifneq ($(filter preprocess train eval,$(MAKECMDGOALS)),)
ifneq ($(words $(DATASET)),1)
$(error Unknown dataset '$(DATASET)': use one of $(KNOWN_DATASETS))
endif
ifeq ($(filter $(DATASET),$(KNOWN_DATASETS)),)
$(error Unknown dataset '$(DATASET)': use one of $(KNOWN_DATASETS))
endif
endif

help:
	@echo "tf_rmi make targets (each creates or reuses the virtualenv $(VENV)):"
	@echo "  make help        this list"
	@echo "  make venv        create $(VENV) and install tf_rmi with its test extras"
	@echo "  make test        run the test suite (PYTEST_ARGS=... passes options to pytest)"
	@echo "  make demo        the whole pipeline on the synthetic 'shapes' set (CPU, minutes) [STEPS=N]"
	@echo "  make demo-readme copy experiments/demo/summary.md into README.md's demo block"
	@echo "  make preprocess  write TFRecords: DATASET= DATA_ROOT= OUT= [SPLITS=]"
	@echo "  make pretrain-trunk  shapes only: pretrain the small trunk (OUT= SHAPES_TRUNK=runs/shapes_trunk)"
	@echo "  make train       train a run: DATASET= MODEL=RMI|LSTM WEIGHTS=deeplab|resnet RUN= [ITERS=] [PRETRAINED=] [TRAIN_CONFIG=] [SET=]"
	@echo "                   [STRATEGY=default|mirrored|multi_worker] [PRECISION=mixed_float16|mixed_bfloat16] [DETERMINISTIC=1]"
	@echo "  make eval        evaluate a run: CKPT= SPLIT= OUT= [CRF=1]"
	@echo "  make export      export a SavedModel: CKPT= EXPORT_DIR="
	@echo "  make bench       run the benchmarks"
	@echo "  make tensorboard TensorBoard on a run's logs: RUN= [PORT=6006]"
	@echo "  make clean-venv  delete $(VENV)"
	@echo "Datasets: $(KNOWN_DATASETS). Current: DATASET=$(DATASET) RUN=$(RUN) OUT=$(OUT)"
	@echo "Command line: tf_rmi --help lists the commands (the targets above run them), tf_rmi <command> --help its flags"

venv: $(STAMP)

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

test: venv
	$(PY) -m pytest -q tests $(PYTEST_ARGS)

demo: venv
	$(PY) -m tf_rmi demo $(if $(STEPS),--steps=$(STEPS),)

# Copies experiments/demo/summary.md into README.md's demo block.
demo-readme: venv
	$(PY) -c "from tf_rmi.recipes.demo_lib import update_readme; update_readme('experiments/demo/summary.md', 'README.md')"

preprocess: venv
	$(PY) -m tf_rmi preprocess --dataset=$(DATASET) --data_root=$(DATA_ROOT) \
	  --output_dir=$(OUT) $(if $(SPLITS),--splits=$(SPLITS),) $(SHAPES_PRE_FLAGS)

pretrain-trunk: venv
	$(PY) -m tf_rmi pretrain-trunk --tfrecord_dir=$(OUT) --output_dir=$(SHAPES_TRUNK) \
	  $(SHAPES_TRUNK_FLAGS)

$(SHAPES_TRUNK)/trunk.json:
	$(MAKE) pretrain-trunk OUT=$(OUT) SHAPES_TRUNK=$(SHAPES_TRUNK)

train: venv $(SHAPES_TRAIN_NEEDS)
	$(PY) -m tf_rmi train --dataset=$(DATASET) --tfrecord_dir=$(OUT) --model=$(MODEL) \
	  --weights=$(WEIGHTS) --run_dir=$(RUN) $(if $(TRUNK),--trunk=$(TRUNK),) \
	  $(if $(ITERS),--iterations=$(ITERS),) $(if $(PRETRAINED),--pretrained=$(PRETRAINED),) \
	  $(if $(STRATEGY),--strategy=$(STRATEGY),) $(if $(PRECISION),--precision=$(PRECISION),) \
	  $(if $(filter 1 yes true,$(DETERMINISTIC)),--deterministic,) \
	  $(SHAPES_TRAIN_FLAGS) $(if $(TRAIN_CONFIG),--config=$(TRAIN_CONFIG),) \
	  $(foreach s,$(SET),--set=$(s))

eval: venv
	$(PY) -m tf_rmi evaluate --checkpoint=$(CKPT) --split=$(SPLIT) --tfrecord_dir=$(OUT) \
	  $(if $(filter 1 yes true,$(CRF)),--crf,)

export: venv
	$(PY) -m tf_rmi export --checkpoint=$(CKPT) --output_dir=$(EXPORT_DIR)

bench: venv
	$(PY) -m tf_rmi bench

PORT ?= 6006
tensorboard: venv
	$(VENV)/bin/tensorboard --logdir=$(RUN)/logs --port=$(PORT)

clean-venv:
	rm -rf $(VENV)
