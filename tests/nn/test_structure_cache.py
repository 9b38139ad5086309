import pytest
import torch

import pyg_hyper.nn.structure_cache as structure_cache
from pyg_hyper.nn import StructureCache


def counting(value='v'):
    calls = []

    def compute():
        calls.append(1)
        return value
    return compute, calls


def test_equal_contents_hit_even_for_new_tensors():
    cache = StructureCache()
    compute, calls = counting()
    index = torch.tensor([[0, 1], [1, 0]])
    assert cache.get('edges', (index, 3), compute) == 'v'
    assert cache.get('edges', (index.clone(), 3), compute) == 'v'
    assert len(calls) == 1 and (cache.hits, cache.misses) == (1, 1)


@pytest.mark.parametrize('changed', [
    lambda t: (torch.tensor([[0, 1], [1, 2]]), 3),  # other values
    lambda t: (torch.tensor([[0, 1, 2], [1, 0, 0]]), 3),  # other shape
    lambda t: (t.int(), 3),  # other dtype
    lambda t: (t, 4),  # other plain key
    lambda t: (None, 3),  # tensor against None
])
def test_changed_keys_recompute(changed):
    cache = StructureCache()
    compute, calls = counting()
    index = torch.tensor([[0, 1], [1, 0]])
    cache.get('edges', (index, 3), compute)
    cache.get('edges', changed(index), compute)
    assert len(calls) == 2


def test_in_place_edit_of_the_callers_tensor_is_seen():
    cache = StructureCache()
    compute, calls = counting()
    index = torch.tensor([[0, 1], [1, 0]])
    cache.get('edges', (index,), compute)
    index[1, 1] = 2  # the stored key is a copy, so this is a new graph
    cache.get('edges', (index,), compute)
    assert len(calls) == 2


def test_slots_keep_alternating_entries():
    index_a, index_b = torch.tensor([0, 1]), torch.tensor([1, 2])
    for slots, expected_misses in ((2, 2), (1, 6)):
        cache = StructureCache(slots=slots)
        for _ in range(3):
            cache.get('x', (index_a,), lambda: 'a')
            cache.get('x', (index_b,), lambda: 'b')
        assert cache.misses == expected_misses
        assert len(cache) == slots
    assert cache.get('x', (index_a,), lambda: 'a') == 'a'
    cache.clear()
    assert len(cache) == 0
    assert 'entries=0' in repr(cache)


def test_names_are_separate():
    cache = StructureCache()
    index = torch.tensor([0])
    assert cache.get('a', (index,), lambda: 1) == 1
    assert cache.get('b', (index,), lambda: 2) == 2


def test_nothing_is_cached_while_tracing(monkeypatch):
    monkeypatch.setattr(structure_cache, 'is_tracing', lambda: True)
    cache = StructureCache()
    compute, calls = counting()
    for _ in range(2):
        cache.get('edges', (torch.tensor([0]),), compute)
    assert len(calls) == 2 and len(cache) == 0


def test_bad_slots():
    with pytest.raises(ValueError, match="'slots' >= 1"):
        StructureCache(slots=0)


def test_keys_with_autograd_history_are_never_cached():
    cache = StructureCache()
    compute, calls = counting()
    weight = torch.rand(3, requires_grad=True)
    for _ in range(2):
        cache.get('norm', (weight,), compute)
    assert len(calls) == 2 and len(cache) == 0


def test_values_computed_under_inference_mode_are_not_stored():
    # An inference tensor cannot be saved for backward: a cached one broke
    # the next training step (LGNN(cached=True) after an evaluation).
    cache = StructureCache()
    key = torch.tensor([1, 2])
    with torch.inference_mode():
        value = cache.get('a', (key,), lambda: key * 2)
    assert value.is_inference() and len(cache) == 0
    stored = cache.get('a', (key,), lambda: key * 2)
    assert not stored.is_inference() and len(cache) == 1
    with torch.inference_mode():  # a stored entry still serves inference
        assert cache.get('a', (key,), lambda: None) is stored
