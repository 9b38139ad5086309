r"""OGB molecule property prediction as runner tasks, following OGB's
leaderboard rules and its example's training loop
(``snap-stanford/ogb examples/graphproppred/mol/main_pyg.py``).

* Data: :class:`~pyg_hyper.datasets.OGBGraphDataset` with its official
  scaffold split; every score comes from OGB's
  :class:`~ogb.graphproppred.Evaluator`.
* Model: :class:`~pyg_hyper.nn.models.OGBMolGNN`; ``model.conv`` switches
  between GIN and Hyper-GIN.
* Training: Adam, batch size 32; missing labels (NaN) are masked; loss
  :class:`~torch.nn.BCEWithLogitsLoss` (classification) or
  :class:`~torch.nn.MSELoss` (regression); batches of a single node or a
  single graph are skipped, as in OGB's example.
* Selection (by the runner): the test score at the best-validation epoch,
  mean ± unbiased std over seeds 0-9.

There is one registered task per OGB metric, because the metric fixes the
direction of model selection: ``ogbg-rocauc`` (molhiv, molbace, molbbbp,
moltox21, ...), ``ogbg-ap`` (molpcba, molmuv) and ``ogbg-rmse`` (molesol,
molfreesolv, mollipo).

Scale-out: under ``torchrun --nproc_per_node N`` each process takes
``batch_size / N`` graphs of every global batch from a
:class:`~torch.utils.data.DistributedSampler` and gradients are averaged by
:class:`~torch.nn.parallel.DistributedDataParallel`; on CUDA, BatchNorm
becomes :class:`~torch.nn.SyncBatchNorm`, so the global batch is the
single-process batch. On CPU (gloo), BatchNorm statistics stay per process.
"""
import os
import os.path as osp
import shutil
from typing import Any, Dict

import torch
from torch.utils.data import DistributedSampler
from torch_geometric.loader import DataLoader

from pyg_hyper.experiment.distributed import (
    all_agree,
    broadcast_buffers,
    init_from_env,
    rank_and_world,
    wrap_ddp,
)
from pyg_hyper.experiment.task import (
    Task,
    hyper_variant_label,
    register_task,
)

__all__ = ['OGBMolTask', 'OGBRocAucTask', 'OGBAPTask', 'OGBRMSETask']

SPLITS = {'train': 'train', 'val': 'valid', 'test': 'test'}



def _check_metric(name: str, eval_metric: str, task: 'OGBMolTask') -> None:
    if eval_metric != task.metric:
        raise ValueError(
            f"'{name}' is scored by {eval_metric}, but task '{task.name}' "
            f"selects models by {task.metric}; use "
            f"task={_TASK_BY_METRIC.get(eval_metric, '?')}")


def _check_scorable(name: str, split: str, y: torch.Tensor, metric: str,
                    limit: int) -> None:
    """Refuses a split that could not be scored: one without graphs, and
    for ROC-AUC and AP one where no task has both labels (OGB's evaluator
    would fail after the first epoch)."""
    reduced = (f' (after data.max_graphs_per_split={limit})' if limit
               else '')
    if y.size(0) == 0:
        raise ValueError(f"the '{split}' split of '{name}' is empty{reduced}")
    if metric in ('rocauc', 'ap'):
        y = y.view(y.size(0), -1)
        labelled = ~torch.isnan(y)
        both = ((y == 1) & labelled).any(0) & ((y == 0) & labelled).any(0)
        if not bool(both.any()):
            raise ValueError(
                f"the '{split}' split of '{name}' has {y.size(0)} graph(s)"
                f"{reduced} and no task with both positive and negative "
                f"labels, so its {metric} is undefined; use more graphs")

