"""``python -m pyg_hyper`` runs the ``pyg-hyper`` command."""
import sys

from pyg_hyper.cli import main

sys.exit(main())
