import warnings

import pytest
import torch
from torch_geometric.data import Batch, Data

from pyg_hyper.nn.dense.ign_input import to_dense_ign_input
from pyg_hyper.nn.models import IGN, HyperIGN


def small_graphs():
    torch.manual_seed(0)
    graphs = []
    for n in (3, 6, 4):
        src = torch.arange(n)
        ring = torch.stack([src, (src + 1) % n])
        edge_index = torch.cat([ring, ring.flip(0)], dim=1)
        x = torch.eye(3)[torch.randint(0, 3, (n, ))]
        graphs.append(Data(x=x, edge_index=edge_index))
    graphs[1].edge_index = torch.cat(
        [graphs[1].edge_index, torch.tensor([[0, 3], [3, 0]])], dim=1)
    return graphs


def make(model_cls, **kwargs):
    torch.manual_seed(1)
    model = model_cls(3, [4, 8], 2, mlp_channels=[16], **kwargs).double()
    return model.eval()


@pytest.mark.parametrize('model_cls', [IGN, HyperIGN])
@pytest.mark.parametrize('pool', ['max', 'sum'])
def test_padding_and_permutation_invariance(model_cls, pool):
    graphs = small_graphs()
    model = make(model_cls, pool=pool)
    batch = Batch.from_data_list(graphs)
    out = model(batch.x.double(), batch.edge_index, batch.batch)
    assert out.shape == (3, 2)
    for i, g in enumerate(graphs):
        alone = model(g.x.double(), g.edge_index)
        assert torch.allclose(out[i:i + 1], alone)
        perm = torch.randperm(g.num_nodes)
        inv = torch.empty_like(perm)
        inv[perm] = torch.arange(g.num_nodes)
        permuted = model(g.x[perm].double(), inv[g.edge_index])
        assert torch.allclose(alone, permuted)


def test_hyper_ign_paths_agree_and_train():
    graphs = small_graphs()
    batch = Batch.from_data_list(graphs)
    model = make(HyperIGN, hyper_channels=3)
    args = (batch.x.double(), batch.edge_index, batch.batch)
    out = model(*args)
    for layer in model.layers:
        layer.factorized = False
    assert torch.allclose(out, model(*args))
    for layer in model.layers:
        layer.materialize = True
    assert torch.allclose(out, model(*args))
    # One optimizer step lowers the loss on a fixed batch.
    model = make(HyperIGN, hyper_channels=3).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    y = torch.tensor([0, 1, 0])
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(*args), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert str(model) == 'HyperIGN(3, [4, 8], 2, pool=max)'


@pytest.mark.parametrize('combine', ['concat', 'convex'])
def test_hyper_ign_paths_agree_with_gradients(combine):
    # Hidden widths 5 then 8 over an input of 3 (+1 adjacency channel):
    # the second layer's messages are wider than the first invariants, so
    # 'convex' maps them.
    graphs = small_graphs()
    batch = Batch.from_data_list(graphs)
    args = (batch.x.double(), batch.edge_index, batch.batch)
    torch.manual_seed(1)
    reference = HyperIGN(3, [5, 8], 2, mlp_channels=[16], hyper_channels=3,
                         combine=combine).double().eval()
    outs, grads = [], []
    for path in ('factorized', 'per_graph', 'materialized'):
        model = HyperIGN(3, [5, 8], 2, mlp_channels=[16], hyper_channels=3,
                         combine=combine, factorized=path == 'factorized',
                         materialize=path == 'materialized').double().eval()
        model.load_state_dict(reference.state_dict())
        out = model(*args)
        out.pow(2).sum().backward()
        outs.append(out)
        grads.append([p.grad for p in model.parameters()])
    for out, grad in zip(outs[1:], grads[1:]):
        assert torch.allclose(outs[0], out, atol=1e-10)
        for g0, g in zip(grads[0], grad):
            assert g0 is not None and torch.allclose(g0, g, atol=1e-9)
    combiners = [layer.combiner for layer in reference.layers]
    assert (combiners[1].first_lin is not None) == (combine == 'convex')


def test_unlabeled_graphs():
    g = small_graphs()[1]
    model = IGN(0, [4], 2)
    assert model(None, g.edge_index, num_nodes=g.num_nodes).shape == (1, 2)
    with pytest.raises(ValueError, match=r"node features of shape "
                       r"\[num_nodes, 0\]"):
        model(g.x, g.edge_index)


def test_memory_guard():
    g = small_graphs()[1]
    model = IGN(3, [4, 64], 2, max_dense_bytes=64 * 6 * 6 * 4 - 1)
    with pytest.raises(ValueError, match=r"dense tensors of shape "
                       r"\[1, 64, 6, 6\].*largest graph in the batch has 6"):
        model(g.x, g.edge_index)
    model.on_exceed = 'warn'
    with pytest.warns(ResourceWarning, match='max_dense_bytes'):
        model(g.x, g.edge_index)
    model.max_dense_bytes = None
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert model(g.x, g.edge_index).shape == (1, 2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="Unknown pooling 'avg'"):
        IGN(3, [4], 2, pool='avg')
    with pytest.raises(ValueError, match="at least one width"):
        IGN(3, [], 2)
    with pytest.raises(ValueError, match="Unknown 'on_exceed'"):
        IGN(3, [4], 2, on_exceed='ignore')
    model = IGN(3, [4], 2)
    with pytest.raises(ValueError, match=r"expected 'x' of shape "
                       r"\[batch_size, 4, num_nodes, num_nodes\]"):
        model.forward_dense(torch.randn(1, 3, 5, 5))


