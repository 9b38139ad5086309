"""Benchmark tasks registered with :mod:`pyg_hyper.experiment`."""
