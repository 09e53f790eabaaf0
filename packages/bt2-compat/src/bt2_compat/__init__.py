"""BT^2: backward-compatible embedding training with an orthonormal basis transformation (arXiv 2211.03989).

Modules: `transform` (the orthonormal basis transformation), `models` (MLP / CIFAR ResNet-18 backbones, the
embedding model, the BT^2 head), `losses`, `train` (independent, BCT, L2, BT^2 by name; seeded, resumable),
`evaluate` (leave-one-out cross-model CMC/mAP and the compatibility criterion), `data` (digits, synthetic,
class splits), `experiment` (the whole class-split experiment), `io` (model files), `cli`.
"""

from bt2_compat.__about__ import __version__
from bt2_compat.data import Dataset, class_subset, load_dataset, load_digits, make_synthetic
from bt2_compat.evaluate import Compatibility, compatibility, embed, retrieval
from bt2_compat.experiment import ExperimentConfig, ExperimentResult, run_experiment
from bt2_compat.io import load_model, save_model
from bt2_compat.models import MLP, BT2Head, BT2Model, BT2Output, EmbeddingModel, ModelConfig, ResNet18Cifar, build_model
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
    "ModelConfig",
    "ResNet18Cifar",
    "TrainConfig",
    "TrainResult",
    "__version__",
    "build_model",
    "class_subset",
    "compatibility",
    "embed",
    "load_dataset",
    "load_digits",
    "load_model",
    "make_synthetic",
    "orthogonality_error",
    "retrieval",
    "run_experiment",
    "save_model",
    "train_model",
]

#: The paper this distribution implements.
PAPER = "arXiv:2211.03989"
