import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / 'README.md'


def test_readme_example_runs():
    # The README's model example must stay runnable as written.
    code = re.findall(r'```python\n(.*?)```', README.read_text(), re.S)[0]
    scope = {}
    exec(compile(code, str(README), 'exec'), scope)
    model = scope['Net'](in_channels=5, hidden=8, out_channels=2, edge_dim=3)
    edge_index = torch.tensor([[0, 1, 1, 2, 3, 4], [1, 0, 2, 1, 4, 3]])
    out = model(torch.randn(5, 5), edge_index, torch.randn(6, 3),
                torch.tensor([0, 0, 0, 1, 1]))
    assert out.shape == (2, 2)
    assert torch.isfinite(out).all()


def test_readme_commands_match_ci():
    # .ci/run must call exactly the README's test command.
    text = README.read_text()
    ci = (README.parent / '.ci' / 'run').read_text()
    command = ('pip install torch==2.13.0 && pip install -e ".[all]" && '
               'python -m pytest -q')
    assert command in text and command in ci
