"""Hypernetwork layers and models for PyTorch Geometric."""
from .hyper_linear import HyperLinear, hyper_linear, materialize_hyper_weight
from .hypernetwork import FirstMessageCombiner, HyperMLP, HyperNetwork
from .localization import (
    EdgeLocalization,
    FeatureNonzeros,
    NodeLocalization,
    WeightDropout,
    edge_block_size,
    feature_matmul,
    feature_nonzeros,
    localization_regularizer,
    localized_edge_transform,
    materialize_localized_weight,
    scale_block_rows,
)
from .structure_cache import StructureCache
from .radial import (
    GaussianExpansion,
    ShiftedSoftplus,
    molecular_graph,
    shifted_softplus,
)
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
    'NodeLocalization',
    'EdgeLocalization',
    'localized_edge_transform',
    'edge_block_size',
    'scale_block_rows',
    'materialize_localized_weight',
    'localization_regularizer',
    'WeightDropout',
    'GaussianExpansion',
    'ShiftedSoftplus',
    'shifted_softplus',
    'molecular_graph',
    'FeatureNonzeros',
    'feature_nonzeros',
    'feature_matmul',
    'StructureCache',
    'conv',
    'dense',
    'models',
]
