"""Every name a public package exports has a place in the API reference."""
import importlib
import re
import types
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / 'docs' / 'source'

#: The packages users import from; their ``__all__`` is the public API.
PUBLIC = ['pyg_hyper.nn', 'pyg_hyper.nn.conv', 'pyg_hyper.nn.models',
          'pyg_hyper.nn.dense', 'pyg_hyper.datasets', 'pyg_hyper.experiment',
          'pyg_hyper.utils', 'pyg_hyper.vision']


def documented_names():
    text = '\n'.join(p.read_text() for p in DOCS.rglob('*.rst')
                     if 'generated' not in p.parts)
    # Entries of autosummary lists (three-space indented bare names) and
    # auto* directives.
    names = set(re.findall(r'^ {3}~?([\w.]+)\s*$', text, re.M))
    names |= set(re.findall(r'^\.\. auto\w+:: ([\w.]+)', text, re.M))
    return {name.rsplit('.', 1)[-1] for name in names}


@pytest.mark.parametrize('package', PUBLIC)
def test_public_names_are_in_the_api_reference(package):
    module = importlib.import_module(package)
    exported = {name for name in module.__all__  # sub-packages have pages
                if not isinstance(getattr(module, name), types.ModuleType)}
    missing = sorted(exported - documented_names())
    assert not missing, (f"{package} exports {missing} but docs/source lists "
                         f"them in no autosummary or auto* directive")
