r"""The tutorials' Python code must stay runnable as written.

Every ``.. code-block:: python`` of a tutorial in ``docs/source/tutorials``
runs in order in one namespace, as a reader pasting them would, from an empty
working directory (``tmp_path``) that holds only the data the tutorial says
to put there. Shell blocks (``.. code-block:: bash``) are not run.

Where a block would train for minutes or build a dataset CI cannot afford,
the test edits the code through a visible per-tutorial table of textual
replacements (``old -> new``), each of which must match exactly once, so a
replacement that no longer matches the tutorial fails instead of silently
running the unedited code. Everything else runs verbatim.
"""
import math
import re
import shutil
import textwrap
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
import torch

from pyg_hyper.datasets.qm9 import find_qm9pack_data
from tests.ogb_data import copy_ogb, no_network  # noqa: F401

TUTORIALS = Path(__file__).resolve().parents[1] / 'docs' / 'source' / \
    'tutorials'

_DIRECTIVE = re.compile(r'^(\s*)\.\. code-block::\s*python3?\s*$')


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def python_blocks(text: str) -> List[Tuple[int, str]]:
    r"""The ``.. code-block:: python`` blocks of reST :obj:`text`, as
    ``(line of the first code line, 1-based; dedented code)``. Directive
    options (``:caption:`` etc.) are skipped; the block ends at the first
    non-blank line indented no deeper than the directive."""
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        match = _DIRECTIVE.match(lines[i])
        if match is None:
            i += 1
            continue
        base = len(match.group(1))
        i += 1
        while i < len(lines) and lines[i].strip().startswith(':') \
                and _indent(lines[i]) > base:
            i += 1  # directive options
        body = []
        while i < len(lines) and (not lines[i].strip()
                                  or _indent(lines[i]) > base):
            body.append(lines[i])
            i += 1
        first = next((k for k, line in enumerate(body) if line.strip()), None)
        if first is None:
            continue
        start = i - len(body) + first + 1
        blocks.append((start, textwrap.dedent('\n'.join(body[first:]))
                       .rstrip() + '\n'))
    return blocks


def run_tutorial(name: str,
                 replacements: Optional[Dict[str, str]] = None) -> dict:
    r"""Runs tutorial :obj:`name`'s Python blocks in order in one namespace
    and returns it. Each ``old -> new`` of :obj:`replacements` must occur
    exactly once in the tutorial's code. Tracebacks name the ``.rst`` file
    and its line numbers."""
    path = TUTORIALS / name
    blocks = python_blocks(path.read_text())
    assert blocks, f'{name} has no python code blocks'
    replacements = dict(replacements or {})
    for old in replacements:
        count = sum(code.count(old) for _, code in blocks)
        assert count == 1, (f'replacement {old!r} matches {count} times in '
                            f"{name}'s code (expected once): update the "
                            f'test to the tutorial')
    scope = {'__name__': f'tutorial_{path.stem}'}
    for line, code in blocks:
        for old, new in replacements.items():
            code = code.replace(old, new)
        # Pad so that tracebacks point at the tutorial's own lines.
        exec(compile('\n' * (line - 1) + code, str(path), 'exec'), scope)
    return scope


def test_parser():
    text = ('Intro\n\n.. code-block:: python\n   :caption: x\n\n'
            '   a = 1\n   if a:\n\n       b = 2\n\nProse.\n\n'
            '.. code-block:: bash\n\n   ls\n\n'
            '  .. code-block:: python\n\n     c = 3\n')
    assert python_blocks(text) == [(6, 'a = 1\nif a:\n\n    b = 2\n'),
                                   (19, 'c = 3\n')]


def test_every_tutorial_is_tested():
    # A new tutorial with Python code needs a test here.
    with_code = {p.name for p in TUTORIALS.glob('*.rst')
                 if python_blocks(p.read_text())}
    assert with_code == {
        'dense_hypernetworks.rst', 'lgnn.rst', 'ogb_leaderboard.rst',
        'qm9_hyper_nmp_edge.rst', 'vision.rst'}


def test_replacement_must_match():
    with pytest.raises(AssertionError, match='matches 0 times'):
        run_tutorial('vision.rst', {'no such code': ''})


def test_vision_tutorial():
    scope = run_tutorial('vision.rst')
    # The last frame prediction and filters are DFN's (local filtering).
    assert scope['next_frame'].shape == (8, 1, 32, 32)
    assert scope['filters'].shape == (8, 81, 32, 32)
    assert scope['sr'].shape == scope['bicubic'].shape == (4, 1, 33, 33)
    assert scope['y'].shape == (2, 16, 32, 32)
    # HyperConv2d's parameter count as the prose gives it.
    conv = scope['conv']
    assert sum(p.numel() for p in conv.parameters()) == 388 + 5 * 16 * 16 + 16
    assert scope['logits'].shape == (2, 2, 32, 32)
    assert torch.isfinite(scope['logits']).all()


