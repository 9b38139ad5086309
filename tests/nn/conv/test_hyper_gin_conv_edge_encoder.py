"""HyperGINConv's 'edge_encoder' option (categorical or pre-embedded edge
features, as OGB's BondEncoder provides)."""
import pytest
import torch

from pyg_hyper.nn.conv import HyperGINConv
from pyg_hyper.nn.models.ogb_mol import CategoricalEncoder

EDGE_INDEX = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 0, 0, 2],
                           [1, 0, 2, 1, 3, 2, 0, 3, 2, 0]])


def test_encoder_equals_linear_edge_map():
    torch.manual_seed(0)
    x = torch.randn(4, 8)
    edge_attr = torch.randn(EDGE_INDEX.size(1), 3)
    linear = HyperGINConv(8, 6, hyper_channels=4, edge_dim=3)
    encoded = HyperGINConv(8, 6, hyper_channels=4,
                           edge_encoder=torch.nn.Linear(3, 8))
    state = linear.state_dict()
    state = {k.replace('lin_edge', 'edge_encoder'): v
             for k, v in state.items()}
    encoded.load_state_dict(state)
    expected = linear(x, EDGE_INDEX, edge_attr)
    assert torch.allclose(encoded(x, EDGE_INDEX, edge_attr), expected,
                          atol=1e-6)
    # Pre-embedded edge features: the identity encoder.
    identity = HyperGINConv(8, 6, hyper_channels=4,
                            edge_encoder=torch.nn.Identity())
    identity.load_state_dict(state, strict=False)
    out = identity(x, EDGE_INDEX, linear.lin_edge(edge_attr))
    assert torch.allclose(out, expected, atol=1e-6)


def test_encoded_edge_message_is_relu_of_neighbour_plus_embedding():
    # GINE's message with the encoder's embedding, written out:
    # m_i = (1 + eps) x_i + sum_j ReLU(x_j + enc(e_ji)). Comparing with the
    # linear edge map (above) cannot see the ReLU: both branches share it.
    torch.manual_seed(0)
    conv = HyperGINConv(8, 6, hyper_channels=4, eps=0.25,
                        edge_encoder=torch.nn.Identity()).double()
    x = torch.randn(4, 8, dtype=torch.double)
    embedded = torch.randn(EDGE_INDEX.size(1), 8, dtype=torch.double)
    src, dst = EDGE_INDEX
    pre = x[src] + embedded
    assert (pre < 0).any() and (pre > 0).any()  # the ReLU has work to do
    expected = (1.25 * x).index_add(0, dst, pre.relu())
    _, message = conv(x, EDGE_INDEX, embedded, return_message=True)
    assert torch.allclose(message, expected, atol=1e-12)


def test_categorical_edge_features_and_reference_path():
    torch.manual_seed(1)
    x = torch.randn(4, 8)
    bonds = torch.randint(0, 3, (EDGE_INDEX.size(1), 2))
    conv = HyperGINConv(8, 8, hyper_channels=4, train_eps=True,
                        edge_encoder=CategoricalEncoder([3, 3], 8))
    out = conv(x, EDGE_INDEX, bonds)
    assert out.shape == (4, 8)
    conv.materialize = True
    assert torch.allclose(conv(x, EDGE_INDEX, bonds), out, atol=1e-5)
    out.sum().backward()
    assert all(p.grad is not None
               for p in conv.edge_encoder.parameters())
    # reset_parameters reaches the encoder.
    before = conv.edge_encoder.embeddings[0].weight.clone()
    conv.reset_parameters()
    assert not torch.equal(before, conv.edge_encoder.embeddings[0].weight)


def test_edge_encoder_bad_input():
    with pytest.raises(ValueError, match="either 'edge_dim'.*or "
                       "'edge_encoder', not both"):
        HyperGINConv(8, 8, edge_dim=3, edge_encoder=torch.nn.Linear(3, 8))
    conv = HyperGINConv(8, 8, hyper_channels=4,
                        edge_encoder=torch.nn.Linear(3, 5))
    x = torch.randn(4, 8)
    with pytest.raises(ValueError, match="needs 'edge_attr'"):
        conv(x, EDGE_INDEX)
    with pytest.raises(ValueError, match=r"expected 'edge_attr' of shape "
                       r"\[num_edges, 8\] \(got \[10, 5\]\)"):
        conv(x, EDGE_INDEX, torch.randn(10, 3))
    # One message for a sparse adjacency, not 'needs edge_attr' followed by
    # 'a separate edge_attr is not allowed'.
    from torch_geometric.utils import to_torch_csc_tensor
    adj_t = to_torch_csc_tensor(EDGE_INDEX, size=(4, 4)).t()
    for edge_attr in (None, torch.randn(10, 3)):
        with pytest.raises(ValueError, match="'edge_encoder' and needs "
                           r"'edge_index' as a \[2, num_edges\] tensor"):
            conv(x, adj_t, edge_attr)


def test_reset_parameters_reaches_any_edge_encoder():
    # A Sequential has no reset_parameters() of its own (nor has OGB's
    # BondEncoder); its weights used to survive a reset.
    torch.manual_seed(0)
    conv = HyperGINConv(8, 8, hyper_channels=4, edge_encoder=torch.nn.Sequential(
        torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8)))
    for p in conv.edge_encoder.parameters():
        p.data.fill_(float('nan'))
    conv.reset_parameters()
    assert all(torch.isfinite(p).all() for p in conv.edge_encoder.parameters())


def test_edge_encoder_compiles_without_graph_breaks():
    conv = HyperGINConv(8, 8, hyper_channels=4,
                        edge_encoder=CategoricalEncoder([3, 3], 8))
    x = torch.randn(4, 8)
    bonds = torch.randint(0, 3, (EDGE_INDEX.size(1), 2))
    explanation = torch._dynamo.explain(conv)(x, EDGE_INDEX, bonds)
    assert explanation.graph_break_count == 0
