import pytest
import torch
from torch_geometric.data import Batch, Data

from pyg_hyper.nn.models import OGBMolGNN
from pyg_hyper.nn.models.ogb_mol import (
    HYPER_GIN_CONFIGS,
    OGB_LEADERBOARD_ATOM_DIMS,
    CategoricalEncoder,
)


def num_params(model):
    return sum(p.numel() for p in model.parameters())


def test_gin_parameter_counts_match_the_ogb_leaderboard():
    # ogbg-molhiv (one task): GIN 1,885,206; GIN+virtual node 3,336,306.
    dims = OGB_LEADERBOARD_ATOM_DIMS
    assert num_params(OGBMolGNN(1, atom_feature_dims=dims)) == 1_885_206
    assert num_params(OGBMolGNN(1, virtual_node=True,
                                atom_feature_dims=dims)) == 3_336_306
    # ogbg-molpcba (128 tasks): 1,923,433 and 3,374,533 on the leaderboard.
    assert num_params(OGBMolGNN(128, atom_feature_dims=dims)) == 1_923_433
    assert num_params(OGBMolGNN(128, virtual_node=True,
                                atom_feature_dims=dims)) == 3_374_533
    # The installed ogb (>= 1.3.5) has one more chirality category.
    assert num_params(OGBMolGNN(1)) == 1_885_206 + 300


def test_categorical_encoder_is_ogbs_atom_encoder():
    from ogb.graphproppred.mol_encoder import AtomEncoder
    from ogb.utils.features import get_atom_feature_dims
    ogb_encoder = AtomEncoder(16)
    encoder = CategoricalEncoder(get_atom_feature_dims(), 16)
    for ours, theirs in zip(encoder.embeddings,
                            ogb_encoder.atom_embedding_list):
        ours.weight.data.copy_(theirs.weight.data)
    x = torch.stack([torch.randint(0, d, (7, ))
                     for d in get_atom_feature_dims()], dim=1)
    assert torch.allclose(encoder(x), ogb_encoder(x))
    with pytest.raises(ValueError, match=r"shape \[num_rows, 9\]"):
        encoder(x[:, :3])


def molecules(num_graphs=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    data_list = []
    for i in range(num_graphs):
        n = 4 + i
        ring = torch.arange(n)
        src = torch.cat([ring, (ring + 1) % n])
        dst = torch.cat([(ring + 1) % n, ring])
        x = torch.stack([torch.randint(0, d, (n, ), generator=gen)
                         for d in OGB_LEADERBOARD_ATOM_DIMS], dim=1)
        bonds = torch.stack([torch.randint(0, d, (n, ), generator=gen)
                             for d in (5, 6, 2)], dim=1)
        data_list.append(Data(x=x, edge_index=torch.stack([src, dst]),
                              edge_attr=torch.cat([bonds, bonds]),
                              y=torch.tensor([[i % 2]])))
    return data_list


def run(model, batch):
    return model(batch.x, batch.edge_index, batch.edge_attr, batch.batch,
                 batch.num_graphs)


SMALL = dict(emb_dim=16, hyper_channels=4, hyper_hidden_channels=8)


@pytest.mark.parametrize('conv', ['gin', 'hyper_gin'])
@pytest.mark.parametrize('virtual_node', [False, True])
@pytest.mark.parametrize('jk', ['last', 'sum'])
def test_forward_and_every_parameter_is_trained(conv, virtual_node, jk):
    torch.manual_seed(0)
    model = OGBMolGNN(2, conv=conv, virtual_node=virtual_node, jk=jk,
                      **SMALL)
    batch = Batch.from_data_list(molecules())
    out = run(model, batch)
    assert out.shape == (3, 2)
    out.sum().backward()
    unused = [name for name, p in model.named_parameters()
              if p.grad is None or not p.grad.abs().sum() > 0]
    # The virtual node's zero initial embedding still receives gradients.
    assert unused == []


@pytest.mark.parametrize('conv', ['gin', 'hyper_gin'])
def test_graph_outputs_ignore_node_order_and_batch_mates(conv):
    torch.manual_seed(0)
    model = OGBMolGNN(1, conv=conv, virtual_node=True, **SMALL).eval()
    data_list = molecules()
    together = run(model, Batch.from_data_list(data_list))
    alone = run(model, Batch.from_data_list(data_list[1:2]))
    assert torch.allclose(together[1:2], alone, atol=1e-5)

    data = data_list[2]
    perm = torch.randperm(data.num_nodes)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel())
    permuted = Data(x=data.x[perm], edge_index=inv[data.edge_index],
                    edge_attr=data.edge_attr, y=data.y)
    a = run(model, Batch.from_data_list([data]))
    b = run(model, Batch.from_data_list([permuted]))
    assert torch.allclose(a, b, atol=1e-5)


