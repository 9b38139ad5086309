import re

import pytest
import torch
from torch_geometric.utils import to_torch_coo_tensor

from pyg_hyper.utils import (
    check_channels,
    check_edge_attr,
    check_edge_index,
    check_finite,
    check_shape,
)


def test_check_channels():
    check_channels('L', 'x', torch.randn(3, 4), 4)
    check_channels('L', 'x', None, 4)
    with pytest.raises(ValueError, match=r"'L' expected 'x' of shape "
                       r"\[num_rows, 4\] \(got \[3\]\)"):
        check_channels('L', 'x', torch.randn(3), 4)


def test_check_edge_index_sparse_size():
    adj = to_torch_coo_tensor(torch.tensor([[0, 1], [1, 0]]), size=(2, 2))
    check_edge_index('L', adj, 2, 2)
    with pytest.raises(ValueError, match=r'size \[3, 3\]'):
        check_edge_index('L', adj, 3, 3)
    with pytest.raises(ValueError, match='got list'):
        check_edge_index('L', [[0, 1], [1, 0]], 2, 2)


def test_check_edge_index_bipartite_ranges():
    # 5 source nodes, 2 target nodes: each row of edge_index is checked
    # against its own side. Target 3 fits among the sources but not among
    # the targets; source 4 fits among the sources only.
    check_edge_index('L', torch.tensor([[4, 0], [1, 0]]), 5, 2)
    with pytest.raises(ValueError, match=re.escape(
            "'L' found node indices out of range in 'edge_index' (largest "
            "source index 4 for 5 source nodes, largest target index 3 for "
            "2 target nodes)")):
        check_edge_index('L', torch.tensor([[4, 0], [3, 0]]), 5, 2)
    with pytest.raises(ValueError, match=r'largest source index 5 for 5 '
                       r'source nodes'):
        check_edge_index('L', torch.tensor([[5, 0], [1, 0]]), 5, 2)


def test_check_edge_attr_one_dimensional():
    # No layer reads a vector as one feature per edge: a length-1 vector
    # used to broadcast to every edge. The message says how to reshape.
    check_edge_attr('L', torch.randn(5, 1), 1, 5)
    for bad in (torch.randn(5), torch.randn(1)):
        with pytest.raises(ValueError, match=r"'L' expected 'edge_attr' of "
                           r"shape \[num_edges, 1\] \(got \[\d\]\) \(reshape"
                           r".*'edge_attr.view\(-1, 1\)'"):
            check_edge_attr('L', bad, 1, 5)
    with pytest.raises(ValueError, match=r'\[num_edges, 2\] \(got \[5\]\)$'):
        check_edge_attr('L', torch.randn(5), 2, 5)
    with pytest.raises(ValueError, match=r"one 'edge_attr' row per edge "
                       r"\(5\), got 1"):
        check_edge_attr('L', torch.randn(1, 1), 1, 5)


def test_check_batch():
    from pyg_hyper.utils import check_batch
    check_batch('M', torch.tensor([0, 0, 1]), 3, num_graphs=2)
    check_batch('M', None, 3)
    cases = [
        (torch.tensor([0., 0., 1.]), 3, None,
         r"'batch' to be graph indices of dtype torch.long and shape "
         r"\[num_nodes\] \(got torch.float32 of shape \[3\]\)"),
        (torch.tensor([0, 1]), 3, None,
         r"one 'batch' entry per node \(3\), got 2"),
        (torch.tensor([0, -1, 1]), 3, None, 'negative graph indices'),
        (torch.tensor([0, 1, 2]), 3, 2,
         r"graph index 2 in 'batch' but was told there are 2 graphs"),
    ]
    for batch, num_nodes, num_graphs, match in cases:
        with pytest.raises(ValueError, match=match):
            check_batch('M', batch, num_nodes, num_graphs)


def test_check_positive_int():
    from pyg_hyper.utils import check_positive_int
    check_positive_int('L', a=1, b=7)
    for bad in (0, -2, 2.5, True, '3', None):
        with pytest.raises(ValueError, match=rf"'L' needs a positive integer "
                           rf"'b' \(got {re.escape(repr(bad))}\)"):
            check_positive_int('L', a=1, b=bad)


