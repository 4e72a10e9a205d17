"""Library side of `tf_rmi_import`: an original snapshot to a tf_rmi run directory."""
from __future__ import annotations

from typing import Optional

from tf_rmi.config import DataConfig, ModelConfig, RunConfig


def import_original(original: str, run_dir: str, model: str = "RMI", weights: str = "deeplab",
                    vocab_size: Optional[int] = None, vocab_file: Optional[str] = None,
                    dataset: str = "unc", **config_overrides):
    """Loads `original` and writes `<run_dir>/config.json` and `checkpoints/ckpt-0`.

    Returns the import report (loaded / ignored / unused variable names).
    """
    import tensorflow as tf

    from tf_rmi.data.text import Vocabulary
    from tf_rmi.models import weights as weights_lib
    from tf_rmi.training.run_dir import CHECKPOINT_PREFIX, checkpoint_dir

    if vocab_size is None:
        if vocab_file is None:
            raise ValueError("Give vocab_size or vocab_file: the embedding has one row per "
                             "vocabulary line (12112 for vocabulary_Gref.txt, 8803 for ReferIt).")
        vocab_size = len(Vocabulary.from_file(vocab_file))
    segmenter, report = weights_lib.load_original_checkpoint(
        original, model=model, weights=weights, vocab_size=vocab_size, return_report=True,
        **config_overrides)
    cfg = RunConfig(data=DataConfig(dataset=dataset, vocab_file=vocab_file),
                    model=ModelConfig(model=model, weights=weights, trunk="resnet101",
                                      vocab_size=vocab_size, **config_overrides))
    cfg.save(run_dir)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=segmenter),
                                         checkpoint_dir(run_dir), max_to_keep=1,
                                         checkpoint_name=CHECKPOINT_PREFIX)
    manager.save(checkpoint_number=0)
    return report
