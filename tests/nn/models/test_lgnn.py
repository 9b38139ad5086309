import pytest
import torch

from pyg_hyper.nn.models import LGNN
from pyg_hyper.nn.models.lgnn import dropout_features, in_neighbourhood
from tests.nn.conv.lgnn_cases import EDGE_INDEX, NUM_NODES, features


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
    # Dense forced: these features are sparse enough for the automatic
    # choice to take the sparse path too, which would compare it with itself.
    torch.manual_seed(0)
    dense = LGNN(5, 4, 3, sparse_input=False).eval()
    sparse = LGNN(5, 4, 3).eval()
    sparse.load_state_dict(dense.state_dict())
    x = features(5, sparse=True)
    assert torch.allclose(dense(x, EDGE_INDEX), sparse(x.to_sparse(),
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


def test_in_neighbourhood():
    from torch_geometric.utils import to_torch_csc_tensor
    adj_t = to_torch_csc_tensor(EDGE_INDEX, size=(NUM_NODES, NUM_NODES)).t()
    for adj in (EDGE_INDEX, adj_t):
        assert in_neighbourhood(adj, torch.tensor([1]), NUM_NODES).tolist() \
            == [0, 1, 2]
        assert in_neighbourhood(adj, torch.tensor([0, 5]),
                                NUM_NODES).tolist() == [0, 1, 4, 5]


def written_out_regularizer(model, x, edge_index, first_layer_nodes,
                            nodes):
    """The two layers' regularizers at the given nodes, layer by layer: the
    first layer's scales at :obj:`first_layer_nodes` (the nodes and their
    in-neighbours), the second's at :obj:`nodes`."""
    h = torch.nn.functional.elu(model.conv1(x, edge_index))
    return (model.conv1(x, edge_index, return_regularizer=True,
                        reg_index=first_layer_nodes)[1] +
            model.conv2(h, edge_index, return_regularizer=True,
                        reg_index=nodes)[1])


@pytest.mark.parametrize('backbone', ['gcn', 'gat', 'gin'])
def test_regularizer_scoped_to_reg_nodes(backbone):
    model = LGNN(5, 4, 3, backbone=backbone, heads=2).eval()
    x = features(5)
    out, reg = model(x, EDGE_INDEX, return_regularizer=True)
    # Evaluation skips the regularizer, not the localization.
    assert torch.allclose(model(x.to_sparse(), EDGE_INDEX), out, atol=1e-6)
    everyone = torch.arange(NUM_NODES)
    _, same = model(x, EDGE_INDEX, return_regularizer=True,
                    reg_nodes=everyone)
    assert torch.allclose(reg, same)
    nodes = torch.tensor([1])
    out_scoped, scoped = model(x, EDGE_INDEX, return_regularizer=True,
                               reg_nodes=nodes)
    assert torch.allclose(out, out_scoped)
    # Layer 1 over node 1 and its in-neighbours, layer 2 over node 1.
    assert torch.allclose(scoped, written_out_regularizer(
        model, x, EDGE_INDEX, torch.tensor([0, 1, 2]), nodes))


def test_loc_init_reaches_every_layer():
    model = LGNN(5, 4, 3, backbone='gat', heads=2, loc_init='he')
    for conv in (model.conv1, model.conv2):
        assert conv.node_loc.init == conv.edge_loc.init == 'he'


@pytest.mark.parametrize('backbone', ['gcn', 'gat', 'gin'])
@pytest.mark.parametrize('sparse', [False, True])
def test_output_nodes_compute_their_receptive_field_only(backbone, sparse):
    torch.manual_seed(0)
    model = LGNN(5, 4, 3, backbone=backbone, heads=2, dropout=0.0).double()
    x = features(5, sparse=True, dtype=torch.float64)
    x = x.to_sparse() if sparse else x
    nodes = torch.tensor([1, 5])
    out, reg = model(x, EDGE_INDEX, return_regularizer=True, reg_nodes=nodes)
    (out[nodes].sum() + reg).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    field, field_reg = model(x, EDGE_INDEX, return_regularizer=True,
                             output_nodes=nodes)
    assert torch.allclose(field[nodes], out[nodes])
    assert field[[0, 2, 3, 4]].abs().max() == 0
    assert torch.allclose(field_reg, reg)
    (field[nodes].sum() + field_reg).backward()
    for (name, p), g in zip(model.named_parameters(), grads):
        assert torch.allclose(p.grad, g), name
    with pytest.raises(ValueError, match="subset of 'output_index'"):
        model(x, EDGE_INDEX, return_regularizer=True, output_nodes=nodes,
              reg_nodes=torch.tensor([0, 1]))


@pytest.mark.parametrize('backbone', ['gcn', 'gat', 'gin'])
def test_message_dropout_and_output_elu(backbone):
    torch.manual_seed(0)
    plain = LGNN(5, 4, 3, backbone=backbone, heads=2, dropout=0.0)
    model = LGNN(5, 4, 3, backbone=backbone, heads=2, dropout=0.0,
                 message_dropout=0.5, output_elu=True)
    model.load_state_dict(plain.state_dict())
    x = features(5)
    assert model.conv1.message_dropout == 0.5
    # Evaluation: no message dropout, ELU on the logits.
    model.eval(), plain.eval()
    assert torch.allclose(model(x, EDGE_INDEX),
                          torch.nn.functional.elu(plain(x, EDGE_INDEX)))
    # Training: the messages are dropped (rescaled), so outputs differ.
    model.train()
    torch.manual_seed(1)
    assert not torch.allclose(model(x, EDGE_INDEX), model(x, EDGE_INDEX))
    with pytest.raises(ValueError, match=r"expected 'message_dropout' in "
                       r"\[0, 1\) \(got 1.0\)"):
        LGNN(5, 4, 3, backbone=backbone, message_dropout=1.0)


@pytest.mark.parametrize('backbone', ['gcn', 'gat', 'gin'])
@pytest.mark.parametrize('levels', [(True, True), (True, False),
                                    (False, True)])
def test_cached_equals_uncached_and_follows_graph_changes(backbone, levels):
    node_level, edge_level = levels
    torch.manual_seed(0)
    kw = dict(backbone=backbone, heads=2, dropout=0.3, node_level=node_level,
              edge_level=edge_level, message_dropout=0.2,
              weight_dropout=0.2 if node_level else 0.0)
    plain = LGNN(5, 4, 3, **kw).double()
    cached = LGNN(5, 4, 3, cached=True, **kw).double()
    cached.load_state_dict(plain.state_dict())
    x = features(5, sparse=True, dtype=torch.float64).to_sparse()
    other_x = features(5, sparse=True, seed=1, dtype=torch.float64)
    edge_index = EDGE_INDEX.clone()
    nodes = torch.tensor([1, 5])
    # training field, whole graph, field again; then an in-place edit of
    # the graph and a feature matrix with another pattern
    steps = [(x, None, nodes), (x, None, None), (x, None, nodes),
             (x, 'edit', nodes), (other_x.to_sparse(), None, nodes),
             (other_x, None, None)]
    for step, (inp, edit, output_nodes) in enumerate(steps):
        if edit:
            edge_index[1, 0] = 2  # 0 -> 2 instead of 0 -> 1
        grads = []
        for model in (plain, cached):
            model.zero_grad()
            torch.manual_seed(step)  # the same dropout masks
            out, reg = model(inp, edge_index, return_regularizer=True,
                             output_nodes=output_nodes)
            (out.pow(2).sum() + reg).backward()
            grads.append([p.grad.clone() for p in model.parameters()])
            if model is plain:
                ref_out, ref_reg = out, reg
        assert torch.allclose(out, ref_out), step
        assert torch.allclose(reg, ref_reg), step
        for (name, _), g, h in zip(plain.named_parameters(), *grads):
            assert torch.allclose(g, h), (step, name)
    structure = cached.conv1._structure
    assert structure.hits > 0 and structure.misses > 0
    assert plain.conv1._structure is None


def test_reset_parameters_clears_the_cache():
    model = LGNN(5, 4, 3, cached=True)
    x = features(5, sparse=True).to_sparse()
    model(x, EDGE_INDEX)
    assert len(model.conv1._structure) > 0
    model.reset_parameters()
    assert len(model.conv1._structure) == 0


def test_sparse_input_fixes_the_first_layers_path(monkeypatch):
    import pyg_hyper.nn.conv.localized_conv as localized_conv
    torch.manual_seed(0)
    x = features(5, sparse=True)  # dense storage, few non-zeros
    auto = LGNN(5, 4, 3).eval()
    dense = LGNN(5, 4, 3, sparse_input=False).eval()
    dense.load_state_dict(auto.state_dict())
    assert dense.conv1.sparse_input is False
    assert dense.conv2.sparse_input is None  # hidden features: decided
    expected = auto(x, EDGE_INDEX)  # takes the sparse path

    def no_sparse_path(*args, **kwargs):
        raise AssertionError('sparse path taken')
    monkeypatch.setattr(localized_conv, 'feature_nonzeros', no_sparse_path)
    assert torch.allclose(dense(x, EDGE_INDEX), expected, atol=1e-6)
    with pytest.raises(AssertionError, match='sparse path taken'):
        auto(x, EDGE_INDEX)


@pytest.mark.parametrize('backbone', ['gcn', 'gat', 'gin'])
def test_output_nodes_with_levels_off(backbone):
    # The baselines' shortcuts (GAT scores its sources per node) must give
    # the receptive field's outputs exactly as well.
    torch.manual_seed(0)
    model = LGNN(5, 4, 3, backbone=backbone, heads=2, dropout=0.0,
                 node_level=False, edge_level=False).double()
    x = features(5, dtype=torch.float64)
    nodes = torch.tensor([1, 5])
    full = model(x, EDGE_INDEX)
    field = model(x, EDGE_INDEX, output_nodes=nodes)
    assert torch.allclose(field[nodes], full[nodes])


@pytest.mark.parametrize('key', ['reg_nodes', 'output_nodes'])
def test_out_of_range_node_subsets_are_named(key):
    # They index the neighbourhood masks before the layers check them, and
    # used to fail there with a bare IndexError.
    model = LGNN(5, 4, 3)
    with pytest.raises(ValueError, match=rf"'LGNN' found indices out of "
                       rf"range in '{key}' \(smallest 1, largest 9, for 6 "
                       rf"nodes\)"):
        model(features(5), EDGE_INDEX, True, **{key: torch.tensor([1, 9])})


@pytest.mark.parametrize('weight_dropout', [0.0, 0.4])
@pytest.mark.parametrize('backbone', ['gcn', 'gat', 'gin'])
def test_compiles_without_graph_breaks(backbone, weight_dropout):
    # A training forward with the regularizer, whole graph, dense features;
    # the official configs' weight dropout drew its seed as a Python int.
    torch._dynamo.reset()
    model = LGNN(5, 4, 3, backbone=backbone, heads=2,
                 weight_dropout=weight_dropout)
    explain = torch._dynamo.explain(model)(features(5), EDGE_INDEX,
                                           return_regularizer=True)
    assert explain.graph_break_count == 0, explain.break_reasons


@pytest.mark.parametrize('key', ['output_nodes', 'reg_nodes'])
def test_out_of_range_edges_are_named_with_a_node_subset(key):
    # The receptive field indexed with them before any layer checked them.
    bad = EDGE_INDEX.clone()
    bad[0, 0] = NUM_NODES + 1
    with pytest.raises(ValueError, match='out of range'):
        LGNN(5, 4, 3)(features(5), bad, **{key: torch.tensor([1, 5])})


@pytest.mark.parametrize('backbone', ['gcn', 'gat', 'gin'])
def test_cached_model_trains_after_an_inference_mode_evaluation(backbone):
    # The training step after it uses the entries cached then; it must
    # give the gradients of a model that never cached anything.
    torch.manual_seed(0)
    model = LGNN(5, 4, 3, backbone=backbone, heads=2, cached=True,
                 dropout=0.0)
    fresh = LGNN(5, 4, 3, backbone=backbone, heads=2, dropout=0.0)
    fresh.load_state_dict(model.state_dict())
    x = features(5)
    with torch.inference_mode():
        model.eval()(x, EDGE_INDEX)
    for m in (model, fresh):
        out, reg = m.train()(x, EDGE_INDEX, return_regularizer=True)
        (out.sum() + reg).backward()
    for (name, p), q in zip(model.named_parameters(), fresh.parameters()):
        assert p.grad is not None and torch.allclose(p.grad, q.grad), name


# A directed 5-ring, 0 -> 1 -> 2 -> 3 -> 4 -> 0, and the isolated node 5:
# in-neighbours and out-neighbours differ (on the undirected graph of the
# other tests they coincide, and a receptive field built from the
# out-neighbours, or from an adjacency read without its transpose, passes).
DIRECTED_RING = torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 0]])


