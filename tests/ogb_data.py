"""Helpers for tests on the real OGB files in <repo>/../shared/data (see the
``shared_data`` fixture in conftest.py).

Loaders write ``processed/`` next to ``raw/`` and CI mounts shared/
read-only, so tests always load from a copy in ``tmp_path``.
"""
import shutil
import socket
from pathlib import Path

import pytest


def copy_ogb(shared_data: Path, name: str, root: Path) -> Path:
    """Copies OGB's ``ogbg_<name>`` folder into ``root``; returns ``root``."""
    folder = name.replace('-', '_')
    shutil.copytree(shared_data / 'OGB' / folder, root / folder)
    return root


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails, so offline means offline."""
    def refuse(*args, **kwargs):
        raise OSError('network access is disabled in this test')
    monkeypatch.setattr(socket.socket, 'connect', refuse)
    monkeypatch.setattr(socket, 'create_connection', refuse)
