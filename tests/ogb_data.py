"""Locating and copying the real benchmark files in <repo>/../shared/data.

Loaders write ``processed/`` next to ``raw/`` and CI mounts shared/
read-only, so tests always load from a copy in ``tmp_path``.
"""
import shutil
import socket
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1] / '..' / 'shared' / 'data'


def shared_data(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f'benchmark data not found at {path.resolve()} (expected '
                    f'a shared/ folder beside the repository)')
    return path


def copy_ogb(name: str, root: Path) -> Path:
    """Copies OGB's ``ogbg_<name>`` folder into ``root``; returns ``root``."""
    folder = name.replace('-', '_')
    shutil.copytree(shared_data('OGB', folder), root / folder)
    return root


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails, so offline means offline."""
    def refuse(*args, **kwargs):
        raise OSError('network access is disabled in this test')
    monkeypatch.setattr(socket.socket, 'connect', refuse)
    monkeypatch.setattr(socket, 'create_connection', refuse)
