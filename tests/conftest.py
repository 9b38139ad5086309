from pathlib import Path

import pytest
import torch

# The benchmark data lives beside the repository (../shared/data), read-only.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / 'shared' / 'data'


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f'benchmark data folder {SHARED_DATA} is absent')
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _deterministic_seed():
    torch.manual_seed(12345)

