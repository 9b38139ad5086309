"""Dataset loaders and evaluation protocols."""
from .tu import load_tu_dataset
from .gin_format import GINFormatDataset
from .protocols import gin_protocol, inner_split, inner_val_protocol

__all__ = [
    'load_tu_dataset',
    'GINFormatDataset',
    'gin_protocol',
    'inner_val_protocol',
    'inner_split',
]
