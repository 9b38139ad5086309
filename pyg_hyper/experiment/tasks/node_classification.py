"""Node classification (Planetoid, Amazon, WikipediaNetwork) with the LGNN
models and their GCN / GAT / GIN baselines."""
from typing import Any, Dict

import torch
import torch.nn.functional as F

import torch_geometric.transforms as T
from torch_geometric.utils import to_undirected

from pyg_hyper.datasets import load_node_dataset, make_split
from pyg_hyper.datasets.node_classification import canonical_name
from pyg_hyper.datasets.splits import SPLITS
from pyg_hyper.experiment.task import Task, adam, register_task
from pyg_hyper.nn.models import LGNN

#: Model names and their (backbone, localized) meaning. Baselines are LGNN
#: with both levels off, so both sides of a comparison share one code path.
MODELS = {
    'GCN': ('gcn', False),
    'GAT': ('gat', False),
    'GIN': ('gin', False),
    'LGCN': ('gcn', True),
    'LGAT': ('gat', True),
    'LGIN': ('gin', True),
}


REG_SCOPES = ('all', 'train')


@register_task
class NodeClassificationTask(Task):
    """Full-batch transductive node classification, scored by accuracy.

    The loss is cross-entropy on the training nodes plus ``optim.reg_weight``
    times the localization regularizer, averaged over every node's scales
    (``optim.reg_scope: all``) or over those that reach the training nodes
    (``train``). With ``train``, a training step computes only the training
    nodes' receptive field (:obj:`output_nodes` of
    :class:`~pyg_hyper.nn.models.LGNN`), as the official code does: the
    same loss for a fraction of the work.
    """
    name = 'node_classification'
    metric = 'accuracy'
    location_keys = ('data.root', 'data.raw_source')
    higher_is_better = True

    def default_config(self) -> Dict[str, Any]:
        return {
            'data': {
                'name': 'Cora',
                'root': 'data',
                'raw_source': '',  # folder with PyG's layout to copy from
                'download': True,
                'split': 'lgnn-val100',  # public | lgnn | lgnn-val100
                'split_index': 0,  # which Geom-GCN split for 'public'
                'normalize_features': True,
                'to_undirected': True,
                # Store features as sparse COO when at most 10% are non-zero
                # (bag-of-words): every model then touches only non-zeros.
                'sparse_features': True,
            },
            'model': {
                'name': 'LGCN',  # GCN GAT GIN LGCN LGAT LGIN
                'node_level': True,  # L* models only
                'edge_level': True,  # L* models only
                'hidden_channels': 8,
                'dropout': 0.4,
                'heads': 8,
                'output_heads': 1,
                # Localization parameters: 'glorot', or 'he' (the official
                # code's variance scaling).
                'loc_init': 'glorot',
                # The official code's other differences: dropout on every
                # message and on every per-node weight W_v (L* models with
                # node-level localization), and ELU on the logits.
                'message_dropout': 0.0,
                'weight_dropout': 0.0,
                'output_elu': False,
            },
            'optim': {
                'lr': 0.005,
                'weight_decay': 0.0005,
                'reg_weight': 1.0,  # lambda of the localization regularizer
                # L2 on the localization parameters (the paper's lambda_L = 1
                # on its "FiLM" weights; Adam's weight decay lambda is the
                # gradient of TensorFlow's lambda * l2_loss = lambda/2 |p|^2).
                'loc_weight_decay': 1.0,
                # Which scales the regularizer averages: 'all' nodes, or
                # 'train': those reaching the training nodes' outputs (the
                # official code's receptive field of the training batch,
                # which is then all that a training step computes).
                'reg_scope': 'all',
            },
        }

    def _model_spec(self, cfg):
        scope = cfg['optim']['reg_scope']
        if scope not in REG_SCOPES:
            raise ValueError(f"unknown optim.reg_scope '{scope}'; valid "
                             f"values: {', '.join(REG_SCOPES)}")
        name = cfg['model']['name']
        if name not in MODELS:
            raise ValueError(f"unknown model '{name}'; valid models: "
                             f"{', '.join(MODELS)}")
        return MODELS[name]

    def describe(self, cfg) -> str:
        _, localized = self._model_spec(cfg)
        # The canonical spelling: 'cora' and 'Cora' are one run, one folder
        # and one table row (and an unknown name fails here, in --dry-run).
        label = f"{canonical_name(cfg['data']['name'])}-{cfg['model']['name']}"
        node, edge = cfg['model']['node_level'], cfg['model']['edge_level']
        if localized and not (node and edge):
            label += '-node' if node else '-edge' if edge else '-none'
        return label

    def check_config(self, cfg):
        self._model_spec(cfg)
        canonical_name(cfg['data']['name'])
        if cfg['data']['split'] not in SPLITS:
            raise ValueError(f"unknown data.split '{cfg['data']['split']}'; "
                             f"valid splits: {', '.join(SPLITS)}")

    def load_data(self, cfg, device):
        self.check_config(cfg)  # also for configs not built by the runner
        d = cfg['data']
        transform = T.NormalizeFeatures() if d['normalize_features'] else None
        dataset = load_node_dataset(d['name'], root=d['root'],
                                    raw_source=d['raw_source'] or None,
                                    download=d['download'],
                                    transform=transform)
        data = dataset[0]
        if d['to_undirected']:
            data.edge_index = to_undirected(data.edge_index,
                                            num_nodes=data.num_nodes)
        data.num_classes = int(data.y.max()) + 1
        if d['sparse_features'] and \
                torch.count_nonzero(data.x) <= 0.1 * data.x.numel():
            data.x = data.x.to_sparse()
        return data.to(device)

    def data_for_seed(self, data, cfg, seed):
        return make_split(data, cfg['data']['split'], seed=seed,
                          split_index=cfg['data']['split_index'])

    def build_model(self, cfg, data):
        backbone, localized = self._model_spec(cfg)
        m = cfg['model']
        return LGNN(data.num_features, m['hidden_channels'], data.num_classes,
                    backbone=backbone,
                    node_level=localized and m['node_level'],
                    edge_level=localized and m['edge_level'],
                    dropout=m['dropout'], heads=m['heads'],
                    output_heads=m['output_heads'], loc_init=m['loc_init'],
                    message_dropout=m['message_dropout'],
                    weight_dropout=(m['weight_dropout'] if localized and
                                    m['node_level'] else 0.0),
                    output_elu=m['output_elu'],
                    # One fixed graph (transductive): keep its structure-only
                    # work between epochs, as PyG's examples cache GCN's
                    # normalization; checked on every call.
                    cached=True,
                    # load_data already chose the layout by density: spare
                    # the layers a density count of the features per call.
                    sparse_input=bool(data.x.is_sparse))

    def build_optimizer(self, cfg, model):
        # Localization parameters get their own (much stronger) L2.
        loc, rest = [], []
        for name, p in model.named_parameters():
            is_loc = any(k in name for k in ('node_loc', 'edge_loc',
                                             'msg_bias'))
            (loc if is_loc else rest).append(p)
        o = cfg['optim']
        groups = [{'params': rest, 'weight_decay': o['weight_decay']}]
        if loc:
            groups.append({'params': loc,
                           'weight_decay': o['loc_weight_decay']})
        return adam(groups, lr=o['lr'])

    def train_epoch(self, model, data, optimizer, cfg):
        model.train()
        optimizer.zero_grad()
        train_nodes = None
        if cfg['optim']['reg_scope'] == 'train':
            train_nodes = data.train_mask.nonzero().view(-1)
        out, reg = model(data.x, data.edge_index, return_regularizer=True,
                         output_nodes=train_nodes)
        loss = F.cross_entropy(out[data.train_mask], data.y[data.train_mask])
        loss = loss + cfg['optim']['reg_weight'] * reg
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    @torch.no_grad()
    def evaluate(self, model, data, cfg):
        model.eval()
        out = model(data.x, data.edge_index)
        pred = out.argmax(dim=-1)
        scores = {}
        for split in ('train', 'val', 'test'):
            mask = data[f'{split}_mask']
            scores[split] = float((pred[mask] == data.y[mask]).float().mean())
        scores['val_loss'] = float(
            F.cross_entropy(out[data.val_mask], data.y[data.val_mask]))
        return scores
