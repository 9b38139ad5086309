import pytest
import torch

from pyg_hyper.nn.models import LGNN
from pyg_hyper.nn.models.lgnn import dropout_features
from tests.nn.conv.lgnn_cases import EDGE_INDEX, features


@pytest.mark.parametrize('backbone', ['gcn', 'gat', 'gin'])
def test_backbones_forward_and_regularizer(backbone):
    model = LGNN(5, 4, 3, backbone=backbone, heads=2)
    out, reg = model(features(5), EDGE_INDEX, return_regularizer=True)
    assert out.shape == (6, 3) and reg > 0
    base = LGNN(5, 4, 3, backbone=backbone, node_level=False,
                edge_level=False, heads=2)
    assert base(features(5), EDGE_INDEX, return_regularizer=True)[1] == 0
    # The first layer factorizes its node-level projection through 4.
    assert model.conv1.node_loc.rank == 4 and model.conv2.node_loc.rank is None


def test_sparse_and_dense_features_agree_in_eval():
    model = LGNN(5, 4, 3).eval()
    x = features(5, sparse=True)
    assert torch.allclose(model(x, EDGE_INDEX), model(x.to_sparse(),
                                                      EDGE_INDEX), atol=1e-6)


def test_sparse_dropout_keeps_pattern_and_scale():
    torch.manual_seed(0)
    x = torch.ones(200, 50).to_sparse()
    out = dropout_features(x, 0.4, training=True).to_dense()
    kept = out != 0
    assert 0.5 < kept.float().mean() < 0.7
    assert torch.allclose(out[kept], torch.full_like(out[kept], 1 / 0.6))
    assert dropout_features(x, 0.4, training=False) is x


def test_unknown_backbone_lists_valid():
    with pytest.raises(ValueError, match="unknown backbone 'sage'; valid "
                       "backbones: gcn, gat, gin"):
        LGNN(5, 4, 3, backbone='sage')