def test_gin_layer_is_ogbs_gin_conv():
    """OGB's GINConv: mlp((1 + eps) h_i + sum_j relu(h_j + bond(e_ji)))."""
    torch.manual_seed(0)
    model = OGBMolGNN(1, num_layers=2, **SMALL).eval()
    conv, bond = model.convs[0], model.bond_encoders[0]
    with torch.no_grad():
        conv.eps.fill_(0.25)
    batch = Batch.from_data_list(molecules(1))
    h = model.atom_encoder(batch.x)
    src, dst = batch.edge_index
    message = (h[src] + bond(batch.edge_attr)).relu()
    aggr = torch.zeros_like(h).index_add_(0, dst, message)
    expected = conv.nn(1.25 * h + aggr)
    assert torch.allclose(conv(h, batch.edge_index, bond(batch.edge_attr)),
                          expected, atol=1e-6)


def test_cheap_hyper_gin_is_documented_and_smaller():
    full = OGBMolGNN(1, conv='hyper_gin', **HYPER_GIN_CONFIGS['full'])
    cheap = OGBMolGNN(1, conv='hyper_gin', **HYPER_GIN_CONFIGS['cheap'])
    assert num_params(cheap) < num_params(OGBMolGNN(1)) < num_params(full)
    assert cheap.convs[0].hyper_channels == 8
    assert full.convs[0].hidden_channels == 300


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"unknown conv 'gcn' \(expected "
                       r"one of \['gin', 'hyper_gin'\]\)"):
        OGBMolGNN(1, conv='gcn')
    with pytest.raises(ValueError, match="unknown jk 'cat'"):
        OGBMolGNN(1, jk='cat')
    with pytest.raises(ValueError, match="unknown pool 'attention'"):
        OGBMolGNN(1, pool='attention')
    with pytest.raises(ValueError, match="'num_layers' >= 2"):
        OGBMolGNN(1, num_layers=1)
    with pytest.raises(ValueError, match="positive integer 'num_tasks' "
                       r"\(got 0\)"):
        OGBMolGNN(0)
    with pytest.raises(ValueError, match="positive integer 'emb_dim'"):
        OGBMolGNN(1, emb_dim=0)
    with pytest.raises(ValueError, match='at least one feature column'):
        OGBMolGNN(1, atom_feature_dims=[])
    with pytest.raises(ValueError, match=r"'feature_dims\[1\]' \(got 0\)"):
        OGBMolGNN(1, bond_feature_dims=[5, 0, 2])
    with pytest.raises(ValueError, match="'HyperGINConv' needs a positive "
                       "integer 'hidden_channels' \\(got 0\\)"):
        OGBMolGNN(1, conv='hyper_gin', hyper_hidden_channels=0)


@pytest.mark.parametrize('conv', ['gin', 'hyper_gin'])
def test_bad_inputs_are_named(conv):
    model = OGBMolGNN(1, conv=conv, virtual_node=True, num_layers=2,
                      atom_feature_dims=OGB_LEADERBOARD_ATOM_DIMS, **SMALL)
    batch = Batch.from_data_list(molecules())
    x, ei, ea, b = batch.x, batch.edge_index, batch.edge_attr, batch.batch
    with pytest.raises(ValueError, match=r"needs categorical bond features "
                       r"'edge_attr' of shape \[num_edges, 3\]"):
        model(x, ei, None, b)
    with pytest.raises(ValueError, match="one 'batch' entry per node"):
        model(x, ei, ea, b[:5])
    with pytest.raises(ValueError, match='dtype torch.long'):
        model(x, ei, ea, b.float())
    # Categories out of range used to end in a bare IndexError.
    bad = x.clone()
    bad[0, 2] = 12
    with pytest.raises(ValueError, match=r"'CategoricalEncoder' expected "
                       r"column 2 in \[0, 12\) \(got \d+ to 12\)"):
        model(bad, ei, ea, b)
    bad = ea.clone()
    bad[1, 0] = -1
    with pytest.raises(ValueError, match=r"expected column 0 in \[0, \d+\) "
                       r"\(got -1 to"):
        model(x, ei, bad, b)
    with pytest.raises(ValueError, match=r"integer categorical features of "
                       r"shape \[num_rows, 9\] \(got torch.float32"):
        model(x.float(), ei, ea, b)


