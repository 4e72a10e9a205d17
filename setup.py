"""tf_rmi: Recurrent Multimodal Interaction for referring image segmentation."""
from setuptools import find_packages, setup

setup(
    name="tf_rmi",
    version="0.1.0",
    description=("Referring image segmentation with Recurrent Multimodal "
                 "Interaction (RMI, ICCV 2017) in TensorFlow 2 / Keras 3."),
    packages=find_packages(include=["tf_rmi", "tf_rmi.*", "preprocess", "preprocess.*",
                                    "benchmarks"]),
    # The original release's vocabularies and the paper's published tables.
    package_data={"tf_rmi.data": ["vocab/*.txt", "published/*.csv"]},
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16,<2.22",
        "keras>=3.3,<4",
        "numpy>=1.26,<3",
        "scipy>=1.11",
        "pillow>=10",
        "pydensecrf2>=1.1",
        "pycocotools>=2.0.7",
        "absl-py>=2.1",
        "matplotlib>=3.8",
        "h5py>=3.10",
        # TensorBoard summaries (tf.summary.scalar/image) and `make tensorboard`.
        "tensorboard>=2.16,<2.22",
    ],
    extras_require={"test": ["pytest>=8"]},
    entry_points={
        "console_scripts": [
            "tf_rmi=tf_rmi.cli:run",
            "tf_rmi_preprocess=preprocess.build_data:run",
            "tf_rmi_train=tf_rmi.train:run",
            "tf_rmi_evaluate=tf_rmi.evaluate:run",
            "tf_rmi_export=tf_rmi.export:run",
            "tf_rmi_import=tf_rmi.import_weights:run",
        ],
    },
)
