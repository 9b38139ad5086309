r"""The TU graph-classification benchmark (10-fold cross-validation) for
GIN, Hyper-GIN, IGN and Hyper-IGN.

One runner *seed* is one fold: seeds :obj:`0..9` train on the published
folds :obj:`0..9` (GIN format) or on seeded stratified folds (TU format).
Every epoch records the held-out fold's accuracy as :obj:`test`; with
:obj:`protocol.inner_val > 0` a stratified part of the training fold is held
out as :obj:`val`, otherwise :obj:`val` is the held-out fold itself, as in
the GIN paper. :func:`protocol_summary` turns a run's learning curves into
the two labelled protocol numbers of :mod:`pyg_hyper.datasets.protocols`.
"""
import hashlib
import os
import os.path as osp
import shutil
import tempfile
import warnings
from typing import Any, Dict, Iterable, List

import torch
import torch.nn.functional as F
from torch import Tensor

from torch_geometric.loader import DataLoader
from torch_geometric.transforms import OneHotDegree
from torch_geometric.utils import degree

from pyg_hyper.datasets import GINFormatDataset, load_tu_dataset
from pyg_hyper.datasets.protocols import (
    gin_protocol,
    inner_split,
    inner_val_protocol,
    stratified_folds,
)
from pyg_hyper.experiment.task import (
    Task,
    hyper_variant_label,
    register_task,
)
from pyg_hyper.nn.models import IGN, HyperGIN, HyperIGN

__all__ = ['TUTask', 'protocol_summary', 'same_size_batches', 'MODELS',
           'BATCHINGS']

MODELS = ('gin', 'hyper_gin', 'ign', 'hyper_ign')
#: ``train.batching`` (with ``train.iters_per_epoch: 0``): a random
#: partition of the training fold, or the official IGN code's batches of
#: graphs with the same node count (no padding for the dense models).
BATCHINGS = ('random', 'same_size')
# Hypernetwork widths of experiments/tu/configs/hyper_{gin,ign}.yaml.
CONFIG_HYPER_CHANNELS = {'hyper_gin': 64, 'hyper_ign': 16}
SOURCES = {'gin': 'GIN_format', 'tu': 'TUDataset'}
#: Where the shared benchmark data sits relative to the repository.
_SHARED = osp.join(osp.dirname(osp.abspath(__file__)), '..', '..', '..',
                   'shared', 'data')


def _copy_raw(cfg_data: Dict[str, Any]) -> str:
    """Copies the read-only raw data into the cache folder (loaders write
    ``processed/`` next to it) and returns the loader root."""
    source, name = cfg_data['source'], cfg_data['name']
    src_root = cfg_data['root'] or osp.join(_SHARED, SOURCES[source])
    cache = cfg_data['cache'] or osp.join(tempfile.gettempdir(),
                                          'pyg_hyper_data')
    # One cache folder per source folder: two roots that both hold a
    # 'MUTAG' with different files must not share one copy (the copy is
    # made once and then reused by name).
    source_key = hashlib.sha1(
        osp.realpath(src_root).encode()).hexdigest()[:12]
    root = osp.join(cache, SOURCES[source], source_key)
    os.makedirs(root, exist_ok=True)
    if source == 'gin':
        src, dst = osp.join(src_root, f'{name}.zip'), osp.join(root,
                                                               f'{name}.zip')
        present = osp.isfile(src)
        if not osp.isfile(dst) and present:
            shutil.copy(src, dst)
    else:
        src, dst = osp.join(src_root, name), osp.join(root, name)
        present = osp.isdir(src)
        if not osp.isdir(dst) and present:
            shutil.copytree(osp.join(src, 'raw'), osp.join(dst, 'raw'))
    if cfg_data['root'] and not present:
        # Without this, a copy cached from another root would be used in
        # silence (the cache is keyed by dataset name only).
        raise FileNotFoundError(
            f"data.root '{src_root}' has no '{osp.basename(src)}' for "
            f"'{name}' (the {source} source's layout); point data.root at "
            f"the folder that holds it")
    return root


