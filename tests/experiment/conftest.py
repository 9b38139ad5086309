import pytest

# Importing registers the 'toy' task.
from tests.experiment.toy_task import ToyTask  # noqa: F401


@pytest.fixture
def toy_config(tmp_path):
    path = tmp_path / 'toy.yaml'
    path.write_text('task: toy\nepochs: 30\nseeds: 3\npatience: 10\n'
                    'model:\n  hidden_channels: 8\n')
    return str(path)

