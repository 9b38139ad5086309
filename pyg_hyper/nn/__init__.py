"""Hypernetwork layers and models for PyTorch Geometric."""
from .hyper_linear import HyperLinear, hyper_linear, materialize_hyper_weight
from .hypernetwork import FirstMessageCombiner, HyperMLP, HyperNetwork
from . import conv
from . import dense
from . import models

__all__ = [
    'HyperLinear',
    'hyper_linear',
    'materialize_hyper_weight',
    'FirstMessageCombiner',
    'HyperNetwork',
    'HyperMLP',
    'conv',
    'dense',
    'models',
]
