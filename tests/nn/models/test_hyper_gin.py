import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.nn import GINConv, GINEConv, global_add_pool

from pyg_hyper.nn.conv import HyperGINConv
from pyg_hyper.nn.models import HyperGIN


def _graphs(num_graphs=6, edge_dim=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    graphs = []
    for i in range(num_graphs):
        n = 3 + i % 4
        src = torch.arange(n - 1)
        edge_index = torch.stack([torch.cat([src, src + 1]),
                                  torch.cat([src + 1, src])])
        graphs.append(
            Data(x=torch.randn(n, 5, generator=gen), edge_index=edge_index,
                 edge_attr=torch.randn(edge_index.size(1), edge_dim,
                                       generator=gen),
                 y=torch.tensor([float(n % 2)])))
    return graphs


@pytest.mark.parametrize('hyper', [True, False])
def test_shapes_and_layer_types(hyper):
    model = HyperGIN(5, 16, 3, num_layers=3, hyper=hyper, edge_dim=2)
    layer_type = HyperGINConv if hyper else GINEConv
    assert all(isinstance(conv, layer_type) for conv in model.convs)
    batch = Batch.from_data_list(_graphs())
    out = model(batch.x, batch.edge_index, batch.edge_attr, batch.batch,
                batch_size=batch.num_graphs)
    assert out.shape == (6, 3)
    assert str(model) == (f'HyperGIN(5, 16, 3, num_layers=3, '
                          f'hyper={hyper}, readout=last)')
    plain = HyperGIN(5, 16, 3, num_layers=2, hyper=False)
    assert isinstance(plain.convs[0], GINConv)


@pytest.mark.parametrize('readout', ['last', 'layers'])
@pytest.mark.parametrize('hyper', [True, False])
def test_batch_equals_graphs_one_by_one(hyper, readout):
    model = HyperGIN(5, 8, 2, num_layers=3, hyper=hyper, edge_dim=2,
                     readout=readout).double()
    model.eval()
    graphs = _graphs()
    batch = Batch.from_data_list(graphs)
    batched = model(batch.x.double(), batch.edge_index,
                    batch.edge_attr.double(), batch.batch, batch.num_graphs)
    single = torch.cat([
        model(g.x.double(), g.edge_index, g.edge_attr.double())
        for g in graphs
    ])
    assert torch.allclose(batched, single, atol=1e-10)


def test_first_message_is_passed_to_later_layers():
    model = HyperGIN(5, 8, 1, num_layers=2, edge_dim=2)
    model.eval()
    seen = []
    model.convs[1].register_forward_hook(
        lambda mod, args, kwargs, out: seen.append(kwargs['first_message']),
        with_kwargs=True)
    g = _graphs(1)[0]
    model(g.x, g.edge_index, g.edge_attr)
    _, first = model.convs[0](g.x, g.edge_index, g.edge_attr,
                              return_message=True)
    assert torch.allclose(seen[0], first)


@pytest.mark.parametrize('combine', ['concat', 'convex'])
def test_factorized_model_equals_materialized_with_gradients(combine):
    # The input width (5) differs from the hidden width (8): 'convex' maps
    # the first message to the hidden width in the later layers.
    torch.manual_seed(0)
    kwargs = dict(num_layers=3, edge_dim=2, hyper_channels=4,
                  combine=combine, dropout=0.0)
    factorized = HyperGIN(5, 8, 2, **kwargs).double()
    materialized = HyperGIN(5, 8, 2, materialize=True, **kwargs).double()
    materialized.load_state_dict(factorized.state_dict())
    batch = Batch.from_data_list(_graphs())
    outs = []
    for model in (factorized, materialized):
        out = model(batch.x.double(), batch.edge_index,
                    batch.edge_attr.double(), batch.batch, batch.num_graphs)
        out.pow(2).sum().backward()
        outs.append(out)
    assert torch.allclose(outs[0], outs[1], atol=1e-10)
    for (name, p), q in zip(factorized.named_parameters(),
                            materialized.parameters()):
        # The first layer mixes its message with itself: its c is inert.
        inert = name == 'convs.0.combiner.logit'
        assert p.grad is not None and (p.grad.abs().sum() > 0) != inert, name
        assert torch.allclose(p.grad, q.grad, atol=1e-9), name
    if combine == 'convex':
        assert factorized.convs[0].combiner.first_lin is None
        assert factorized.convs[1].combiner.first_lin is not None


def test_learns_a_toy_task():
    torch.manual_seed(0)
    batch = Batch.from_data_list(_graphs(8))
    model = HyperGIN(5, 16, 1, num_layers=2, edge_dim=2, dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        out = model(batch.x, batch.edge_index, batch.edge_attr, batch.batch,
                    batch.num_graphs).view(-1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            out, batch.y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize('hyper', [True, False])
def test_layers_readout_sums_a_head_per_layer(hyper):
    # The GIN paper's readout: the input and every layer are sum-pooled and
    # get their own head; dropout hits the predictions, not the layers.
    model = HyperGIN(5, 8, 3, num_layers=2, hyper=hyper, edge_dim=2,
                     readout='layers', dropout=0.5).double()
    assert [h.in_features for h in model.heads] == [5, 8, 8]
    batch = Batch.from_data_list(_graphs())
    x, ea = batch.x.double(), batch.edge_attr.double()
    layers = [x]
    hooks = [norm.register_forward_hook(
        lambda mod, args, out: layers.append(out.relu()))
        for norm in model.norms]

    def expected():
        return sum(head(global_add_pool(h, batch.batch)) * mask
                   for head, h, mask in zip(model.heads, layers, masks))

    model.eval()
    masks = [1.0] * 3
    out = model(x, batch.edge_index, ea, batch.batch, batch.num_graphs)
    assert torch.allclose(out, expected(), atol=1e-10)

    model.train()
    del layers[1:]
    torch.manual_seed(1)
    out = model(x, batch.edge_index, ea, batch.batch, batch.num_graphs)
    torch.manual_seed(1)  # the same dropout masks, one per prediction
    masks = [torch.nn.functional.dropout(torch.ones(6, 3, dtype=x.dtype))
             for _ in range(3)]
    assert torch.allclose(out, expected(), atol=1e-10)
    for hook in hooks:
        hook.remove()


@pytest.mark.parametrize('hyper,readout', [(True, 'last'), (True, 'layers'),
                                           (False, 'last')])
def test_compiles_without_graph_breaks_given_batch_size(hyper, readout):
    # A training step on a mini-batch, with its number of graphs given (as
    # PyG's pooling needs to avoid a data-dependent size).
    torch._dynamo.reset()
    model = HyperGIN(5, 8, 2, num_layers=2, hyper=hyper, edge_dim=2,
                     readout=readout)
    batch = Batch.from_data_list(_graphs(3))
    explain = torch._dynamo.explain(model)(
        batch.x, batch.edge_index, batch.edge_attr, batch.batch,
        batch.num_graphs)
    assert explain.graph_break_count == 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="Unknown readout 'mean'"):
        HyperGIN(5, 8, 1, readout='mean')
    with pytest.raises(ValueError, match="Unknown pooling 'avg'"):
        HyperGIN(5, 8, 1, pool='avg')
    with pytest.raises(ValueError, match="'HyperGIN' needs a positive "
                       "integer 'num_layers' \\(got 0\\)"):
        HyperGIN(5, 8, 1, num_layers=0)


@pytest.mark.parametrize('hyper', [True, False])
def test_bad_inputs_are_named(hyper):
    batch = Batch.from_data_list(_graphs(3))
    x, ei, ea, b = batch.x, batch.edge_index, batch.edge_attr, batch.batch
    model = HyperGIN(5, 8, 1, num_layers=2, hyper=hyper, edge_dim=2)
    plain = HyperGIN(5, 8, 1, num_layers=2, hyper=hyper)
    # Without edge_dim, a stray edge_attr was passed to PyG's GINConv as
    # its 'size' argument.
    with pytest.raises(ValueError, match="got 'edge_attr' but was built "
                       "without 'edge_dim'"):
        plain(x, ei, ea, b)
    with pytest.raises(ValueError, match="needs 'edge_attr' of shape "
                       r"\[num_edges, 2\]"):
        model(x, ei, None, b)
    with pytest.raises(ValueError, match=r"'x' of shape \[num_rows, 5\]"):
        model(x[:, :4], ei, ea, b)
    with pytest.raises(ValueError, match=r"one 'batch' entry per node"):
        model(x, ei, ea, b[:5])
    with pytest.raises(ValueError, match='dtype torch.long'):
        model(x, ei, ea, b.float())
    with pytest.raises(ValueError, match="graph index 2 in 'batch' but was "
                       "told there are 1 graphs"):
        model(x, ei, ea, b, batch_size=1)


def _by_hand_pool(h, batch, pool, num_graphs):
    rows = [h[batch == g] for g in range(num_graphs)]
    if pool == 'sum':
        return torch.stack([r.sum(0) for r in rows])
    if pool == 'mean':
        return torch.stack([r.sum(0) / r.size(0) for r in rows])
    return torch.stack([r.max(0).values for r in rows])


@pytest.mark.parametrize('pool', ['sum', 'mean', 'max'])
@pytest.mark.parametrize('hyper', [True, False])
def test_last_readout_pools_the_last_layer_as_named(hyper, pool):
    # 'mean' is a per-graph average, 'max' a per-graph maximum, 'sum' a sum
    # (computed here graph by graph), of the last layer's ReLU(BN(.)).
    model = HyperGIN(5, 8, 3, num_layers=2, hyper=hyper, edge_dim=2,
                     pool=pool).double().eval()
    batch = Batch.from_data_list(_graphs())
    last = []
    hook = model.norms[-1].register_forward_hook(
        lambda mod, args, out: last.append(out.relu()))
    out = model(batch.x.double(), batch.edge_index, batch.edge_attr.double(),
                batch.batch, batch.num_graphs)
    hook.remove()
    pooled = _by_hand_pool(last[0], batch.batch, pool, batch.num_graphs)
    head = model.heads[0]
    expected = pooled @ head.weight.t() + head.bias
    assert torch.allclose(out, expected, atol=1e-10)


@pytest.mark.parametrize('hyper', [True, False])
def test_last_readout_drops_out_between_layers(hyper):
    # readout='last': dropout after every layer's ReLU(BN(.)), i.e. on the
    # next layer's input and on the pooled last layer; none on the head.
    model = HyperGIN(5, 8, 3, num_layers=3, hyper=hyper, edge_dim=2,
                     dropout=0.5).double().train()
    batch = Batch.from_data_list(_graphs())
    x, ea = batch.x.double(), batch.edge_attr.double()
    normed, inputs = [], []
    hooks = [norm.register_forward_hook(
        lambda mod, args, out: normed.append(out.relu()))
        for norm in model.norms]
    hooks += [conv.register_forward_pre_hook(
        lambda mod, args: inputs.append(args[0])) for conv in model.convs]
    torch.manual_seed(3)
    out = model(x, batch.edge_index, ea, batch.batch, batch.num_graphs)
    for hook in hooks:
        hook.remove()
    torch.manual_seed(3)  # the same masks: one per layer, in order
    masks = [torch.nn.functional.dropout(torch.ones(x.size(0), 8,
                                                    dtype=x.dtype))
             for _ in range(3)]
    assert any((m == 0).any() for m in masks)
    for i in range(2):
        assert torch.allclose(inputs[i + 1], normed[i] * masks[i],
                              atol=1e-12)
    h = normed[2] * masks[2]
    pooled = _by_hand_pool(h, batch.batch, 'sum', batch.num_graphs)
    head = model.heads[0]
    assert torch.allclose(out, pooled @ head.weight.t() + head.bias,
                          atol=1e-10)
