import shutil
import zipfile

import pytest
import torch

from pyg_hyper.datasets import GINFormatDataset
from pyg_hyper.datasets.gin_format import parse_gin_graphs


def test_parse_small_text():
    text = '2\n3 1\n0 1 1\n1 2 0 2\n0 1 1\n1 0\n5 0\n'
    graphs = parse_gin_graphs(text)
    assert graphs == [(1, [0, 1, 0], [[1], [0, 2], [1]]), (0, [5], [[]])]
    with pytest.raises(ValueError, match='announces 2'):
        parse_gin_graphs('1\n2 0\n0 2 1\n0 1 0\n')
    with pytest.raises(ValueError, match='out of range'):
        parse_gin_graphs('1\n2 0\n0 1 7\n0 1 0\n')
    with pytest.raises(ValueError, match='ends inside a graph'):
        parse_gin_graphs('1\n3 0\n0 0\n')


@pytest.mark.parametrize('text,line,why', [
    # Declared one graph, holds two: the second used to be dropped.
    ('1\n1 0\n0 0\n1 1\n0 0\n', 4, r'the file declares 1 graph\(s\), but '
     r'more lines follow the last of them'),
    # Zero graphs used to parse as an empty dataset.
    ('0\n1 0\n0 0\n', 1, r'the number of graphs must be positive \(got '
     r'0\)'),
    ('1\n-2 0\n', 2, r'graph 0 \(from 0\) has a negative number of nodes '
     r'\(-2\)'),
    # These used to raise a bare ValueError / IndexError.
    ('x\n1 0\n0 0\n', 1, r"expected integers for the number of graphs "
     r"\(got 'x'\)"),
    ('1\n\n1 0\n0\n', 4, r"a node line needs at least 'tag k' \(got "
     r"'0'\)"),
    ('1\n1 0\n0 x\n', 3, r"expected integers for a node's tag and degree"),
    ('2\n1 0\n0 0\n', 4, r'the file ends after 1 of the 2 declared graphs'),
    ('1\n1\n0 0\n', 2, r"the header of graph 0 \(from 0\) must be 'n "
     r"label' \(got '1'\)"),
])
def test_malformed_text_names_file_and_line(text, line, why):
    with pytest.raises(ValueError, match=r"Malformed GIN-format file "
                       rf"'MUTAG.txt' at line {line}: {why}"):
        parse_gin_graphs(text, source='MUTAG.txt')


def write_toy_zip(path, text, test_folds):
    with zipfile.ZipFile(path, 'w') as zf:
        zf.writestr('TOY/TOY.txt', text)
        for k, test in enumerate(test_folds, 1):
            zf.writestr(f'TOY/10fold_idx/train_idx-{k}.txt', '0\n')
            zf.writestr(f'TOY/10fold_idx/test_idx-{k}.txt', test)


def test_toy_zip_and_empty_fold(tmp_path):
    # An empty test fold used to become a float tensor and fail as an index.
    write_toy_zip(tmp_path / 'TOY.zip', '2\n1 0\n0 0\n2 1\n1 1 1\n0 1 0\n',
                  [''] + ['1\n'] * 9)
    ds = GINFormatDataset(str(tmp_path), 'TOY')
    assert len(ds) == 2 and ds[1].edge_index.tolist() == [[0, 1], [1, 0]]
    assert ds.fold(0)[1].dtype == torch.long and ds.fold(0)[1].numel() == 0
    assert ds.fold(1)[1].tolist() == [1]


def test_unreadable_processed_file_is_rebuilt(tmp_path):
    write_toy_zip(tmp_path / 'TOY.zip', '2\n1 0\n0 0\n2 1\n1 1 1\n0 1 0\n',
                  ['0\n'] + ['1\n'] * 9)
    GINFormatDataset(str(tmp_path), 'TOY')
    folds = tmp_path / 'TOY' / 'gin_processed' / 'folds.pt'
    folds.write_bytes(b'')
    with pytest.warns(UserWarning, match=r"\['folds\.pt'\] .* cannot be "
                      r"read"):
        ds = GINFormatDataset(str(tmp_path), 'TOY')
    assert ds.fold(1)[1].tolist() == [1]


