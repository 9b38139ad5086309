"""Convolutional hypernetworks and dynamic-filter layers for images.

One module per paper; all dynamic convolutions share
:mod:`pyg_hyper.vision.functional` (batch folded into grouped
:func:`torch.nn.functional.conv2d`, no Python loops over samples or patches).
"""
from . import functional
from .functional import batched_conv2d, depthwise_batched_conv2d
from .dynamic_conv import (
    Crop2d,
    DynamicConv2d,
    FilterNetworkB,
    separable_dynamic_conv2d,
)
from .conditioned_sr import ConditionedSR
from .dynamic_filter import (
    DynamicFilterConv2d,
    DynamicFilterNetwork,
    DynamicLocalFilter2d,
    FilterGenerator,
    dynamic_local_filter2d,
)
from .hypernetworks import (
    HyperLSTM,
    HyperLSTMCell,
    StaticHyperConv2d,
    StaticHyperNetwork,
    static_hypernetwork_num_parameters,
)
from .hyper_conv import HyperConv2d, kernel_coordinates
from .hyperseg import (
    ContextHead,
    HyperPatchConv2d,
    HyperPatchInvertedResidual,
    HyperSeg,
    HyperSegDecoder,
    divide_signal,
    patchwise_conv2d,
)

__all__ = [
    'functional',
    'batched_conv2d',
    'depthwise_batched_conv2d',
    # Klein, Wolf & Afek (CVPR 2015)
    'separable_dynamic_conv2d',
    'Crop2d',
    'FilterNetworkB',
    'DynamicConv2d',
    # Riegler et al. (ICCV 2015)
    'ConditionedSR',
    # De Brabandere, Jia et al. (NIPS 2016)
    'dynamic_local_filter2d',
    'DynamicFilterConv2d',
    'DynamicLocalFilter2d',
    'FilterGenerator',
    'DynamicFilterNetwork',
    # Ha, Dai & Le (ICLR 2017)
    'static_hypernetwork_num_parameters',
    'StaticHyperNetwork',
    'StaticHyperConv2d',
    'HyperLSTMCell',
    'HyperLSTM',
    # Ma, Dalca & Sabuncu (WACV 2022)
    'kernel_coordinates',
    'HyperConv2d',
    # Nirkin, Wolf & Hassner (CVPR 2021)
    'divide_signal',
    'patchwise_conv2d',
    'HyperPatchConv2d',
    'HyperPatchInvertedResidual',
    'ContextHead',
    'HyperSegDecoder',
    'HyperSeg',
]
