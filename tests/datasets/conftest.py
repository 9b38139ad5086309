from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / '..' / 'shared' / 'data'


@pytest.fixture
def shared_data() -> Path:
    if not DATA.is_dir():
        pytest.skip(f'shared benchmark data not found at {DATA}')
    return DATA