class OGBMolTask(Task):
    r"""The shared body of the OGB tasks (see the module docstring); each
    registered subclass fixes the metric."""
    # data.source is a folder of OGB files copied into data.root.
    location_keys = ('data.root', 'data.source')

    def default_config(self) -> Dict[str, Any]:
        return {
            'data': {
                'name': 'ogbg-molhiv',
                # Writable root in OGB's layout; processed/ is written here.
                'root': 'data/OGB',
                # Read-only OGB-layout folder copied into 'root' when the
                # dataset is absent there ('' = download instead).
                'source': '',
                # Use only k evenly spaced graphs of each split (0 = all);
                # for smoke tests, never for reported results.
                'max_graphs_per_split': 0,
            },
            'model': {
                'conv': 'gin',  # or 'hyper_gin'
                'virtual_node': False,
                'num_layers': 5,
                'emb_dim': 300,
                'dropout': 0.5,
                'jk': 'last',
                'pool': 'mean',
                'residual': False,
                'hyper_channels': 64,
                'hyper_hidden_channels': 0,  # 0 = emb_dim
                'combine': 'concat',
                # 'zero': hyper layers start as GIN layers (HyperLinear)
                'generator_init': 'uniform',
                # true: codes divided by their width (HyperLinear)
                'normalize_code': False,
                # 'leaderboard' = the atom categories of the ogb releases
                # behind the leaderboard's #params; 'installed' = this ogb's.
                'atom_dims': 'installed',
            },
            'optim': {'lr': 1e-3, 'weight_decay': 0.0},
            'train': {
                'batch_size': 32,  # global: split over torchrun processes
                'eval_batch_size': 256,
                'eval_train': False,  # also score the train split (slow)
            },
        }

    def check_config(self, cfg: Dict[str, Any]) -> None:
        from pyg_hyper.datasets.ogb import ogb_meta_info
        # OGB's own table gives the metric, so a wrong task fails here
        # (and in --dry-run), not after the dataset has been processed.
        _check_metric(cfg['data']['name'],
                      ogb_meta_info(cfg['data']['name'])['eval metric'],
                      self)

    def load_data(self, cfg: Dict[str, Any], device: torch.device) -> Any:
        from pyg_hyper.datasets import OGBGraphDataset, resolve_ogb_name

        rank, world = init_from_env(device)
        data_cfg = cfg['data']
        name = resolve_ogb_name(data_cfg['name'])
        root = data_cfg['root']
        folder = name.replace('-', '_')
        if data_cfg['source'] and not osp.isdir(osp.join(root, folder)):
            src = osp.join(data_cfg['source'], folder)
            if not osp.isdir(src):
                raise ValueError(f"data.source '{data_cfg['source']}' has "
                                 f"no folder '{folder}'")
            if rank == 0:
                _copy_atomically(src, osp.join(root, folder))
        if world > 1:  # rank 0 copies and processes; the others wait
            if rank == 0:
                OGBGraphDataset(root, name, download=not data_cfg['source'])
            torch.distributed.barrier()
        dataset = OGBGraphDataset(root, name,
                                  download=not data_cfg['source'])
        _check_metric(name, dataset.eval_metric, self)
        split_idx = dataset.get_idx_split()
        limit = data_cfg['max_graphs_per_split']
        sets = {}
        for key, ogb_key in SPLITS.items():
            idx = split_idx[ogb_key]
            if 0 < limit < idx.numel():
                # Evenly spaced, so that rare classes stay represented.
                idx = idx[torch.linspace(0, idx.numel() - 1, limit).long()]
            _check_scorable(name, key, dataset.y[idx], self.metric, limit)
            sets[key] = dataset[idx]
        if cfg['train']['batch_size'] % world != 0:
            raise ValueError(f"train.batch_size={cfg['train']['batch_size']} "
                             f"must be divisible by the {world} torchrun "
                             f"processes")
        return {'sets': sets, 'num_tasks': dataset.num_tasks,
                'task_type': dataset.task_type,
                'evaluator': dataset.evaluator, 'device': device}

    def data_for_seed(self, data: Any, cfg: Dict[str, Any], seed: int) -> Any:
        return dict(data, seed=seed)

    def build_model(self, cfg: Dict[str, Any], data: Any) -> torch.nn.Module:
        from pyg_hyper.nn.models import OGBMolGNN
        from pyg_hyper.nn.models.ogb_mol import OGB_LEADERBOARD_ATOM_DIMS

        m = dict(cfg['model'])
        atom_dims = m.pop('atom_dims')
        if atom_dims not in ('installed', 'leaderboard'):
            raise ValueError(f"model.atom_dims must be 'installed' or "
                             f"'leaderboard' (got {atom_dims!r})")
        m['hyper_hidden_channels'] = m['hyper_hidden_channels'] or None
        model = OGBMolGNN(
            data['num_tasks'], **m,
            atom_feature_dims=(OGB_LEADERBOARD_ATOM_DIMS
                               if atom_dims == 'leaderboard' else None))
        if rank_and_world()[1] > 1 and data['device'].type == 'cuda':
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return model

    def train_epoch(self, model: torch.nn.Module, data: Any,
                    optimizer: torch.optim.Optimizer,
                    cfg: Dict[str, Any]) -> float:
        rank, world = rank_and_world()
        device = data['device']
        train_set = data['sets']['train']
        # The epoch number lives in the optimizer's state, so that it is
        # the same on every process and survives checkpoint/resume.
        group = optimizer.param_groups[0]
        epoch = group.setdefault('epoch', 0)
        sampler = DistributedSampler(train_set, num_replicas=world,
                                     rank=rank, shuffle=True,
                                     seed=data['seed'])
        sampler.set_epoch(epoch)
        loader = DataLoader(train_set,
                            batch_size=cfg['train']['batch_size'] // world,
                            sampler=sampler)
        criterion = (torch.nn.BCEWithLogitsLoss()
                     if 'classification' in data['task_type'] else
                     torch.nn.MSELoss())
        net = wrap_ddp(model)
        model.train()
        total, steps = 0.0, 0
        for batch in loader:
            batch = batch.to(device)
            # OGB's example skips batches of one node or one graph
            # (BatchNorm cannot train on one row: the atoms', or the
            # virtual node's); all processes must skip together.
            if not all_agree(batch.num_nodes > 1 and batch.num_graphs > 1,
                             device):
                continue
            pred = net(batch.x, batch.edge_index, batch.edge_attr,
                       batch.batch, batch.num_graphs)
            y = batch.y.to(pred.dtype).view(pred.shape)
            labeled = y == y
            loss = criterion(pred[labeled], y[labeled])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            steps += 1
        group['epoch'] = epoch + 1
        return total / max(steps, 1)

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, data: Any,
                 cfg: Dict[str, Any]) -> Dict[str, float]:
        broadcast_buffers(model)
        model.eval()
        keys = ['val', 'test'] + (['train'] if cfg['train']['eval_train']
                                  else [])
        scores = {}
        for key in keys:
            y_true, y_pred = [], []
            loader = DataLoader(data['sets'][key],
                                batch_size=cfg['train']['eval_batch_size'])
            for batch in loader:
                batch = batch.to(data['device'])
                pred = model(batch.x, batch.edge_index, batch.edge_attr,
                             batch.batch, batch.num_graphs)
                y_true.append(batch.y.view(pred.shape).cpu())
                y_pred.append(pred.cpu())
            result = data['evaluator'].eval({
                'y_true': torch.cat(y_true), 'y_pred': torch.cat(y_pred)})
            scores[key] = float(result[self.metric])
        return scores

    def describe(self, cfg: Dict[str, Any]) -> str:
        from pyg_hyper.nn.models.ogb_mol import HYPER_GIN_CONFIGS
        model = cfg['model']
        label = str(cfg['data']['name']).replace('ogbg-', '') + '-gin'
        if model['conv'] == 'hyper_gin':
            label = label.replace('-gin', '-hyper-gin')
            hidden = model['hyper_hidden_channels'] or model['emb_dim']
            size = dict(hyper_channels=model['hyper_channels'],
                        hyper_hidden_channels=hidden)
            named = [k for k, v in HYPER_GIN_CONFIGS.items() if v == size]
            if named != ['full']:
                label += '-' + (named[0] if named else
                                f"r{size['hyper_channels']}h{hidden}")
            label += hyper_variant_label(model)
        return label + ('-virtual' if model['virtual_node'] else '')


