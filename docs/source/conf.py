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
suppress_warnings = ['autosummary.import_cycle']
