r"""The two 10-fold evaluation protocols of the TU graph-classification
benchmarks.

* **GIN protocol** (:func:`gin_protocol`), as in Xu et al. (2019) and the
  IGN paper: train on 9 folds, record the accuracy on the held-out fold
  after every epoch, pick the *single* epoch whose accuracy averaged over
  the 10 folds is best, and report mean ± std across folds at that epoch.
  The held-out fold doubles as the validation set, so this number is
  optimistic.
* **Inner-validation protocol** (:func:`inner_val_protocol`), stricter:
  an inner validation split is carved out of each training fold, the epoch
  is chosen per fold on that split, and the held-out fold's (test) accuracy
  at that epoch is reported as mean ± std across folds.

Standard deviations across folds are unbiased (as :func:`torch.std` and
the experiment runner's summaries compute them); :obj:`numpy.std`
(population) values are smaller by a factor :math:`\sqrt{9/10}` for 10
folds.
"""
import math
from typing import Dict, List, Sequence, Tuple

import torch
from torch import Tensor

__all__ = [
    'stratified_folds',
    'GIN_PROTOCOL',
    'INNER_VAL_PROTOCOL',
    'gin_protocol',
    'inner_val_protocol',
    'inner_split',
]

GIN_PROTOCOL = ('GIN protocol: 10-fold CV, held-out-fold accuracy at the '
                'epoch best on average across folds')
INNER_VAL_PROTOCOL = ('inner-validation protocol: 10-fold CV, held-out-fold '
                      'accuracy at each fold\'s best inner-validation epoch')


def _curves(curves: Sequence[Sequence[float]], name: str) -> Tensor:
    lengths = {len(c) for c in curves}
    if not curves or len(lengths) != 1 or 0 in lengths:
        raise ValueError(f"'{name}' must hold one non-empty curve per fold, "
                         f"all of the same length (got lengths "
                         f"{sorted(lengths)}); train every fold for the same "
                         f"number of epochs without early stopping")
    return torch.tensor([list(c) for c in curves], dtype=torch.float64)


def _mean_std(values: Tensor) -> Tuple[float, float]:
    if values.numel() < 2:  # one fold: no spread (as the runner reports)
        return float(values.mean()), 0.0
    return float(values.mean()), float(values.std(unbiased=True))


def gin_protocol(fold_curves: Sequence[Sequence[float]]) -> Dict[str, object]:
    r"""Scores the GIN protocol.

    Args:
        fold_curves: Per fold, the held-out-fold accuracy after every epoch
            (:obj:`[folds][epochs]`).

    Returns:
        dict: :obj:`mean`, :obj:`std`, :obj:`epoch` (1-based), per-fold
        :obj:`folds` values and the :obj:`protocol` label.
    """
    acc = _curves(fold_curves, 'fold_curves')
    best = int(acc.mean(dim=0).argmax())
    mean, std = _mean_std(acc[:, best])
    return {'protocol': GIN_PROTOCOL, 'mean': mean, 'std': std,
            'epoch': best + 1, 'folds': acc[:, best].tolist()}


def inner_val_protocol(val_curves: Sequence[Sequence[float]],
                       test_curves: Sequence[Sequence[float]]
                       ) -> Dict[str, object]:
    r"""Scores the inner-validation protocol.

    Args:
        val_curves: Per fold, the inner-validation accuracy per epoch.
        test_curves: Per fold, the held-out-fold accuracy per epoch.

    Returns:
        dict: :obj:`mean`, :obj:`std`, the per-fold :obj:`epochs` (1-based,
        the first best on ties) and :obj:`folds` values, and the
        :obj:`protocol` label.
    """
    val = _curves(val_curves, 'val_curves')
    test = _curves(test_curves, 'test_curves')
    if val.shape != test.shape:
        raise ValueError(f"'val_curves' and 'test_curves' must have the same "
                         f"shape (got {list(val.shape)} and "
                         f"{list(test.shape)})")
    # argmax returns the first maximum: the earliest best epoch.
    best = val.argmax(dim=1)
    picked = test[torch.arange(test.size(0)), best]
    mean, std = _mean_std(picked)
    return {'protocol': INNER_VAL_PROTOCOL, 'mean': mean, 'std': std,
            'epochs': (best + 1).tolist(), 'folds': picked.tolist()}


def inner_split(train_index: Tensor, labels: Tensor, val_fraction: float,
                seed: int) -> Tuple[Tensor, Tensor]:
    r"""Splits a training fold into inner-training and validation indices,
    stratified by label and reproducible from :obj:`seed`.

    Every class keeps at least one training graph; classes with at least two
    graphs give at least one validation graph.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"'val_fraction' must be in (0, 1) "
                         f"(got {val_fraction})")
    if train_index.numel() == 0:
        raise ValueError("'inner_split' got an empty training fold")
    if int(train_index.min()) < 0 or \
            int(train_index.max()) >= labels.numel():
        raise ValueError(f"'inner_split' got training indices out of range "
                         f"for {labels.numel()} labels (largest "
                         f"{int(train_index.max())})")
    gen = torch.Generator().manual_seed(seed)
    fold_labels = labels[train_index]
    train: List[Tensor] = []
    val: List[Tensor] = []
    for c in torch.unique(fold_labels):
        members = train_index[fold_labels == c]
        members = members[torch.randperm(members.numel(), generator=gen)]
        k = min(max(1, math.floor(val_fraction * members.numel() + 0.5)),
                members.numel() - 1)
        val.append(members[:k])
        train.append(members[k:])
    return torch.cat(train).sort().values, torch.cat(val).sort().values


def stratified_folds(labels: Tensor, num_folds: int,
                     seed: int) -> List[Tuple[Tensor, Tensor]]:
    r"""Stratified :obj:`num_folds`-fold split, reproducible from
    :obj:`seed`, for datasets without published folds.

    Returns:
        A list of :obj:`(train_index, test_index)`; the test parts partition
        :obj:`0..N-1`.
    """
    if num_folds < 2:
        raise ValueError(f"'num_folds' must be at least 2 (got {num_folds})")
    gen = torch.Generator().manual_seed(seed)
    assignment = torch.empty(labels.numel(), dtype=torch.long)
    offset = 0
    for c in torch.unique(labels):
        members = (labels == c).nonzero().view(-1)
        members = members[torch.randperm(members.numel(), generator=gen)]
        # Deal each class round-robin, continuing where the last class
        # stopped, so fold sizes differ by at most one.
        assignment[members] = (torch.arange(members.numel()) + offset) \
            % num_folds
        offset += members.numel()
    everything = torch.arange(labels.numel())
    return [(everything[assignment != k], everything[assignment == k])
            for k in range(num_folds)]
