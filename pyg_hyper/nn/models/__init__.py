"""Full models built from :mod:`pyg_hyper.nn.conv` layers."""
from .hyper_gin import HyperGIN

__all__ = [
    'HyperGIN',
]

classes = __all__
