import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pyg_hyper.nn.models import HyperNMPEdge, NMPEdge

# Two small molecules (methane-like and water-like) in one batch.
Z = torch.tensor([6, 1, 1, 1, 1, 8, 1, 1])
BATCH = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1])
POS = torch.tensor([[0.00, 0.00, 0.00], [0.63, 0.63, 0.63],
                    [-0.63, -0.63, 0.63], [-0.63, 0.63, -0.63],
                    [0.63, -0.63, -0.63], [3.00, 0.00, 0.00],
                    [3.76, 0.59, 0.00], [2.24, 0.59, 0.00]])

MODELS = {
    'nmp_edge': lambda: NMPEdge(hidden_channels=16, num_layers=2),
    'hyper': lambda: HyperNMPEdge(hidden_channels=16, num_layers=2,
                                  hyper_channels=4),
    'hyper_convex_edge': lambda: HyperNMPEdge(
        hidden_channels=16, num_layers=2, hyper_channels=4,
        combine='convex', edge_hyper=True),
}


def _rotation(a, b, c):
    def axis(i, t):
        # Double: a float32 rotation is orthogonal to 1e-7 only.
        m = torch.eye(3, dtype=torch.double)
        j, k = [n for n in range(3) if n != i]
        m[j, j] = m[k, k] = math.cos(t)
        m[j, k], m[k, j] = -math.sin(t), math.sin(t)
        return m
    return axis(0, a) @ axis(1, b) @ axis(2, c)


@pytest.mark.parametrize('name', MODELS)
@settings(max_examples=3, deadline=None)
@given(angles=st.tuples(*[st.floats(0, 2 * math.pi)] * 3),
       shift=st.tuples(*[st.floats(-5, 5)] * 3))
def test_energy_invariant_to_rotation_and_translation(name, angles, shift):
    torch.manual_seed(0)
    model = MODELS[name]().double()
    pos = POS.double()
    energy = model(Z, pos, BATCH)
    moved = pos @ _rotation(*angles).double().t() + torch.tensor(
        shift, dtype=torch.double)
    torch.testing.assert_close(model(Z, moved, BATCH), energy, rtol=1e-9,
                               atol=1e-9)