@pytest.mark.parametrize('conv', ['gin', 'hyper_gin'])
@pytest.mark.parametrize('virtual_node', [False, True])
def test_compiles_without_graph_breaks_given_batch_size(conv, virtual_node):
    torch._dynamo.reset()
    model = OGBMolGNN(1, conv=conv, num_layers=2, virtual_node=virtual_node,
                      **SMALL)
    batch = Batch.from_data_list(molecules())
    explain = torch._dynamo.explain(model)(
        batch.x, batch.edge_index, batch.edge_attr, batch.batch,
        batch.num_graphs)
    assert explain.graph_break_count == 0, explain.break_reasons


def _add_pool(h, batch, num_graphs):
    return torch.zeros(num_graphs, h.size(1), dtype=h.dtype).index_add_(
        0, batch, h)


@pytest.mark.parametrize('conv', ['gin', 'hyper_gin'])
@pytest.mark.parametrize('residual', [False, True])
@pytest.mark.parametrize('jk', ['last', 'sum'])
def test_forward_is_ogbs_gnn_node_virtualnode(conv, residual, jk):
    """OGB's GNN_node_Virtualnode + GNN (examples/graphproppred/mol), written
    out step by step with the model's layers, in training mode with the
    same dropout masks: the virtual node is added to each layer's input
    (which then replaces h_list[layer]), updated from the sum-pooled shifted
    input plus itself, ReLU on all but the last layer, JK, mean pooling."""
    torch.manual_seed(0)
    num_layers = 3
    model = OGBMolGNN(2, conv=conv, num_layers=num_layers, virtual_node=True,
                      jk=jk, residual=residual, dropout=0.5,
                      **SMALL).double().train()
    assert (model.vn_embedding.weight == 0).all()  # OGB starts it at zero
    with torch.no_grad():  # a nonzero virtual node, to see where it goes
        model.vn_embedding.weight.normal_()
    batch = Batch.from_data_list(molecules())
    b, num_graphs = batch.batch, batch.num_graphs
    drop = torch.nn.functional.dropout

    torch.manual_seed(5)
    out = run(model, batch)

    torch.manual_seed(5)
    with torch.no_grad():
        emb = model.atom_encoder.embeddings
        h_list = [sum(e(batch.x[:, i]) for i, e in enumerate(emb))]
        vn = model.vn_embedding.weight.expand(num_graphs, -1)
        first = None
        for layer in range(num_layers):
            h_list[layer] = h_list[layer] + vn[b]
            c = model.convs[layer]
            if conv == 'gin':
                h = c(h_list[layer], batch.edge_index,
                      model.bond_encoders[layer](batch.edge_attr))
            else:
                h, message = c(h_list[layer], batch.edge_index,
                               batch.edge_attr, first_message=first,
                               return_message=True)
                first = message if first is None else first
            h = model.norms[layer](h)
            if layer == num_layers - 1:
                h = drop(h, 0.5)
            else:
                h = drop(h.clamp(min=0), 0.5)
            if residual:
                h = h + h_list[layer]
            h_list.append(h)
            if layer < num_layers - 1:
                tmp = _add_pool(h_list[layer], b, num_graphs) + vn
                update = drop(model.vn_mlps[layer](tmp), 0.5)
                vn = vn + update if residual else update
        node = h_list[-1] if jk == 'last' else sum(h_list)
        counts = torch.bincount(b, minlength=num_graphs).to(node.dtype)
        pooled = _add_pool(node, b, num_graphs) / counts[:, None]
        expected = pooled @ model.head.weight.t() + model.head.bias
    assert torch.allclose(out, expected, atol=1e-8)