def test_check_finite_and_shape():
    check_finite('L', 'pos', torch.zeros(2, 3))
    with pytest.raises(ValueError, match="NaN or infinite values in 'pos'"):
        check_finite('L', 'pos', torch.tensor([[0.0, float('nan'), 1.0]]))
    with pytest.raises(ValueError, match=r"'pos' of shape \[2, 3\]"):
        check_shape('L', 'pos', torch.zeros(2, 2), (2, 3))


def test_image_and_kernel_checks():
    from pyg_hyper.utils import (
        check_image,
        check_kernel_fits,
        check_kernel_size,
        check_padding_mode,
    )
    check_image('L', 'x', torch.zeros(2, 3, 8, 8), 3)
    with pytest.raises(ValueError, match=r"'L' expected 'x' with 3 channels, "
                       r"i\.e\. of shape \[batch_size, 3, height, width\] "
                       r"\(got 4 channels"):
        check_image('L', 'x', torch.zeros(2, 4, 8, 8), 3)
    with pytest.raises(ValueError, match='square'):
        check_kernel_size('L', (3, 5), square=True)
    with pytest.raises(ValueError, match="'L' has a 9x9 kernel, which is "
                       "larger than the 8x8 input image"):
        check_kernel_fits('L', (9, 9), 8, 8)
    with pytest.raises(ValueError, match='wrap'):
        check_padding_mode('L', 'wrap')


def test_check_channels_dtype():
    x = torch.zeros(3, 4, dtype=torch.float64)
    check_channels('L', 'x', x, 4, torch.float64)
    with pytest.raises(ValueError, match=r"'L' expected 'x' of its "
                       r"parameters' dtype torch.float32 \(got torch.float64\)"
                       r"; convert the input"):
        check_channels('L', 'x', x, 4, torch.float32)
    with pytest.raises(ValueError, match=r"or the module \(e.g. "
                       r"'.to\(torch.float64\)'\)"):
        check_channels('L', 'x', x, 4, torch.float32)
    with pytest.raises(ValueError, match=r"\(got torch.int64\)") as info:
        check_channels('L', 'x', x.long(), 4, torch.float32)
    # A module cannot take an integer dtype: only the input's fix is given.
    assert str(info.value).endswith("convert the input (e.g. "
                                    "'x.to(torch.float32)')")
    # Under autocast the products cast floating inputs themselves.
    with torch.autocast('cpu', dtype=torch.bfloat16):
        check_channels('L', 'x', x, 4, torch.float32)
        with pytest.raises(ValueError, match=r"\(got torch.int64\)"):
            check_channels('L', 'x', x.long(), 4, torch.float32)


def test_negative_target_index_is_refused():
    # Guards against checking only the source row of edge_index for
    # negative indices.
    with pytest.raises(ValueError, match='negative node indices'):
        check_edge_index('L', torch.tensor([[0, 1], [1, -1]]), 2, 2)


def test_duplicate_node_indices_are_refused():
    # Guards against a non-strict sortedness check letting duplicates in a
    # node index through.
    from pyg_hyper.utils import check_node_index
    with pytest.raises(ValueError, match='sorted and without duplicates'):
        check_node_index('L', 'idx', torch.tensor([1, 1, 2]), 5)


def test_dense_size_exactly_at_the_limit_passes():
    # Guards against an off-by-one refusing a dense tensor of exactly
    # max_bytes.
    from pyg_hyper.utils import check_dense_size
    check_dense_size('L', 1, 2, 1, max_bytes=16)  # 1 * 1 * 2 * 2 * 4 bytes
    with pytest.raises(ValueError, match='more than the limit'):
        check_dense_size('L', 1, 2, 1, max_bytes=15)


def test_odd_kernel_needs_both_sides_odd():
    # Guards against accepting a kernel with one even side when odd sizes
    # are required.
    from pyg_hyper.utils import check_kernel_size
    assert check_kernel_size('L', (3, 5), odd=True) == (3, 5)
    for size in ((3, 4), (4, 3)):
        with pytest.raises(ValueError, match="requires an odd 'kernel_size'"):
            check_kernel_size('L', size, odd=True)


def test_first_few_adds_nothing_when_all_are_shown():
    # Guards against an 'and 0 more' suffix when every item is listed.
    from pyg_hyper.utils.checks import first_few
    assert first_few(['a', 'b'], 2, 2) == 'a, b'
    assert first_few(['a', 'b', 'c'], 3, 2) == 'a, b and 1 more'