@pytest.mark.parametrize('name', MODELS)
def test_energy_invariant_to_atom_permutation(name):
    torch.manual_seed(0)
    model = MODELS[name]()
    energy = model(Z, POS, BATCH)
    assert energy.shape == (2, 1)
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(model(Z[perm], POS[perm], BATCH[perm]),
                               energy, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('name', ['nmp_edge', 'hyper_convex_edge'])
def test_gradcheck_wrt_positions(name):
    torch.manual_seed(0)
    model = (NMPEdge(hidden_channels=4, num_layers=2, gaussian_step=1.0)
             if name == 'nmp_edge' else
             HyperNMPEdge(hidden_channels=4, num_layers=2, hyper_channels=2,
                          gaussian_step=1.0, combine='convex',
                          edge_hyper=True)).double()
    pos = POS.double().requires_grad_()
    assert torch.autograd.gradcheck(lambda p: model(Z, p, BATCH), (pos, ))


def test_hyper_factorized_equals_materialized():
    torch.manual_seed(0)
    model = HyperNMPEdge(hidden_channels=16, num_layers=3, hyper_channels=6,
                         edge_hyper=True)
    energy = model(Z, POS, BATCH)
    for conv in model.convs:
        conv.materialize = True
    torch.testing.assert_close(model(Z, POS, BATCH), energy, rtol=1e-5,
                               atol=1e-5)


def test_hyper_passes_read_the_embedding_as_first_state():
    # Every pass's hypernetwork reads the atom embedding as the first state
    # (the later passes too, whose current state has moved away from it).
    torch.manual_seed(0)
    model = HyperNMPEdge(hidden_channels=16, num_layers=3, hyper_channels=4)
    seen = []
    for conv in model.convs:
        conv.register_forward_hook(
            lambda mod, args, kwargs, out: seen.append(kwargs.get(
                'first_state', args[3] if len(args) > 3 else None)),
            with_kwargs=True)
    model(Z, POS, BATCH)
    embedding = model.embedding(Z)
    assert len(seen) == 3
    # The first pass may leave it out: its state is the embedding.
    assert seen[0] is None or torch.equal(seen[0], embedding)
    for i, first in enumerate(seen[1:], 1):
        assert first is not None, f'pass {i} got no first state'
        assert torch.equal(first, embedding), i


def test_cutoff_and_given_edges():
    torch.manual_seed(0)
    full = NMPEdge(hidden_channels=8, num_layers=1)
    far = NMPEdge(hidden_channels=8, num_layers=1, cutoff=100.0)
    near = NMPEdge(hidden_channels=8, num_layers=1, cutoff=1.2)
    far.load_state_dict(full.state_dict())
    near.load_state_dict(full.state_dict())
    e_full = full(Z, POS, BATCH)
    torch.testing.assert_close(far(Z, POS, BATCH), e_full)
    assert not torch.allclose(near(Z, POS, BATCH), e_full)
    # Passing the bond graph explicitly is the same as a covalent cutoff.
    bonds = torch.tensor([[0, 0, 0, 0, 1, 2, 3, 4, 5, 5, 6, 7],
                          [1, 2, 3, 4, 0, 0, 0, 0, 6, 7, 5, 5]])
    torch.testing.assert_close(full(Z, POS, BATCH, edge_index=bonds),
                               near(Z, POS, BATCH))


def test_normalization_and_atomref():
    torch.manual_seed(0)
    model = NMPEdge(hidden_channels=8, num_layers=1)
    raw = model(Z, POS, BATCH)
    atomref = torch.zeros(100)
    atomref[1], atomref[6], atomref[8] = -0.5, -38., -75.
    model.set_normalization(mean=2.0, std=3.0, atomref=atomref)
    n = torch.bincount(BATCH).view(-1, 1).float()
    ref = torch.tensor([[-38. - 4 * 0.5], [-75. - 2 * 0.5]])
    torch.testing.assert_close(model(Z, POS, BATCH), 3 * raw + 2 * n + ref)
    model.set_normalization(mean=2.0, std=3.0, per_atom=False)
    torch.testing.assert_close(model(Z, POS, BATCH), 3 * raw + 2)
    # Per molecule with reference energies: std * o + mean + sum(atomref);
    # the references were scaled by std.
    model.set_normalization(mean=2.0, std=3.0, atomref=atomref,
                            per_atom=False)
    torch.testing.assert_close(model(Z, POS, BATCH), 3 * raw + 2 + ref)
    with pytest.raises(ValueError, match="'std' must be positive"):
        model.set_normalization(std=0.0)


def test_trains_one_step():
    torch.manual_seed(0)
    model = HyperNMPEdge(hidden_channels=8, num_layers=2, hyper_channels=4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    target = torch.tensor([[1.0], [-1.0]])
    losses = []
    for _ in range(40):
        loss = (model(Z, POS, BATCH) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert min(losses[-10:]) < 0.5 * losses[0]


@pytest.mark.parametrize('name', ['nmp_edge', 'hyper'])
def test_bad_input(name):
    model = MODELS[name]()
    with pytest.raises(ValueError, match="needs atom coordinates 'pos'"):
        model(Z, None, BATCH)
    with pytest.raises(ValueError, match=r"'pos' of shape \[num_atoms, 3\]"):
        model(Z, POS[:, :2], BATCH)
    with pytest.raises(ValueError, match=r"one 'pos' row per atom"):
        model(Z, POS[:5], BATCH)
    nan_pos = POS.clone()
    nan_pos[3, 1] = float('nan')
    with pytest.raises(ValueError, match="NaN or infinite values in 'pos'"):
        model(Z, nan_pos, BATCH)
    with pytest.raises(ValueError, match=r"'pos' of its parameters' dtype "
                       r"torch.float32 \(got torch.float64\)"):
        model(Z, POS.double(), BATCH)
    # The message names the dtype that is wrong, not only the shape.
    with pytest.raises(ValueError, match=r"atomic numbers 'z' as an integer "
                       r"tensor of shape \[num_atoms\] \(got torch.float32 "
                       r"of shape \[\d+\]\)"):
        model(Z.float(), POS, BATCH)
    with pytest.raises(ValueError, match=r"one 'batch' entry per node"):
        model(Z, POS, BATCH[:4])
    with pytest.raises(ValueError, match='dtype torch.long'):
        model(Z, POS, BATCH.float())
    with pytest.raises(ValueError, match=r"graph index \d+ in 'batch' but was "
                       r"told there are 1 graphs"):
        model(Z, POS, BATCH, num_graphs=1)
    # Out of the embedding's range: a bare IndexError before.
    for bad in (200, -1):
        z = Z.clone()
        z[0] = bad
        with pytest.raises(ValueError, match=r"atomic numbers 'z' in "
                           r"\[0, 100\)"):
            model(z, POS, BATCH)
    with pytest.raises(ValueError, match="'num_layers' must be"):
        NMPEdge(num_layers=0)
    with pytest.raises(ValueError, match="'cutoff' must be positive"):
        NMPEdge(cutoff=-1.0)


@pytest.mark.parametrize('name', ['nmp_edge', 'hyper_convex_edge'])
def test_no_graph_breaks_given_edges_and_num_graphs(name):
    from pyg_hyper.nn import molecular_graph
    torch.manual_seed(0)
    model = MODELS[name]()
    edge_index = molecular_graph(POS, BATCH)
    explain = torch._dynamo.explain(model)(Z, POS, BATCH, edge_index, 2)
    assert explain.graph_break_count == 0
    # Without them the graph and the readout size depend on values.
    explain = torch._dynamo.explain(model)(Z, POS, BATCH)
    assert explain.graph_break_count > 0


def test_compiled_training_step_equals_eager():
    from pyg_hyper.nn import molecular_graph
    torch.manual_seed(0)
    model = MODELS['hyper']()
    edge_index = molecular_graph(POS, BATCH)
    compiled = torch.compile(model, fullgraph=True)
    out = compiled(Z, POS, BATCH, edge_index, 2)
    grads = torch.autograd.grad(out.square().sum(), model.parameters())
    ref = model(Z, POS, BATCH)
    ref_grads = torch.autograd.grad(ref.square().sum(), model.parameters())
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize('make', [NMPEdge, HyperNMPEdge])
def test_readout_mlp_halves_the_width_by_default(make):
    # NMP-Edge's (and SchNet's) atom-wise readout: C -> C/2 -> 1.
    model = make(hidden_channels=16, num_layers=2)
    assert (model.readout1.in_features, model.readout1.out_features) == (16, 8)
    assert (model.readout2.in_features, model.readout2.out_features) == (8, 1)
    model = make(hidden_channels=10, num_layers=2, readout_channels=3)
    assert model.readout1.out_features == 3


def test_edges_between_molecules_are_refused():
    # Given edge_index, NMPEdge summed messages across two molecules in
    # silence (IGN already refused such edges; both share the check now).
    model = NMPEdge(8)
    z = torch.tensor([6, 1, 8, 1])
    pos = torch.randn(4, 3)
    batch = torch.tensor([0, 0, 1, 1])
    within = torch.tensor([[0, 1, 2, 3], [1, 0, 3, 2]])
    assert model(z, pos, batch, edge_index=within).shape == (2, 1)
    across = torch.tensor([[0, 2], [2, 0]])
    with pytest.raises(ValueError, match="'NMPEdge' found edges in "
                       "'edge_index' that connect nodes of different graphs"):
        model(z, pos, batch, edge_index=across)