@pytest.mark.parametrize('model_cls', [IGN, HyperIGN])
def test_equal_size_batches_skip_the_mask_exactly(model_cls, monkeypatch):
    # A batch of graphs of one size has no padding: the model drops the
    # all-true mask, with the masked computation's outputs.
    graphs = [g for g in small_graphs() for _ in range(2)]
    same = [graphs[0], graphs[1]]  # two 3-node graphs
    model = make(model_cls)
    batch = Batch.from_data_list(same)
    seen = []
    forward_dense = model.forward_dense

    def spy(x, mask=None):
        seen.append(mask)
        return forward_dense(x, mask)

    monkeypatch.setattr(model, 'forward_dense', spy)
    out = model(batch.x.double(), batch.edge_index, batch.batch)
    assert seen == [None]
    mixed = Batch.from_data_list(graphs[:3])
    model(mixed.x.double(), mixed.edge_index, mixed.batch)
    assert seen[1] is not None and not bool(seen[1].all())
    dense, mask = to_dense_ign_input(batch.x.double(), batch.edge_index,
                                     batch.batch, 2,
                                     normalize=model.normalize_adj)
    assert bool(mask.all())
    assert torch.allclose(out, forward_dense(dense, mask))


@pytest.mark.parametrize('model_cls', [IGN, HyperIGN])
def test_forward_dense_compiles_without_graph_breaks(model_cls):
    # forward() builds the dense batch (data-dependent sizes); the model on
    # a dense batch is one graph.
    torch._dynamo.reset()
    batch = Batch.from_data_list(small_graphs())
    dense, mask = to_dense_ign_input(batch.x.double(), batch.edge_index,
                                     batch.batch)
    model = make(model_cls)
    explain = torch._dynamo.explain(model.forward_dense)(dense, mask)
    assert explain.graph_break_count == 0, explain.break_reasons


def test_head_initialization_follows_the_official_code():
    # fully_connected layers: Xavier-uniform weights and zero biases.
    torch.manual_seed(0)
    model = IGN(3, [4, 8], 2, mlp_channels=[64])
    for lin in model.mlp.lins:
        fan_out, fan_in = lin.weight.shape
        bound = (6.0 / (fan_in + fan_out))**0.5
        assert (lin.bias == 0).all()
        assert bound * 0.9 < lin.weight.abs().max() <= bound


@pytest.mark.parametrize('cls', [IGN, HyperIGN])
def test_float64_model_on_unlabeled_graphs(cls):
    # The dense input was built in the default dtype, which a float64 model
    # refused; its caller has no input to convert.
    edge_index = torch.tensor([[0, 1, 1, 2, 3, 4], [1, 0, 2, 1, 4, 3]])
    batch = torch.tensor([0, 0, 0, 1, 1])
    model = cls(0, [4], 2).double()
    out = model(None, edge_index, batch)
    assert out.dtype == torch.float64 and out.shape == (2, 2)
    single = cls(0, [4], 2)
    single.load_state_dict({k: v.float() for k, v in model.state_dict()
                            .items()})
    assert torch.allclose(single(None, edge_index, batch).double(), out,
                          atol=1e-5)


def test_unlabeled_graph_with_a_trailing_isolated_node():
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    model = IGN(0, [4], 2)
    out = model(None, edge_index, num_nodes=4)
    assert torch.allclose(out, model(None, edge_index,
                                     torch.zeros(4, dtype=torch.long)))
    assert not torch.allclose(out, model(None, edge_index, num_nodes=3))
    with pytest.raises(ValueError, match="needs 'num_nodes'"):
        model(None, edge_index)


@pytest.mark.parametrize('cls,kwargs', [(IGN, {}),
                                        (HyperIGN, {'factorized': True})])
def test_training_after_an_inference_mode_evaluation(cls, kwargs):
    # The block-index cache is shared by every layer of the process: built
    # first under inference mode (Lightning's sanity check), it broke every
    # later training step.
    from pyg_hyper.nn.dense import ign
    ign._cached_block_index.cache_clear()
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    x = torch.randn(3, 2)
    with torch.inference_mode():
        cls(2, [5, 7], 3, **kwargs).eval()(x, edge_index)
    model = cls(2, [5, 7], 3, **kwargs)
    model(x, edge_index).sum().backward()
    # Every layer's coefficients get a gradient through the cached index.
    for name, p in model.named_parameters():
        assert p.grad is not None and bool(p.grad.isfinite().all()), name
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize('model_cls', [IGN, HyperIGN])
def test_sparse_adjacencies_match_edge_index(model_cls):
    # PyG layers take transposed sparse adjacencies; IGN failed deep inside
    # its dense input ("batch" of the wrong dtype) when given one.
    from torch_geometric.typing import WITH_TORCH_SPARSE, SparseTensor
    from torch_geometric.utils import to_torch_coo_tensor, to_torch_csr_tensor
    torch.manual_seed(0)
    model = model_cls(3, [4], 2, mlp_channels=(4, )).eval()
    edge_index = torch.tensor([[0, 1, 1, 2, 2], [1, 0, 2, 1, 0]])  # directed
    x = torch.randn(3, 3)
    expected = model(x, edge_index)
    adjacencies = [to_torch_coo_tensor(edge_index.flip(0), size=(3, 3)),
                   to_torch_csr_tensor(edge_index.flip(0), size=(3, 3))]
    if WITH_TORCH_SPARSE:
        adjacencies.append(SparseTensor.from_edge_index(
            edge_index, sparse_sizes=(3, 3)).t())
    for adj_t in adjacencies:
        assert torch.allclose(model(x, adj_t), expected, atol=1e-6)