def test_malformed_zip_member_is_named(tmp_path):
    # Declares 1 graph, holds 2; the folds fit the declared graph.
    write_toy_zip(tmp_path / 'TOY.zip', '1\n1 0\n0 0\n1 0\n0 0\n',
                  ['0\n'] * 10)
    with pytest.raises(ValueError, match=r"Malformed GIN-format file "
                       r"'.*TOY.zip:TOY/TOY.txt' at line 4"):
        GINFormatDataset(str(tmp_path), 'TOY')


def test_mutag_with_published_folds(shared_data, tmp_path):
    shutil.copy(shared_data / 'GIN_format' / 'MUTAG.zip', tmp_path)
    ds = GINFormatDataset(str(tmp_path), 'MUTAG')
    # Figures of shared/data/README.md (and of the TU version).
    assert len(ds) == 188 and ds.num_features == 7 and ds.num_classes == 2
    assert ds._data.num_nodes == 3371
    assert ds._data.edge_index.size(1) == 2 * 3721
    assert torch.bincount(ds._data.y).tolist() == [63, 125]
    seen = []
    for k in range(10):
        train, test = ds.fold(k)
        assert len(set(train.tolist()) & set(test.tolist())) == 0
        assert train.numel() + test.numel() == 188
        seen += test.tolist()
    # The published test folds are disjoint but hold floor(188 / 10) graphs
    # each: 8 graphs (0, 13, 37, ...) are never tested, only trained on.
    assert len(seen) == len(set(seen)) == 180
    assert sorted(set(range(188)) - set(seen))[:3] == [0, 13, 37]
    # Reloading uses the processed files; the extracted layout works too.
    assert len(GINFormatDataset(str(tmp_path), 'MUTAG')) == 188
    extracted = tmp_path / 'extracted'
    with zipfile.ZipFile(shared_data / 'GIN_format' / 'MUTAG.zip') as zf:
        zf.extractall(extracted)
    again = GINFormatDataset(str(extracted), 'MUTAG')
    assert torch.equal(again.fold(3)[1], ds.fold(3)[1])
    assert torch.equal(again._data.x, ds._data.x)
    with pytest.raises(ValueError, match='fold must be in 0..9'):
        ds.fold(10)
    with pytest.raises(ValueError, match=r"fold must be in 0..9 \(got '1'\)"):
        ds.fold('1')


def test_pre_filter_keeps_folds_on_the_same_graphs(shared_data, tmp_path):
    # The published folds index the raw graphs; after a filter they must
    # still name the same graphs (they used to index the shortened list).
    (tmp_path / 'all').mkdir()
    shutil.copy(shared_data / 'GIN_format' / 'MUTAG.zip', tmp_path / 'all')
    full = GINFormatDataset(str(tmp_path / 'all'), 'MUTAG')
    (tmp_path / 'small').mkdir()
    shutil.copy(shared_data / 'GIN_format' / 'MUTAG.zip', tmp_path / 'small')
    small = GINFormatDataset(str(tmp_path / 'small'), 'MUTAG',
                             pre_filter=lambda d: d.num_nodes <= 17)
    kept = [i for i in range(len(full)) if full[i].num_nodes <= 17]
    assert 0 < len(small) == len(kept) < len(full)
    for k in (0, 7):
        for ours, theirs in zip(small.fold(k), full.fold(k)):
            expected = [kept.index(i) for i in theirs.tolist() if i in kept]
            assert ours.tolist() == expected
            for i, j in zip(ours.tolist(), expected):
                assert torch.equal(small[i].x, full[kept[j]].x)


def test_degree_as_tag(shared_data, tmp_path):
    shutil.copy(shared_data / 'GIN_format' / 'IMDBBINARY.zip', tmp_path)
    ds = GINFormatDataset(str(tmp_path), 'IMDBBINARY', degree_as_tag=True)
    g = ds[0]
    deg = torch.bincount(g.edge_index[0], minlength=g.num_nodes)
    # One-hot of the degree rank: equal degrees share a column.
    cols = g.x.argmax(1)
    assert all((cols[deg == d] == cols[deg == d][0]).all()
               for d in deg.unique())
    assert len(ds) == 1000 and ds.num_classes == 2
    # One column per degree that occurs in the dataset, in degree order.
    distinct = torch.cat([torch.bincount(h.edge_index[0],
                                         minlength=h.num_nodes)
                          for h in ds]).unique()
    assert ds.num_features == distinct.numel()
    assert torch.equal(cols, torch.searchsorted(distinct, deg))


