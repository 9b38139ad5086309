"""Message-passing layers."""
from .hyper_gin_conv import HyperGINConv

__all__ = [
    'HyperGINConv',
]

classes = __all__
