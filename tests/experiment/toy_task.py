"""A tiny registered task for runner tests: a small classifier on a fixed
random dataset, fast enough to run many epochs and seeds in a test."""
import torch
import torch.nn.functional as F

from pyg_hyper.experiment import Task, register_task


@register_task
class ToyTask(Task):
    name = 'toy'
    metric = 'accuracy'
    higher_is_better = True

    def default_config(self):
        return {
            'data': {'num_nodes': 60, 'num_features': 4},
            'model': {'hidden_channels': 8},
            'optim': {'lr': 0.05, 'weight_decay': 0.0},
        }

    def load_data(self, cfg, device):
        gen = torch.Generator().manual_seed(0)
        n, f = cfg['data']['num_nodes'], cfg['data']['num_features']
        x = torch.randn(n, f, generator=gen)
        y = (x[:, 0] + 0.3 * x[:, 1] > 0).long()
        idx = torch.arange(n)
        return {'x': x.to(device), 'y': y.to(device),
                'splits': {'train': idx[:n // 2], 'val': idx[n // 2:3 * n // 4],
                           'test': idx[3 * n // 4:]}}

    def build_model(self, cfg, data):
        return torch.nn.Sequential(
            torch.nn.Linear(data['x'].size(1), cfg['model']['hidden_channels']),
            torch.nn.ReLU(),
            torch.nn.Linear(cfg['model']['hidden_channels'], 2))

    def train_epoch(self, model, data, optimizer, cfg):
        model.train()
        optimizer.zero_grad()
        idx = data['splits']['train']
        loss = F.cross_entropy(model(data['x'][idx]), data['y'][idx])
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    @torch.no_grad()
    def evaluate(self, model, data, cfg):
        model.eval()
        pred = model(data['x']).argmax(-1)
        return {k: float((pred[i] == data['y'][i]).float().mean())
                for k, i in data['splits'].items()}

    def describe(self, cfg):
        return f"toy-h{cfg['model']['hidden_channels']}"