@register_task
class TUTask(Task):
    r"""10-fold graph classification on the TU benchmarks (see the module
    docstring). Config sections: :obj:`data`, :obj:`protocol`,
    :obj:`model`, :obj:`train`, :obj:`optim` (Adam with a step decay
    :obj:`lr * gamma ** (epoch // step_size)` in the 1-based
    :obj:`epoch`, floored at :obj:`min_lr`: GIN's code steps its
    ``StepLR`` before each epoch, so it halves at epochs 50, 100, ...;
    with :obj:`optim.decay_clock="batches"`, the official IGN code's
    clock instead: before the :math:`s`-th optimizer step (0-based) the
    rate is :obj:`lr * gamma ** (s * batch_size // (step_size *
    num_train))`, as its ``exponential_decay(global_step * batch_size,
    train_size * 20, staircase=True)``. An epoch of same-size batches has
    more steps than :obj:`num_train / batch_size`, so that rate drops
    within an epoch, a little before epoch :obj:`step_size`)."""
    name = 'tu'
    metric = 'accuracy'
    # data.source chooses the folds ('gin' or 'tu'): not a location.
    location_keys = ('data.root', 'data.cache')
    higher_is_better = True

    def default_config(self) -> Dict[str, Any]:
        return {
            'data': {
                'source': 'gin',  # 'gin': published folds; 'tu': PyG files
                'name': 'MUTAG',
                'root': '',  # default: <repo>/../shared/data/<format>
                'cache': '',  # copy + processed files; default: tmp dir
                'degree_as_tag': False,  # GIN's features for IMDB
                'fold_seed': 0,  # stratified folds of the 'tu' source
            },
            'protocol': {
                'inner_val': 0.0,  # >0: inner validation fraction
            },
            'model': {
                'name': 'gin',
                'hidden_channels': 64,  # GIN / Hyper-GIN width
                'num_layers': 4,  # GIN / Hyper-GIN message-passing layers
                'dropout': 0.5,
                'gin_pool': 'sum',
                # 'layers': the GIN paper's sum of per-layer heads
                'gin_readout': 'last',
                'hyper_channels': 16,
                'combine': 'concat',
                # 'zero': hyper layers start as their plain twin's layers
                'generator_init': 'uniform',
                # true: codes divided by their width (HyperLinear)
                'normalize_code': False,
                'ign_channels': [16, 32, 256],
                'mlp_channels': [512, 256],
                'ign_pool': 'max',
                'max_dense_bytes': 2**30,
            },
            'train': {
                'batch_size': 32,
                'iters_per_epoch': 0,  # >0: random batches (GIN: 50)
                'batching': 'random',  # or 'same_size' (see BATCHINGS)
                'eval_batch_size': 32,
                # Train accuracy is for the curves only (neither protocol
                # reads it) and costs about as much as a GIN epoch.
                'eval_train': True,
                # 'sum': the batch's summed cross-entropy, as the official
                # IGN code (GIN's code averages)
                'loss_reduction': 'mean',
            },
            'optim': {
                'lr': 0.01,
                'weight_decay': 0.0,
                'step_size': 50,
                'gamma': 0.5,
                'min_lr': 0.0,
                'decay_clock': 'epochs',  # or 'batches' (DECAY_CLOCKS)
            },
        }

    def load_data(self, cfg: Dict[str, Any], device: torch.device) -> Any:
        data_cfg = cfg['data']
        if cfg['protocol']['inner_val'] == 0:
            warnings.warn(
                "protocol.inner_val=0 (the GIN protocol): the held-out fold "
                "is also the validation set, so each seed's 'test at the "
                "best-validation epoch' in results.json/.md and 'pyg-hyper "
                "aggregate' is that fold's best test accuracy, more "
                "optimistic still than the GIN protocol's one epoch shared "
                "by all folds; report the latter (experiments/tu/"
                "summarize.py, protocol_summary)", stacklevel=2)
        if data_cfg['source'] not in SOURCES:
            raise ValueError(f"data.source must be one of {sorted(SOURCES)} "
                             f"(got '{data_cfg['source']}')")
        root = _copy_raw(data_cfg)
        if data_cfg['source'] == 'gin':
            ds = GINFormatDataset(root, data_cfg['name'],
                                  degree_as_tag=data_cfg['degree_as_tag'])
            if ds.num_features <= 1 and not data_cfg['degree_as_tag']:
                # Social sets (IMDB, REDDIT, COLLAB) carry one node tag in
                # GIN's files: every node would get the same input.
                raise ValueError(
                    f"'{data_cfg['name']}' has no node labels in GIN's "
                    f"format, so every node would get the same feature; "
                    f"set data.degree_as_tag=true (Xu et al.'s one-hot "
                    f"degrees for social datasets)")
            folds = [ds.fold(k) for k in range(10)]
        else:
            ds = load_tu_dataset(root, data_cfg['name'])
            if ds.num_features == 0:  # unlabeled (IMDB): one-hot degrees
                max_deg = max(int(degree(g.edge_index[0], g.num_nodes).max())
                              for g in ds)
                ds = load_tu_dataset(root, data_cfg['name'],
                                     transform=OneHotDegree(max_deg))
            folds = stratified_folds(ds._data.y, 10, data_cfg['fold_seed'])
        # Before any fold trains: seeds=20 would otherwise fail after ten.
        _check_fold_seeds(range(cfg['seed_start'],
                                cfg['seed_start'] + cfg['seeds']), len(folds))
        if cfg['optim']['decay_clock'] not in DECAY_CLOCKS:
            raise ValueError(f"optim.decay_clock must be one of "
                             f"{list(DECAY_CLOCKS)} (got "
                             f"'{cfg['optim']['decay_clock']}')")
        if cfg['train']['loss_reduction'] not in ('mean', 'sum'):
            raise ValueError(f"train.loss_reduction must be 'mean' or 'sum' "
                             f"(got '{cfg['train']['loss_reduction']}')")
        if cfg['train']['batching'] not in BATCHINGS:
            raise ValueError(f"train.batching must be one of "
                             f"{list(BATCHINGS)} (got "
                             f"'{cfg['train']['batching']}')")
        # Node counts from the collated storage's offsets, not by touching
        # every graph.
        num_nodes = ds.slices['x'].diff() if 'x' in ds.slices else \
            torch.tensor([g.num_nodes for g in ds])
        return {'dataset': ds, 'folds': folds, 'device': device,
                'labels': ds._data.y.view(-1), 'num_nodes': num_nodes}

    def data_for_seed(self, data: Any, cfg: Dict[str, Any], seed: int) -> Any:
        _check_fold_seeds([seed], len(data['folds']))
        train, test = data['folds'][seed]
        frac = cfg['protocol']['inner_val']
        if frac > 0:
            train, val = inner_split(train, data['labels'], frac, seed)
        else:
            val = test  # the GIN protocol: the held-out fold validates
        return dict(data, split={'train': train, 'val': val, 'test': test})

    def build_model(self, cfg: Dict[str, Any], data: Any) -> torch.nn.Module:
        m = cfg['model']
        ds = data['dataset']
        in_ch, out_ch = ds.num_features, ds.num_classes
        if m['name'] in ('gin', 'hyper_gin'):
            return HyperGIN(in_ch, m['hidden_channels'], out_ch,
                            num_layers=m['num_layers'],
                            hyper=m['name'] == 'hyper_gin',
                            hyper_channels=m['hyper_channels'],
                            combine=m['combine'], pool=m['gin_pool'],
                            dropout=m['dropout'], readout=m['gin_readout'],
                            generator_init=m['generator_init'],
                            normalize_code=m['normalize_code'])
        if m['name'] in ('ign', 'hyper_ign'):
            kwargs = dict(mlp_channels=m['mlp_channels'], pool=m['ign_pool'],
                          max_dense_bytes=m['max_dense_bytes'])
            if m['name'] == 'hyper_ign':
                return HyperIGN(in_ch, m['ign_channels'], out_ch,
                                hyper_channels=m['hyper_channels'],
                                combine=m['combine'],
                                generator_init=m['generator_init'],
                                normalize_code=m['normalize_code'], **kwargs)
            return IGN(in_ch, m['ign_channels'], out_ch, **kwargs)
        raise ValueError(f"model.name must be one of {list(MODELS)} "
                         f"(got '{m['name']}')")

    def _forward(self, model, batch):
        if isinstance(model, IGN):
            return model(batch.x, batch.edge_index, batch.batch,
                         batch.num_graphs)
        return model(batch.x, batch.edge_index, batch=batch.batch,
                     batch_size=batch.num_graphs)

    def train_epoch(self, model, data, optimizer, cfg) -> float:
        # The step decay lives in the optimizer's param groups, so that it
        # is saved in (and resumed from) the runner's checkpoints.
        o = cfg['optim']
        reduction = cfg['train']['loss_reduction']
        train_index = data['split']['train']
        bs, iters = cfg['train']['batch_size'], cfg['train']['iters_per_epoch']
        for group in optimizer.param_groups:
            epoch = group.setdefault('epoch', 0) + 1  # the one starting now
            group['epoch'] = epoch
            if o['decay_clock'] == 'epochs':
                group['lr'] = _decayed(o, epoch // o['step_size'])
        # The 'batches' clock: samples nominally seen, in units of
        # step_size training sets.
        samples_per_drop = o['step_size'] * max(train_index.numel(), 1)
        model.train()
        ds, device = data['dataset'], data['device']
        if iters > 0:  # GIN: `iters` random batches per epoch
            batches = [train_index[torch.randperm(train_index.numel())[:bs]]
                       for _ in range(iters)]
        elif cfg['train']['batching'] == 'same_size':
            batches = same_size_batches(train_index,
                                        data['num_nodes'][train_index], bs)
        else:
            perm = train_index[torch.randperm(train_index.numel())]
            batches = list(perm.split(bs))
        total, count = 0.0, 0
        for idx in batches:
            batch = _collate(ds, idx)
            batch = batch.to(device)
            optimizer.zero_grad()
            loss = F.cross_entropy(self._forward(model, batch),
                                   batch.y.view(-1), reduction=reduction)
            loss.backward()
            if o['decay_clock'] == 'batches':
                for group in optimizer.param_groups:
                    steps = group.setdefault('steps', 0)
                    group['lr'] = _decayed(o, steps * bs // samples_per_drop)
                    group['steps'] = steps + 1
            optimizer.step()
            total += float(loss.detach()) * (
                len(idx) if reduction == 'mean' else 1)
            count += len(idx)
        return total / max(count, 1)

    @torch.no_grad()
    def evaluate(self, model, data, cfg) -> Dict[str, float]:
        model.eval()
        ds, device = data['dataset'], data['device']
        scores = {}
        for key, index in data['split'].items():
            if key == 'train' and not cfg['train']['eval_train']:
                continue
            correct = 0
            bs = cfg['train']['eval_batch_size']
            if cfg['train']['batching'] == 'same_size':
                # Padding-free batches here too: every graph's output is
                # the same, the dense models' work is less.
                loader = (_collate(ds, idx)
                          for idx in same_size_batches(
                              index, data['num_nodes'][index], bs,
                              shuffle=False))
            else:
                loader = DataLoader(ds[index], batch_size=bs)
            for batch in loader:
                batch = batch.to(device)
                pred = self._forward(model, batch).argmax(-1)
                correct += int((pred == batch.y.view(-1)).sum())
            scores[key] = correct / max(index.numel(), 1)
        return scores

    def describe(self, cfg: Dict[str, Any]) -> str:
        model = cfg['model']
        label = model['name']
        # A hypernetwork narrower or wider than the recorded configs' gets
        # its own run folder, so that it never resumes into theirs.
        if model['name'] in CONFIG_HYPER_CHANNELS and (
                model['hyper_channels'] != CONFIG_HYPER_CHANNELS[label]):
            label += f"-r{model['hyper_channels']}"
        if model['name'] in CONFIG_HYPER_CHANNELS:
            label += hyper_variant_label(model)
        return f"{label}-{cfg['data']['name']}"


#: How the step decay counts (see :class:`TUTask`): GIN's epochs, or the
#: official IGN code's optimizer steps times the batch size.
DECAY_CLOCKS = ('epochs', 'batches')


def _decayed(optim: Dict[str, Any], drops: int) -> float:
    return max(optim['lr'] * optim['gamma']**drops, optim['min_lr'])


def _collate(dataset, index: Tensor):
    """The graphs :obj:`index` of :obj:`dataset` as one mini-batch."""
    return next(iter(DataLoader(dataset[index], batch_size=len(index))))


def same_size_batches(index: Tensor, num_nodes: Tensor, batch_size: int,
                      shuffle: bool = True) -> List[Tensor]:
    r"""The official IGN code's training batches: the graphs :obj:`index`
    grouped by node count, each group shuffled and cut into batches of at
    most :obj:`batch_size` (a group's last batch is its remainder), the
    batches in random order. Dense models then pad nothing, and every
    batch costs what its graphs cost. Uses torch's global generator;
    :obj:`shuffle=False` keeps the given order within a size and orders
    the batches by size (for evaluation).

    Args:
        index (torch.Tensor): Graph indices :obj:`[n]`.
        num_nodes (torch.Tensor): Their node counts :obj:`[n]`.
        batch_size (int): Largest batch.
        shuffle (bool, optional): Draw random orders. (default: :obj:`True`)
    """
    if index.numel() != num_nodes.numel():
        raise ValueError(f"'same_size_batches' expected one node count per "
                         f"graph index, got {num_nodes.numel()} counts for "
                         f"{index.numel()} graphs")
    shuffled = (torch.randperm(index.numel()) if shuffle else
                torch.arange(index.numel()))
    # A stable sort by size keeps the shuffled order inside every group.
    order = shuffled[torch.sort(num_nodes[shuffled], stable=True).indices]
    sizes = torch.unique_consecutive(num_nodes[order], return_counts=True)[1]
    batches = [chunk for group in index[order].split(sizes.tolist())
               for chunk in group.split(batch_size)]
    if not shuffle:
        return batches
    return [batches[i] for i in torch.randperm(len(batches)).tolist()]


def _check_fold_seeds(seeds: Iterable[int], num_folds: int) -> None:
    bad = [s for s in seeds if not 0 <= s < num_folds]
    if bad:
        # A wrapped seed would rerun a fold and make the summary's std look
        # like a CV std over twice as many folds.
        raise ValueError(f"TU seeds index the {num_folds} cross-validation "
                         f"folds, so they must lie in 0..{num_folds - 1} "
                         f"(got seed {bad[0]}); use seeds<={num_folds} and "
                         f"seed_start>=0")


def protocol_summary(results: Dict[str, Any]) -> Dict[str, Any]:
    r"""Both protocol numbers of a TU run from its :obj:`results.json`
    (learning curves of every fold; train with :obj:`patience: 0` so that
    all folds have the same number of epochs).

    Returns:
        dict: :obj:`gin`
        (:func:`~pyg_hyper.datasets.protocols.gin_protocol` on the
        held-out-fold curves) and, if the run held out an inner validation
        split, :obj:`inner_val`
        (:func:`~pyg_hyper.datasets.protocols.inner_val_protocol`).
    """
    seeds = sorted(results['seeds'], key=int)
    hist = [results['seeds'][s]['history'] for s in seeds]
    # The protocols count curve positions; with eval_every > 1 a position
    # is not an epoch, so positions are mapped back to the recorded epochs.
    epochs = hist[0].get('epoch') if hist else None
    if epochs is not None and any(h.get('epoch') != epochs for h in hist):
        raise ValueError("protocol_summary needs every fold evaluated at the "
                         "same epochs (train with patience: 0 and one "
                         "eval_every for all folds)")
    out: Dict[str, Any] = {'folds': len(seeds),
                           'gin': gin_protocol([h['test'] for h in hist])}
    if results['config']['protocol']['inner_val'] > 0:
        out['inner_val'] = inner_val_protocol([h['val'] for h in hist],
                                              [h['test'] for h in hist])
    if epochs is not None:
        out['gin']['epoch'] = int(epochs[out['gin']['epoch'] - 1])
        if 'inner_val' in out:
            out['inner_val']['epochs'] = [
                int(epochs[e - 1]) for e in out['inner_val']['epochs']]
    return out
