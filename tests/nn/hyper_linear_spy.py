"""Spies on the two paths of :class:`~pyg_hyper.nn.HyperLinear`.

A "factorized equals materialized" test cannot tell whether a layer's
``materialize`` flag reaches its generated maps: a flag dropped on the way
runs the factorized path twice and the comparison passes. These helpers
record which path every generated map took, so a test can assert that the
flag selects the materializing path (and that the default never does).
"""
import importlib

from pyg_hyper.nn import HyperLinear

# By module path: the package attribute 'pyg_hyper.nn.hyper_linear' is the
# function of that name, which shadows the submodule.
hyper_linear_mod = importlib.import_module('pyg_hyper.nn.hyper_linear')


def spy_hyper_linear_paths(monkeypatch):
    """Routes :func:`materialize_hyper_weight` and :func:`hyper_linear`
    (the two paths of :meth:`HyperLinear.forward`) through recorders;
    returns ``{'materialized': [...], 'factorized': [...]}``, the ids of the
    generator weights each path was called with, in call order."""
    calls = {'materialized': [], 'factorized': []}
    real_materialize = hyper_linear_mod.materialize_hyper_weight
    real_factorized = hyper_linear_mod.hyper_linear

    def materialize(z, weight, *args, **kwargs):
        calls['materialized'].append(id(weight))
        return real_materialize(z, weight, *args, **kwargs)

    def factorized(x, z, weight, *args, **kwargs):
        calls['factorized'].append(id(weight))
        return real_factorized(x, z, weight, *args, **kwargs)

    monkeypatch.setattr(hyper_linear_mod, 'materialize_hyper_weight',
                        materialize)
    monkeypatch.setattr(hyper_linear_mod, 'hyper_linear', factorized)
    return calls


def generator_weights(module):
    """The ids of the generator weights of every HyperLinear in
    :obj:`module`."""
    return {id(m.weight) for m in module.modules()
            if isinstance(m, HyperLinear)}


def assert_every_map_took(calls, module, materialized: bool):
    """Every generated map of :obj:`module` ran the selected path, and none
    ran the other one."""
    took, other = ('materialized', 'factorized') if materialized else (
        'factorized', 'materialized')
    weights = generator_weights(module)
    assert weights, 'the module has no generated maps'
    assert set(calls[took]) == weights, (
        f'{len(weights - set(calls[took]))} generated map(s) did not take '
        f'the {took} path')
    assert calls[other] == [], f'some generated maps took the {other} path'
    calls['materialized'].clear()
    calls['factorized'].clear()
