"""pyg_hyper: hypernetwork layers for PyTorch Geometric.

"Hyper" here means *hypernetwork* (a network that generates the weights of
another network), not hypergraph.
"""
import pyg_hyper.utils  # noqa: F401
import pyg_hyper.nn  # noqa: F401

__version__ = '0.1.0'

__all__ = ['__version__']
