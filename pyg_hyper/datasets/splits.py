"""Train/validation/test splits for node classification."""
from typing import Optional

import torch
from torch_geometric.data import Data

from pyg_hyper.utils.checks import check_non_negative_int, check_positive_int

__all__ = ['SPLITS', 'random_class_split', 'make_split']

#: Split names accepted by :func:`~pyg_hyper.datasets.make_split`.
SPLITS = ('public', 'lgnn', 'lgnn-val100')


def random_class_split(y: torch.Tensor, num_train_per_class: int = 20,
                       num_val: int = 500, num_test: int = 1000,
                       seed: int = 0):
    """Seeded split: :obj:`num_train_per_class` training nodes per class,
    then :obj:`num_val` validation and :obj:`num_test` test nodes drawn from
    the rest (the protocol of the LGNN paper's split generator).

    Uses its own :class:`torch.Generator`, so the split depends on
    :obj:`seed` only, not on the global RNG. Returns three boolean masks.
    """
    check_positive_int('random_class_split',
                       num_train_per_class=num_train_per_class)
    check_non_negative_int('random_class_split', num_val=num_val,
                           num_test=num_test)
    gen = torch.Generator().manual_seed(seed)
    y = y.cpu()
    n = y.numel()
    train = torch.zeros(n, dtype=torch.bool)
    for c in torch.unique(y):
        idx = (y == c).nonzero().view(-1)
        if idx.numel() < num_train_per_class:
            raise ValueError(f'class {int(c)} has only {idx.numel()} nodes, '
                             f'fewer than num_train_per_class='
                             f'{num_train_per_class}')
        train[idx[torch.randperm(idx.numel(), generator=gen)
                  [:num_train_per_class]]] = True
    rest = (~train).nonzero().view(-1)
    if rest.numel() < num_val + num_test:
        raise ValueError(f'only {rest.numel()} nodes remain after training '
                         f'nodes; cannot take {num_val} validation and '
                         f'{num_test} test nodes')
    rest = rest[torch.randperm(rest.numel(), generator=gen)]
    val = torch.zeros(n, dtype=torch.bool)
    test = torch.zeros(n, dtype=torch.bool)
    val[rest[:num_val]] = True
    test[rest[num_val:num_val + num_test]] = True
    return train, val, test


def make_split(data: Data, split: str, seed: int = 0,
               split_index: Optional[int] = 0) -> Data:
    """Returns a shallow copy of :obj:`data` with ``train_mask``,
    ``val_mask`` and ``test_mask`` for :obj:`split`:

    * ``'public'``: the dataset's own split (Planetoid's 20 per class / 500
      / 1000; column :obj:`split_index` of Geom-GCN's 10 splits). Amazon has
      none.
    * ``'lgnn'``: 20 per class / 500 / 1000, seeded by :obj:`seed`.
    * ``'lgnn-val100'``: 20 per class / 100 / 1000, the LGNN appendix's
      small-validation protocol, seeded by :obj:`seed`.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split '{split}'; valid splits: "
                         f"{', '.join(SPLITS)}")
    out = data.clone()
    if split == 'public':
        if getattr(data, 'train_mask', None) is None:
            raise ValueError("this dataset has no public split; use "
                             "'lgnn' or 'lgnn-val100'")
        masks = [data.train_mask, data.val_mask, data.test_mask]
        if data.train_mask.dim() == 2:
            k = data.train_mask.size(1)
            if split_index is None or not 0 <= split_index < k:
                raise ValueError(f'split_index must be in [0, {k - 1}] '
                                 f'(got {split_index})')
            masks = [m[:, split_index] for m in masks]
        elif split_index not in (None, 0):
            raise ValueError(f"this dataset has one public split; "
                             f"split_index must be 0 (got {split_index})")
    else:
        num_val = 500 if split == 'lgnn' else 100
        masks = [m.to(data.y.device) for m in
                 random_class_split(data.y, 20, num_val, 1000, seed)]
    out.train_mask, out.val_mask, out.test_mask = masks
    return out
