"""Sphinx configuration for pyg_hyper (builds offline)."""
import datetime
import os
import sys

sys.path.insert(0, os.path.abspath('../..'))
# Local extensions (the generated CLI reference).
sys.path.insert(0, os.path.abspath('_ext'))

import pyg_hyper  # noqa: E402

project = 'pyg_hyper'
author = 'pyg_hyper developers'
copyright = f'{datetime.datetime.now().year}, {author}'
version = pyg_hyper.__version__
release = pyg_hyper.__version__

extensions = [
    'sphinx.ext.autodoc',
    'sphinx.ext.autosummary',
    'sphinx.ext.mathjax',
    'sphinx.ext.napoleon',
    'sphinx.ext.viewcode',
    'cli_reference',
]

autosummary_generate = True
autodoc_member_order = 'bysource'
# Class pages document a class's own members (see
# _templates/autosummary/class.rst); an override without a docstring of its
# own (e.g. ``forward``) is left out instead of showing torch's or PyG's text.
autodoc_inherit_docstrings = False
add_module_names = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# MathJax is loaded by the reader's browser; nothing is fetched at build time.

templates_path = ['_templates']
exclude_patterns = ['_build']
html_theme = 'furo'
html_static_path = ['_static']
html_title = 'pyg_hyper'

nitpicky = False
# Names in signatures that have no page of their own, for ``-n`` builds: a
# TypeVar and a private record class.
nitpick_ignore = [
    ('py:class', 'pyg_hyper.datasets.cache.T'),
    ('py:class', 'pyg_hyper.datasets.node_classification._Spec'),
]
suppress_warnings = ['autosummary.import_cycle']


def _skip_namedtuple_fields(app, what, name, obj, skip, options):
    # A NamedTuple's fields are described in its class docstring; :members:
    # would add each again as "Alias for field number k".
    if type(obj).__name__ == '_tuplegetter':
        return True
    return None


def setup(app):
    app.connect('autodoc-skip-member', _skip_namedtuple_fields)
