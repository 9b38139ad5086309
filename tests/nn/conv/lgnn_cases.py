"""Shared fixed graph and checks for the three LGNN layer tests."""
import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from torch_geometric.testing import assert_module
from torch_geometric.utils import scatter, to_torch_csc_tensor

from pyg_hyper.nn import localization_regularizer

# 6 nodes, undirected, no self loops; node 5 is isolated.
EDGE_INDEX = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4, 0, 4],
                           [1, 0, 2, 1, 3, 2, 4, 3, 4, 0]])
NUM_NODES = 6
# The same graph with self loops of its own on nodes 1 and 3.
EDGE_INDEX_WITH_LOOPS = torch.cat([EDGE_INDEX, torch.tensor([[1, 3],
                                                             [1, 3]])], 1)


def features(dim=5, sparse=False, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(NUM_NODES, dim, generator=gen, dtype=dtype)
    if sparse:  # bag-of-words-like: mostly zeros
        x = x.abs() * (torch.rand(NUM_NODES, dim, generator=gen) < 0.08)
        x[0, 0] = 1.0
    return x


def copy_params(src, dst):
    """Copies parameters of :obj:`src` into :obj:`dst` by shape order."""
    for p, q in zip(src.parameters(), dst.parameters()):
        q.data.copy_(p.data)


def assert_factorized_matches_materialized(make, dim=5):
    for sparse in (False, True):
        torch.manual_seed(0)
        fast = make(materialize=False).double()
        slow = make(materialize=True).double()
        slow.load_state_dict(fast.state_dict())
        x = features(dim, sparse=sparse, dtype=torch.float64)
        # A sparse COO input always takes the sparse-feature path (the one
        # Cora's bag of words uses); a dense one is too dense for it here.
        out, reg = fast(x.to_sparse() if sparse else x, EDGE_INDEX,
                        return_regularizer=True)
        ref, ref_reg = slow(x, EDGE_INDEX, return_regularizer=True)
        assert torch.allclose(out, ref)
        assert torch.allclose(reg, ref_reg) and reg > 0
        ref.sum().backward()
        out.sum().backward()
        for (name, p), q in zip(fast.named_parameters(), slow.parameters()):
            assert torch.allclose(p.grad, q.grad), name


def assert_sparse_adjacency_matches(conv, dim=5):
    x = features(dim)
    adj_t = to_torch_csc_tensor(EDGE_INDEX, size=(NUM_NODES, NUM_NODES)).t()
    assert torch.allclose(conv(x, EDGE_INDEX), conv(x, adj_t), atol=1e-6)


def assert_levels_switch(make):
    both = make(node_level=True, edge_level=True)
    none = make(node_level=False, edge_level=False)
    node = make(node_level=True, edge_level=False)
    edge = make(node_level=False, edge_level=True)
    assert both.node_loc is not None and both.edge_loc is not None
    assert none.node_loc is None and none.edge_loc is None
    assert node.edge_loc is None and edge.node_loc is None
    x = features(5)
    _, reg = none(x, EDGE_INDEX, return_regularizer=True)
    assert reg == 0
    for conv in (both, node, edge):
        _, reg = conv(x, EDGE_INDEX, return_regularizer=True)
        assert reg > 0
    counts = [sum(p.numel() for p in c.parameters())
              for c in (none, node, edge, both)]
    assert counts[0] < counts[1] < counts[3] and counts[0] < counts[2]
    assert 'node_level=True, edge_level=False' in repr(node)


def assert_sparse_features_match_dense(make, dim=5):
    """Sparse COO features (the sparse path) give the same output and
    parameter gradients as the dense path on the same values."""
    torch.manual_seed(0)
    # Forced dense: these features are sparse enough for the automatic
    # choice to take the sparse path, which would compare it with itself.
    conv = make(sparse_input=False)
    x = features(dim, sparse=True)
    dense = conv(x, EDGE_INDEX)
    dense.sum().backward()
    grads = [p.grad.clone() for p in conv.parameters()]
    conv.zero_grad()
    sparse = conv(x.to_sparse(), EDGE_INDEX)
    sparse.sum().backward()
    assert torch.allclose(dense, sparse, atol=1e-6)
    for g, p in zip(grads, conv.parameters()):
        assert torch.allclose(g, p.grad, atol=1e-6)


def grad_or_zero(p):
    return torch.zeros_like(p) if p.grad is None else p.grad.clone()


def reference_regularizer(conv, x, scope):
    """The regularizer from dense scales, written out: node-level scales of
    the nodes in :obj:`scope`, edge-level scales of the edges into them."""
    edges = conv.normalized_edges(x, EDGE_INDEX)
    src, dst = edges.edge_index
    ctx = scatter(edges.norm.unsqueeze(-1) *
                  conv.node_loc.project(x)[src], dst, 0, dim_size=NUM_NODES)
    gamma, beta = conv.node_loc(ctx)
    edge_gamma, edge_beta = conv.edge_loc(x, src, dst)
    into = torch.isin(dst, scope)
    return (localization_regularizer(gamma[scope], beta[scope]) +
            localization_regularizer(edge_gamma[into], edge_beta[into]))


def assert_scoped_regularizer(make, dim=5):
    """``reg_index`` changes only the regularizer, to the written-out
    reference, on dense and sparse features, with the same gradients."""
    torch.manual_seed(0)
    conv = make(node_rank=2).double()
    x = features(dim, sparse=True, dtype=torch.float64)
    scope = torch.tensor([1, 3, 5])  # 5 is isolated: its self loop only
    out_all, reg_all = conv(x, EDGE_INDEX, return_regularizer=True)
    assert torch.allclose(
        reg_all, reference_regularizer(conv, x, torch.arange(NUM_NODES)))
    ref = reference_regularizer(conv, x, scope)
    assert not torch.allclose(ref, reg_all)
    conv.zero_grad()
    ref.backward()
    ref_grads = [grad_or_zero(p) for p in conv.parameters()]
    for inputs in (x, x.to_sparse()):
        conv.zero_grad()
        out, reg = conv(inputs, EDGE_INDEX, return_regularizer=True,
                        reg_index=scope)
        assert torch.allclose(out, out_all)
        assert torch.allclose(reg, ref)
        reg.backward()
        for (name, p), g in zip(conv.named_parameters(), ref_grads):
            assert torch.allclose(grad_or_zero(p), g), name


def assert_output_index_computes_those_rows(make, dim=5):
    """``output_index`` gives exactly the full forward's rows there (zero
    elsewhere), the regularizer scoped to those nodes, and the same
    gradients, on dense and sparse features and the materialized path."""
    nodes = torch.tensor([1, 4, 5])  # 5 is isolated: its self loop only
    for materialize in (False, True):
        torch.manual_seed(0)
        conv = make(node_rank=2, materialize=materialize).double()
        x = features(dim, sparse=True, dtype=torch.float64)
        for inputs in (x, x.to_sparse()):
            conv.zero_grad()
            full, reg = conv(inputs, EDGE_INDEX, return_regularizer=True,
                             reg_index=nodes)
            (full[nodes].sum() + reg).backward()
            grads = [grad_or_zero(p) for p in conv.parameters()]
            conv.zero_grad()
            out, field_reg = conv(inputs, EDGE_INDEX, return_regularizer=True,
                                  output_index=nodes)
            assert torch.allclose(out[nodes], full[nodes])
            assert out[[0, 2, 3]].abs().max() == 0
            assert torch.allclose(field_reg, reg)
            (out[nodes].sum() + field_reg).backward()
            for (name, p), g in zip(conv.named_parameters(), grads):
                assert torch.allclose(grad_or_zero(p), g), name
    # A narrower regularizer within the computed rows is allowed ...
    _, narrow = conv(x, EDGE_INDEX, return_regularizer=True,
                     reg_index=torch.tensor([4]), output_index=nodes)
    assert torch.allclose(narrow, conv(x, EDGE_INDEX, return_regularizer=True,
                                       reg_index=torch.tensor([4]))[1])
    # ... one outside them is refused.
    with pytest.raises(ValueError, match="expected 'reg_index' to be a "
                       "subset of 'output_index'"):
        conv(x, EDGE_INDEX, return_regularizer=True,
             reg_index=torch.tensor([0, 1]), output_index=nodes)


def assert_weight_dropout_matches_materialized(make, dim=5):
    """Dropout on every W_v, applied without building W_v (sparse pairs and
    dense edges), equals dropping the materialized W_v with the same mask;
    it changes the training output and is off in evaluation."""
    torch.manual_seed(0)
    fast = make(materialize=False, weight_dropout=0.5).double()
    slow = make(materialize=True, weight_dropout=0.5).double()
    slow.load_state_dict(fast.state_dict())
    plain = make(materialize=False).double()
    plain.load_state_dict(fast.state_dict())
    for sparse in (False, True):
        x = features(dim, sparse=sparse, dtype=torch.float64)
        inputs = x.to_sparse() if sparse else x  # the sparse path: see above
        for conv in (fast, slow):
            conv.zero_grad()
        torch.manual_seed(1)
        ref = slow(x, EDGE_INDEX)
        torch.manual_seed(1)
        out = fast(inputs, EDGE_INDEX)
        assert torch.allclose(out, ref)
        assert not torch.allclose(out, plain(inputs, EDGE_INDEX))
        ref.pow(2).sum().backward()
        out.pow(2).sum().backward()
        for (name, p), q in zip(fast.named_parameters(), slow.parameters()):
            assert torch.allclose(grad_or_zero(p), grad_or_zero(q)), name
        fast.eval()
        assert torch.allclose(fast(inputs, EDGE_INDEX),
                              plain.eval()(inputs, EDGE_INDEX))
        fast.train(), plain.train()


class LocalizedConvContract:
    """Tests every LGNN layer must pass; a test file subclasses it and
    defines :meth:`make` (its layer with 5 input channels)."""
    def make(self, **kwargs):
        raise NotImplementedError

    @pytest.mark.parametrize('node,edge', [(True, True), (True, False),
                                           (False, True)])
    def test_factorized_matches_materialized(self, node, edge):
        assert_factorized_matches_materialized(
            lambda materialize: self.make(node_level=node, edge_level=edge,
                                          node_rank=2,
                                          materialize=materialize))

    def test_levels_switch(self):
        assert_levels_switch(self.make)

    @pytest.mark.parametrize('edge', [True, False])
    def test_localization_slope_reaches_both_levels(self, edge):
        # Without edge-level localization the node level alone must still
        # use the slope (a node level that fell back to 0.2 hid behind the
        # edge level's effect).
        torch.manual_seed(0)
        conv = self.make(localization_slope=0.05, edge_level=edge)
        assert conv.node_loc.negative_slope == 0.05
        linear = copy.deepcopy(conv)
        linear.node_loc.negative_slope = 1.0
        if edge:
            assert conv.edge_loc.negative_slope == 0.05
            linear.edge_loc.negative_slope = 1.0
        x = features(5)
        assert not torch.allclose(conv(x, EDGE_INDEX), linear(x, EDGE_INDEX))

    def test_sparse_adjacency(self):
        assert_sparse_adjacency_matches(self.make())

    @pytest.mark.parametrize('node,edge', [(True, True), (False, False)])
    def test_sparse_features(self, node, edge):
        assert_sparse_features_match_dense(
            lambda **kw: self.make(node_level=node, edge_level=edge, **kw))

    def test_sparse_features_with_another_slope(self):
        # The sparse path evaluates the node-level scales entry by entry,
        # the dense one all at once: both must use the layer's slope. With
        # non-negative (bag-of-words) features and a non-positive M every
        # node-level pre-activation is negative, where the slope acts.
        def make(**kwargs):
            conv = self.make(localization_slope=0.05, **kwargs)
            with torch.no_grad():
                conv.node_loc.proj.abs_().neg_()
            return conv

        assert_sparse_features_match_dense(make)

    @pytest.mark.parametrize('edge_index', [EDGE_INDEX,
                                            EDGE_INDEX_WITH_LOOPS])
    def test_normalized_edges_are_the_dense_gcn_matrix(self, edge_index):
        # D^-1/2 (A + I) D^-1/2 built by hand: every node gets one added
        # loop of weight 1. GCN and GAT merge the graph's own loops into it;
        # GIN keeps them as neighbours, so its A has them on the diagonal.
        conv = self.make()
        edges = conv.normalized_edges(features(5), edge_index)
        src, dst = edges.edge_index
        got = torch.zeros(NUM_NODES, NUM_NODES).index_put_(
            (dst, src), edges.norm, accumulate=True)
        adj = torch.zeros(NUM_NODES, NUM_NODES)
        adj[edge_index[1], edge_index[0]] = 1.0
        if conv.merges_self_loops:
            adj.fill_diagonal_(0.0)
        adj = adj + torch.eye(NUM_NODES)
        inv_sqrt = adj.sum(1).pow(-0.5)
        expected = inv_sqrt[:, None] * adj * inv_sqrt[None, :]
        torch.testing.assert_close(got, expected)

    def test_scoped_regularizer(self):
        assert_scoped_regularizer(self.make)

    @pytest.mark.parametrize('node,edge', [(True, True), (True, False),
                                           (False, True), (False, False)])
    def test_output_index(self, node, edge):
        assert_output_index_computes_those_rows(
            lambda **kw: self.make(node_level=node, edge_level=edge, **kw))

    @pytest.mark.parametrize('sparse', [False, True])
    def test_input_self_loops(self, sparse):
        # GCN and GAT keep one self loop per node: a graph's own loops
        # merge into it (outputs and regularizer as without them, the
        # training-field path too). GIN sums them as extra neighbours.
        torch.manual_seed(0)
        conv = self.make()
        x = features(5, sparse=sparse)
        field = torch.tensor([1, 2])
        for kwargs in ({}, {'output_index': field}):
            out, reg = conv(x, EDGE_INDEX_WITH_LOOPS, return_regularizer=True,
                            **kwargs)
            ref, ref_reg = conv(x, EDGE_INDEX, return_regularizer=True,
                                **kwargs)
            if conv.merges_self_loops:
                torch.testing.assert_close(out, ref)
                torch.testing.assert_close(reg, ref_reg)
            else:
                assert not torch.allclose(out[1], ref[1])

    def test_shared_docs_filled(self):
        cls = type(self.make())
        assert '{LOCALIZED' not in cls.__doc__ + cls.forward.__doc__
        assert '        weight_dropout (float, optional)' in cls.__doc__
        assert '            output_index (torch.Tensor, optional)' in \
            cls.forward.__doc__

    @pytest.mark.parametrize('edge', [True, False])
    def test_weight_dropout(self, edge):
        assert_weight_dropout_matches_materialized(
            lambda **kw: self.make(node_rank=2, edge_level=edge, **kw))

    def test_bad_dropouts(self):
        name = type(self.make()).__name__
        with pytest.raises(ValueError, match=rf"'{name}' got "
                           r"'weight_dropout' without node-level"):
            self.make(node_level=False, weight_dropout=0.5)
        for key in ('weight_dropout', 'message_dropout'):
            with pytest.raises(ValueError, match=rf"expected '{key}' in "
                               r"\[0, 1\) \(got 1.0\)"):
                self.make(**{key: 1.0})

    @pytest.mark.parametrize('name', ['reg_index', 'output_index'])
    def test_bad_node_index_names_it(self, name):
        with pytest.raises(ValueError, match=rf"out of range in .{name}."):
            self.make()(features(5), EDGE_INDEX,
                        **{name: torch.tensor([2, 9])})

    @pytest.mark.parametrize('index,match', [
        ([3, 1], 'sorted and without duplicates'),
        ([1, 6], r'out of range in .reg_index. \(smallest 1, largest 6, '
                 r'for 6 nodes\)'),
        ([], 'at least one node index'),
    ])
    def test_bad_reg_index(self, index, match):
        with pytest.raises(ValueError, match=match):
            self.make()(features(5), EDGE_INDEX,
                        reg_index=torch.tensor(index, dtype=torch.long))

    @pytest.mark.parametrize('sparse', [False, True])
    def test_pyg_assert_module(self, sparse):
        # PyG's own contract: the output shape, invariance to the order of
        # the edges, and the same output from every sparse adjacency layout
        # (torch_sparse's only where it is installed).
        torch.manual_seed(0)
        conv = self.make(node_rank=2, sparse_input=sparse).double().eval()
        x = features(5, sparse=sparse, dtype=torch.float64)
        out_channels = conv(x, EDGE_INDEX).size(-1)
        assert_module(conv, x, EDGE_INDEX,
                      expected_size=(NUM_NODES, out_channels),
                      test_sparse_layouts=['torch_sparse', torch.sparse_csc,
                                           torch.sparse_coo])

    def test_node_permutation_equivariance(self):
        # Relabelling the nodes relabels the output rows and leaves the
        # regularizer (a mean over nodes and edges) unchanged. The property
        # is drawn in a nested function: hypothesis wants one executor per
        # test, and this method is inherited by every layer's class.
        convs = {}
        for sparse in (False, True):  # the same weights, either path
            torch.manual_seed(0)
            convs[sparse] = self.make(node_rank=2, sparse_input=sparse
                                      ).double().eval()

        @settings(max_examples=15, deadline=None)
        @given(seed=st.integers(0, 2**31 - 1), sparse=st.booleans())
        def check(seed, sparse):
            gen = torch.Generator().manual_seed(seed)
            perm = torch.randperm(NUM_NODES, generator=gen)
            inverse = torch.empty_like(perm)
            inverse[perm] = torch.arange(NUM_NODES)
            x = features(5, sparse=sparse, seed=seed % 1000,
                         dtype=torch.float64)
            conv = convs[sparse]
            out, reg = conv(x, EDGE_INDEX, return_regularizer=True)
            out_p, reg_p = conv(x[perm], inverse[EDGE_INDEX],
                                return_regularizer=True)
            assert torch.allclose(out_p, out[perm])
            assert torch.allclose(reg_p, reg)

        check()

    @pytest.mark.parametrize('edge_level', [True, False])
    @pytest.mark.parametrize('cached', [False, True])
    def test_compiles_without_graph_breaks(self, edge_level, cached):
        # The structure cache steps aside under tracing.
        torch._dynamo.reset()
        conv = self.make(edge_level=edge_level, cached=cached)
        explain = torch._dynamo.explain(conv)(features(5), EDGE_INDEX)
        assert explain.graph_break_count == 0

    @pytest.mark.parametrize('rank', [0, -1, 2.5])
    def test_bad_node_rank(self, rank):
        name = type(self.make()).__name__
        with pytest.raises(ValueError, match=rf"'{name}' needs a positive "
                           rf"integer 'node_rank' \(got {rank}\)"):
            self.make(node_rank=rank)

    def test_weighted_sparse_adjacency(self):
        # LGCN reads an adjacency's values as edge weights, as GCN does;
        # the others take no edge weights and ignore them everywhere (they
        # used to reach the node-level context only).
        torch.manual_seed(0)
        conv = self.make(node_rank=2).double().eval()
        x = features(5, dtype=torch.float64)
        weight = torch.rand(EDGE_INDEX.size(1), dtype=torch.float64) + 0.5
        adj_t = to_torch_csc_tensor(EDGE_INDEX, weight,
                                    size=(NUM_NODES, NUM_NODES)).t()
        if conv.takes_edge_weight:
            expected = conv(x, EDGE_INDEX, weight)
            assert not torch.allclose(expected, conv(x, EDGE_INDEX))
        else:
            expected = conv(x, EDGE_INDEX)
        assert torch.allclose(conv(x, adj_t), expected)

    def test_bipartite_and_misplaced_arguments(self):
        conv = self.make()
        name = type(conv).__name__
        x = features(5)
        with pytest.raises(ValueError, match=rf"'{name}' expected 'x' to be "
                           r"one tensor.*bipartite inputs are not supported"):
            conv((x, x), EDGE_INDEX)
        if name != 'LGCNConv':
            with pytest.raises(ValueError, match=rf"'{name}' expected "
                               r"'return_regularizer' to be a bool \(got "
                               r"Tensor\); only LGCNConv takes an "
                               r"'edge_weight'"):
                conv(x, EDGE_INDEX, torch.ones(EDGE_INDEX.size(1)))

    def test_wrong_dtype_is_named(self):
        # A float64 input used to end in torch's 'mat1 and mat2 must have
        # the same dtype' from deep inside the layer.
        name = type(self.make()).__name__
        with pytest.raises(ValueError, match=rf"'{name}' expected 'x' of its "
                           r"parameters' dtype torch.float32 \(got "
                           r"torch.float64\)"):
            self.make()(features(5, dtype=torch.float64), EDGE_INDEX)

    def test_wrong_feature_width(self):
        name = type(self.make()).__name__
        with pytest.raises(ValueError, match=rf"'{name}' expected 'x' of "
                           r"shape \[num_rows, 5\] \(got \[6, 4\]\)"):
            self.make()(features(4), EDGE_INDEX)