def _directed_inputs():
    from torch_geometric.utils import to_torch_csc_tensor
    adj_t = to_torch_csc_tensor(DIRECTED_RING,
                                size=(NUM_NODES, NUM_NODES)).t()
    return {'edge_index': DIRECTED_RING, 'adjacency': adj_t}


@pytest.mark.parametrize('kind', ['edge_index', 'adjacency'])
def test_in_neighbourhood_of_a_directed_graph(kind):
    adj = _directed_inputs()[kind]
    # Node 2 reads its source 1, not its target 3.
    assert in_neighbourhood(adj, torch.tensor([2]), NUM_NODES).tolist() \
        == [1, 2]
    assert in_neighbourhood(adj, torch.tensor([0, 5]), NUM_NODES).tolist() \
        == [0, 4, 5]


@pytest.mark.parametrize('kind', ['edge_index', 'adjacency'])
@pytest.mark.parametrize('backbone', ['gcn', 'gat', 'gin'])
def test_node_subsets_on_a_directed_graph(backbone, kind):
    # output_nodes gives the full forward's logits at those nodes, and
    # reg_nodes the regularizer over the first layer's scales at them and
    # their in-neighbours, on a graph whose edges go one way only.
    torch.manual_seed(0)
    model = LGNN(5, 4, 3, backbone=backbone, heads=2, dropout=0.0).double()
    x = features(5, dtype=torch.float64)
    adj = _directed_inputs()[kind]
    nodes = torch.tensor([2, 5])
    full, reg = model(x, adj, return_regularizer=True, reg_nodes=nodes)
    field, field_reg = model(x, adj, return_regularizer=True,
                             output_nodes=nodes)
    assert torch.allclose(field[nodes], full[nodes])
    assert torch.allclose(field_reg, reg)
    # The regularizer written out: layer 1 at 1, 2 and 5, layer 2 at 2, 5.
    assert torch.allclose(reg, written_out_regularizer(
        model, x, DIRECTED_RING, torch.tensor([1, 2, 5]), nodes))
