"""tf_rmi: referring image segmentation with Recurrent Multimodal Interaction.

A TensorFlow 2 / Keras 3 reimplementation of Liu et al., "Recurrent Multimodal
Interaction for Referring Image Segmentation" (ICCV 2017), faithful to the
authors' TensorFlow 1.2.1 release.
"""
__version__ = "0.1.0"

# The library's stages are subpackages: data/ (dataset -> TFRecords -> tf.data),
# models/, training/, evaluation/, serving/, viz/, recipes/ and cli/
# (docs/architecture.md). Modules that moved there keep their old import path.
from tf_rmi import _moved

_moved.install()


def load_original_checkpoint(*args, **kwargs):
    """Builds a model and loads an original-release TF1 snapshot into it.

    See `tf_rmi.models.weights.load_original_checkpoint`.
    """
    from tf_rmi.models.weights import load_original_checkpoint as _load
    return _load(*args, **kwargs)