def _copy_atomically(src: str, dst: str) -> None:
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    tmp = dst + f'.tmp-{os.getpid()}'
    shutil.copytree(src, tmp)
    os.replace(tmp, dst)


@register_task
class OGBRocAucTask(OGBMolTask):
    """Task ``ogbg-rocauc``: OGB molecule sets scored by ROC-AUC
    (e.g. ``ogbg-molhiv``, ``ogbg-moltox21``); higher is better."""
    name = 'ogbg-rocauc'
    metric = 'rocauc'
    higher_is_better = True


@register_task
class OGBAPTask(OGBMolTask):
    """Task ``ogbg-ap``: OGB molecule sets scored by average precision
    (``ogbg-molpcba``, ``ogbg-molmuv``); higher is better."""
    name = 'ogbg-ap'
    metric = 'ap'
    higher_is_better = True


@register_task
class OGBRMSETask(OGBMolTask):
    """Task ``ogbg-rmse``: OGB molecule regression sets scored by RMSE
    (``ogbg-molesol``, ``ogbg-molfreesolv``, ``ogbg-mollipo``); lower is
    better."""
    name = 'ogbg-rmse'
    metric = 'rmse'
    higher_is_better = False


_TASK_BY_METRIC = {cls.metric: cls.name
                   for cls in (OGBRocAucTask, OGBAPTask, OGBRMSETask)}