def test_degree_as_tag_one_hot_is_the_degree_rank(tmp_path):
    # Every file tag is 5: only the degrees (1, 2, 1 on a path; 0 alone; 2
    # on a triangle) can give three columns, each node's at the rank of its
    # degree among the sorted distinct degrees [0, 1, 2].
    text = ('3\n'
            '3 0\n5 1 1\n5 2 0 2\n5 1 1\n'
            '1 1\n5 0\n'
            '3 1\n5 2 1 2\n5 2 0 2\n5 2 0 1\n')
    write_toy_zip(tmp_path / 'TOY.zip', text, ['0\n'] * 10)
    ds = GINFormatDataset(str(tmp_path), 'TOY', degree_as_tag=True)
    assert ds.num_features == 3
    for g, degrees in zip(ds, ([1, 2, 1], [0], [2, 2, 2])):
        assert g.x.sum(1).tolist() == [1.0] * len(degrees)
        assert g.x.argmax(1).tolist() == degrees
    # Without it the file's single tag is the only feature.
    (tmp_path / 'tags').mkdir()
    write_toy_zip(tmp_path / 'tags' / 'TOY.zip', text, ['0\n'] * 10)
    assert GINFormatDataset(str(tmp_path / 'tags'), 'TOY').num_features == 1


def test_missing_raw_data(tmp_path):
    with pytest.raises(FileNotFoundError, match="expected 'NOPE.zip' or "
                       "'NOPE/NOPE.txt'"):
        GINFormatDataset(str(tmp_path), 'NOPE')


def test_unknown_name_lists_what_the_root_holds(tmp_path):
    # A typo ('MUTAGG') used to name only the files it looked for.
    write_toy_zip(tmp_path / 'TOY.zip', '1\n1 0\n0 0\n', ['0\n'] * 10)
    (tmp_path / 'OTHER').mkdir()
    (tmp_path / 'OTHER' / 'OTHER.txt').write_text('0\n')
    with pytest.raises(FileNotFoundError, match=r"Datasets in that root: "
                       r"OTHER, TOY \(the GIN collection: COLLAB, "
                       r"IMDBBINARY, .*MUTAG"):
        GINFormatDataset(str(tmp_path), 'MUTAGG')


def test_trailing_node_attributes_are_ignored():
    # Guards against refusing node lines with attributes after the
    # neighbours (the GIN format allows them; they are not read).
    graphs = parse_gin_graphs('1\n2 0\n0 1 1 0.5 0.25\n0 1 0 0.1 0.2\n')
    assert graphs == [(0, [0, 0], [[1], [0]])]


def test_neighbor_equal_to_node_count_is_out_of_range():
    # Guards against an off-by-one accepting neighbour index == n.
    with pytest.raises(ValueError, match='out of range for a graph of 2'):
        parse_gin_graphs('1\n2 0\n0 1 2\n0 1 0\n')


def test_fold_index_equal_to_graph_count_is_refused(tmp_path):
    # Guards against an off-by-one accepting a fold index == number of
    # graphs.
    write_toy_zip(tmp_path / 'TOY.zip', '2\n1 0\n0 0\n2 1\n1 1 1\n0 1 0\n',
                  ['2\n'] + ['1\n'] * 9)
    with pytest.raises(ValueError, match=r'indexes graphs outside 0\.\.1'):
        GINFormatDataset(str(tmp_path), 'TOY')


def test_degree_tags_do_not_reuse_the_tag_cache(tmp_path):
    # Guards against degree_as_tag=True sharing the processed folder of the
    # file's tags, in the same root, and being served that cache.
    text = ('3\n3 0\n5 1 1\n5 2 0 2\n5 1 1\n1 1\n5 0\n'
            '3 1\n5 2 1 2\n5 2 0 2\n5 2 0 1\n')
    write_toy_zip(tmp_path / 'TOY.zip', text, ['0\n'] * 10)
    assert GINFormatDataset(str(tmp_path), 'TOY').num_features == 1
    assert GINFormatDataset(str(tmp_path), 'TOY',
                            degree_as_tag=True).num_features == 3
