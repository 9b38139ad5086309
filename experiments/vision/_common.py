"""Shared plumbing of the vision reproductions: seeding, one CPU thread,
data from scikit-learn, parameter counts, and atomic JSON + markdown records.
"""
import io
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from pyg_hyper.experiment.results import (  # noqa: E402
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    environment_record,
)

# VISION_RESULTS redirects the records, e.g. for smoke runs.
RESULTS = Path(os.environ.get('VISION_RESULTS',
                              Path(__file__).resolve().parent / 'results'))


def setup(seed: int) -> None:
    # The CPU is shared with other jobs: one thread keeps timings stable and
    # leaves the second core to others.
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    np.random.seed(seed)


def num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def fit(model: torch.nn.Module, steps: int, loss_fn, lr: float = 1e-3) -> int:
    """Adam for :obj:`steps` steps on :obj:`loss_fn(model)`, which draws its
    own batch; returns the training time in seconds."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    t0 = time.time()
    for _ in range(steps):
        loss = loss_fn(model)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return round(time.time() - t0)


def load_digits_tensor(size: int = 8) -> (torch.Tensor, torch.Tensor):
    """scikit-learn's 1,797 8x8 digits in [0, 1], optionally resized."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode='bilinear',
                          align_corners=False).clamp(0, 1)
    return x, torch.tensor(d.target)


def environment() -> Dict:
    """The runner's provenance record (command, versions, hardware) plus the
    versions of the data packages used here."""
    import sklearn
    record = environment_record('cpu')
    record.update({'numpy': np.__version__,
                   'scikit-learn': sklearn.__version__})
    return record


def markdown_table(header: Sequence[str], rows: List[Sequence]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f'{v:.4g}'
        return str(v)

    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(fmt(v) for v in row) + ' |' for row in rows]
    return '\n'.join(lines)


def save(name: str, seed: int, started: float, results: Dict,
         header: Sequence[str], rows: List[Sequence], claim: str,
         verdict: str, fig=None) -> None:
    """Writes results/<name>.json, .md and (if given) .png atomically."""
    command = 'python ' + ' '.join(
        [os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)] + sys.argv[1:])
    record = {
        'name': name,
        'command': command,
        'seed': seed,
        'runtime_s': round(time.time() - started, 1),
        'environment': environment(),
        'claim': claim,
        'verdict': verdict,
        'results': results,
    }
    atomic_write_json(str(RESULTS / f'{name}.json'), record)
    env = record['environment']
    md = [f'# {name}', '', f'Claim: {claim}', '',
          markdown_table(header, rows), '', f'Verdict: {verdict}', '',
          f'Command: `{command}`  ', f'Seed: {seed}  ',
          f"Runtime: {record['runtime_s']} s  ",
          f"Versions: python {env['python']}, torch {env['torch']}, "
          f"numpy {env['numpy']}, scikit-learn {env['scikit-learn']}  ",
          f"Hardware: {env['cpu']}, {env['cpu_count']} CPUs, "
          f"{env['torch_threads']} torch thread(s), {env['platform']}", '']
    atomic_write_text(str(RESULTS / f'{name}.md'), '\n'.join(md))
    if fig is not None:
        buffer = io.BytesIO()
        fig.savefig(buffer, format='png', dpi=90, bbox_inches='tight')
        atomic_write_bytes(str(RESULTS / f'{name}.png'), buffer.getvalue())
    print('\n'.join(md))
