"""Message-passing layers."""
from .hyper_gin_conv import HyperGINConv
from .lgcn_conv import LGCNConv
from .lgat_conv import LGATConv
from .lgin_conv import LGINConv

__all__ = [
    'HyperGINConv',
    'LGCNConv',
    'LGATConv',
    'LGINConv',
]

classes = __all__