def test_dense_hypernetworks_tutorial(shared_data, tmp_path, monkeypatch):
    # The tutorial reads MUTAG's raw TU files from data/TUDataset.
    shutil.copytree(shared_data / 'TUDataset' / 'MUTAG' / 'raw',
                    tmp_path / 'data' / 'TUDataset' / 'MUTAG' / 'raw')
    monkeypatch.chdir(tmp_path)
    scope = run_tutorial('dense_hypernetworks.rst')
    C, x, mask, h, g = (scope[k] for k in ('C', 'x', 'mask', 'h', 'g'))
    m = mask.size(1)
    assert C == 7
    assert x.shape == (5, 1 + C, m, m) and mask.shape == (5, m)
    assert int(mask.sum(1).max()) == m  # m is the largest graph
    assert g.shape == (5, 32)  # diag_offdiag_pool of 16 channels
    assert h.shape == (5, 32, m, m) and torch.isfinite(h).all()
    pad = ~(mask.unsqueeze(1) & mask.unsqueeze(2))
    assert (h.permute(0, 2, 3, 1)[pad] == 0).all()


@pytest.mark.slow
def test_lgnn_tutorial(tmp_path, monkeypatch, no_network):  # noqa: F811
    # Cora ships with the package: no download, no shared data.
    monkeypatch.chdir(tmp_path)
    scope = run_tutorial('lgnn.rst', {
        # 200 epochs take ~15 s on one core; 30 already fit Cora well.
        'for epoch in range(200):': 'for epoch in range(30):',
    })
    assert math.isfinite(scope['loss'].item())
    assert math.isfinite(scope['reg'].item()) and scope['reg'].item() >= 0
    model, data = scope['model'], scope['data']
    model.eval()
    with torch.no_grad():
        out, _ = model(scope['x'], data.edge_index)
    assert out.shape == (data.num_nodes, 7)
    acc = (out.argmax(-1) == data.y)[data.test_mask].float().mean()
    assert acc > 0.5  # 7 classes


@pytest.mark.slow
def test_ogb_leaderboard_tutorial(shared_data, tmp_path, monkeypatch,
                                  no_network):  # noqa: F811
    copy_ogb(shared_data, 'ogbg-molhiv', tmp_path / 'data' / 'OGB')
    monkeypatch.chdir(tmp_path)
    moleculenet = shared_data / 'MoleculeNet'
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        scope = run_tutorial('ogb_leaderboard.rst', {
            # The tutorial runs from the repository root, beside shared/.
            "'../shared/data/MoleculeNet'": repr(str(moleculenet)),
        })
    dataset, split = scope['dataset'], scope['split']
    assert len(dataset) == 41127
    assert sum(len(v) for v in split.values()) == len(dataset)
    assert scope['evaluator'].name == 'ogbg-molhiv'

    # Invalid SMILES are counted, listed and warned about.
    report = scope['report']
    assert report.num_invalid > 0
    assert report.num_graphs + report.num_invalid == report.num_rows
    assert sum(report.split_sizes.values()) == report.num_graphs
    assert (tmp_path / 'data' / 'OGB' / 'ogbg_moltox21' / 'mapping' /
            'invalid_smiles.csv').is_file()
    assert any('invalid for RDKit' in str(w.message) for w in caught)

    # The cheap Hyper-GIN has fewer parameters than GIN, as stated.
    gin, hyper = scope['gin'], scope['hyper']
    assert sum(p.numel() for p in hyper.parameters()) < \
        sum(p.numel() for p in gin.parameters())
    from torch_geometric.loader import DataLoader
    batch = next(iter(DataLoader(dataset[split['train']], batch_size=8)))
    for model in (gin, hyper):
        model.eval()
        with torch.no_grad():
            out = model(batch.x, batch.edge_index, batch.edge_attr,
                        batch.batch)
        assert out.shape == (8, 1) and torch.isfinite(out).all()


@pytest.mark.skipif(find_qm9pack_data() is None,
                    reason='qm9pack is not installed (pip install qm9pack)')
@pytest.mark.slow
def test_qm9_tutorial(tmp_path, monkeypatch, no_network):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    scope = run_tutorial('qm9_hyper_nmp_edge.rst', {
        # All 130,831 molecules take 1-2 min to build; the first 300 keep
        # the standard split's fractions (get_idx_split).
        "QM9('data/QM9')": "QM9('data/QM9', max_molecules=300, "
                           "num_workers=1)",
        # Inductor's code generation takes about a minute on a CPU core;
        # the eager backend still traces the model with Dynamo.
        'torch.compile(model, dynamic=True)':
            "torch.compile(model, dynamic=True, backend='eager')",
    })
    dataset, split = scope['dataset'], scope['split']
    assert len(dataset) == 300
    assert sum(len(v) for v in split.values()) == 300
    assert len(split['train']) == round(300 * 110000 / 130831)
    assert math.isfinite(scope['loss'].item())
    assert math.isfinite(scope['test_mae']) and scope['test_mae'] > 0

    # The compiled call (explicit edges and molecule count) predicts what
    # the plain call does.
    model, batch = scope['model'], scope['batch']
    model.eval()
    with torch.no_grad():
        plain = model(batch.z, batch.pos, batch.batch).view(-1)
        compiled = scope['compiled'](
            batch.z, batch.pos, batch.batch,
            scope['molecular_graph'](batch.pos, batch.batch),
            batch.num_graphs).view(-1)
    assert plain.shape == (batch.num_graphs,)
    torch.testing.assert_close(compiled, plain)
