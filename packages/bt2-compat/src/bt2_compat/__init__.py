"""BT^2: backward-compatible embedding training with an orthonormal basis transformation (arXiv 2211.03989).

Modules: `transform` (the orthonormal basis transformation), `models` (MLP / CIFAR ResNet-18 backbones, the
embedding model, the BT^2 head), `losses`, `train` (independent, BCT, L2, BT^2 by name; seeded, resumable),
`evaluate` (leave-one-out cross-model CMC/mAP and the compatibility criterion), `data` (digits, synthetic vectors
and images, class splits), `augment` (seeded batch-wise random crop + flip), `readers` (already-downloaded
`cifar-100-python` through the restricted, size-capped unpickler of `safe_pickle`; image folders),
`experiment` (the whole class-split experiment), `series` (multi-step series, all-pairs compatibility matrix),
`io` (model files), `cli`.
"""

from bt2_compat.__about__ import __version__
from bt2_compat.augment import augment_batch
from bt2_compat.data import (
    Dataset,
    check_old_classes,
    class_subset,
    load_dataset,
    load_digits,
    make_synthetic,
    make_synthetic_images,
)
from bt2_compat.evaluate import Compatibility, check_embeddings, compatibility, embed, retrieval, similarity
from bt2_compat.experiment import ExperimentConfig, ExperimentResult, run_experiment
from bt2_compat.io import check_model_data, load_model, save_model
from bt2_compat.models import (
    MLP,
    BT2Head,
    BT2Model,
    BT2Output,
    EmbeddingModel,
    ModelConfig,
    ResNet18Cifar,
    ResNet50Cifar,
    build_model,
)
from bt2_compat.readers import ImageSplit, load_cifar100, load_image_folder, read_cifar100, read_image_folder
from bt2_compat.series import SeriesConfig, SeriesResult, plot_series, run_series
from bt2_compat.train import METHODS, TrainConfig, TrainResult, train_model
from bt2_compat.transform import BasisTransform, orthogonality_error

__all__ = [
    "METHODS",
    "MLP",
    "PAPER",
    "BT2Head",
    "BT2Model",
    "BT2Output",
    "BasisTransform",
    "Compatibility",
    "Dataset",
    "EmbeddingModel",
    "ExperimentConfig",
    "ExperimentResult",
    "ImageSplit",
    "ModelConfig",
    "ResNet18Cifar",
    "ResNet50Cifar",
    "SeriesConfig",
    "SeriesResult",
    "TrainConfig",
    "TrainResult",
    "__version__",
    "augment_batch",
    "build_model",
    "check_embeddings",
    "check_model_data",
    "check_old_classes",
    "class_subset",
    "compatibility",
    "embed",
    "load_cifar100",
    "load_dataset",
    "load_digits",
    "load_image_folder",
    "load_model",
    "make_synthetic",
    "make_synthetic_images",
    "orthogonality_error",
    "plot_series",
    "read_cifar100",
    "read_image_folder",
    "retrieval",
    "run_experiment",
    "run_series",
    "save_model",
    "similarity",
    "train_model",
]

#: The paper this distribution implements.
PAPER = "arXiv:2211.03989"
