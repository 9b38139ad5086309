import os
import shutil
import socket
import stat
import time
from pathlib import Path

import pytest

from pyg_hyper.datasets import (
    MissingRawFilesError,
    load_node_dataset,
    missing_raw_files,
)
from pyg_hyper.experiment.results import default_file_mode

SHARED = Path(__file__).resolve().parents[2] / '..' / 'shared' / 'data'
needs_shared = pytest.mark.skipif(not SHARED.is_dir(),
                                  reason=f'no shared data at {SHARED}')


def test_cora_loads_offline_from_packaged_files(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError('network disabled in this test')

    monkeypatch.setattr(socket, 'create_connection', no_network)
    data = load_node_dataset('cora', str(tmp_path))[0]
    assert (data.num_nodes, data.num_edges, data.num_features) == (2708,
                                                                   10556, 1433)
    assert int(data.train_mask.sum()) == 140


def test_pre_transform_and_force_reload_reach_pygs_class(tmp_path):
    # As with PyG's own classes: pre_transform runs once, before saving,
    # and force_reload processes again (with the new pre_transform).
    import torch_geometric.transforms as T
    plain = load_node_dataset('cora', str(tmp_path))[0]
    again = load_node_dataset('cora', str(tmp_path),
                              pre_transform=T.AddSelfLoops())[0]
    assert again.num_edges == plain.num_edges  # cached: not re-processed
    looped = load_node_dataset('cora', str(tmp_path), force_reload=True,
                               pre_transform=T.AddSelfLoops())[0]
    assert looped.num_edges == plain.num_edges + plain.num_nodes


def test_unknown_name_lists_valid(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'Coral'; valid "
                       "datasets: Cora, CiteSeer, PubMed, Computers, Photo, "
                       "Chameleon, Squirrel"):
        load_node_dataset('Coral', str(tmp_path))


def test_missing_files_fail_fast_with_list_and_place(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError('network disabled in this test')

    monkeypatch.setattr(socket, 'create_connection', no_network)
    raw = tmp_path / 'Planetoid' / 'CiteSeer' / 'raw'
    raw.mkdir(parents=True)
    # Present, so not listed as missing; that it is truncated only shows
    # once all files are there and PyG reads them (see
    # test_truncated_raw_file_is_named).
    (raw / 'ind.citeseer.x').write_bytes(b'partial')
    start = time.perf_counter()
    with pytest.raises(MissingRawFilesError) as info:
        load_node_dataset('CiteSeer', str(tmp_path))
    assert time.perf_counter() - start < 5
    msg = str(info.value)
    assert 'ind.citeseer.tx' in msg and 'ind.citeseer.x,' not in msg
    assert str(raw) in msg and 'not reachable' in msg and 'raw_source' in msg
    assert 'connect to the internet' in msg
    # With downloading off, "connect to the internet" alone would not help.
    with pytest.raises(MissingRawFilesError, match=r'downloading is disabled'
                       r'.*allow downloading \(download=True\)'):
        load_node_dataset('Photo', str(tmp_path), download=False)
    # A mistyped raw_source used to be skipped, and the message then
    # advised passing a raw_source.
    with pytest.raises(MissingRawFilesError, match="raw_source "
                       "'/no/such/folder' is not a folder"):
        load_node_dataset('CiteSeer', str(tmp_path),
                          raw_source='/no/such/folder')
    empty = tmp_path / 'empty_source'
    empty.mkdir()
    with pytest.raises(MissingRawFilesError, match="raw_source "
                       f"'{empty}' lacks them too"):
        load_node_dataset('CiteSeer', str(tmp_path), raw_source=str(empty))


def test_truncated_raw_file_is_named(tmp_path):
    from pyg_hyper.datasets import node_classification as nc
    raw = tmp_path / 'Planetoid' / 'Cora' / 'raw'
    shutil.copytree(os.path.join(nc._PACKAGE_DATA, 'Planetoid', 'Cora',
                                 'raw'), raw)
    allx = raw / 'ind.cora.allx'
    allx.write_bytes(allx.read_bytes()[:1000])  # an interrupted copy
    # PyG's bare 'UnpicklingError: pickle data was truncated' named no file.
    with pytest.raises(MissingRawFilesError) as info:
        load_node_dataset('Cora', str(tmp_path), download=False)
    msg = str(info.value)
    assert f"raw files in '{raw}' that look truncated or corrupt: " \
        f"ind.cora.allx (UnpicklingError: pickle data was truncated)" in msg
    assert 'ind.cora.x ' not in msg and 'ind.cora.test.index' not in msg
    assert 'Delete them, then put good copies in that folder' in msg
    assert 'raw_source' in msg

    # A text file cut mid-line is named too.
    shutil.copy(os.path.join(nc._PACKAGE_DATA, 'Planetoid', 'Cora', 'raw',
                             'ind.cora.allx'), allx)
    index = raw / 'ind.cora.test.index'
    index.write_text('2692\n2532\n26')
    allx.write_bytes(allx.read_bytes()[:1000])
    with pytest.raises(MissingRawFilesError,
                       match=r'ind.cora.allx \(UnpicklingError: .*\), '
                       r'ind.cora.test.index \(the last line is cut off\)'):
        load_node_dataset('Cora', str(tmp_path), download=False)


def test_interrupted_raw_copy_leaves_no_partial_file(tmp_path,
                                                     monkeypatch):
    from pyg_hyper.datasets import node_classification as nc
    source = tmp_path / 'source'
    shutil.copytree(nc._PACKAGE_DATA, source)
    root = tmp_path / 'root'
    copy = shutil.copyfileobj
    calls = []

    def copy_then_fail(src, dst, *args):
        calls.append(1)
        if len(calls) == 3:  # the third file: half written, then killed
            dst.write(src.read(100))
            raise KeyboardInterrupt
        copy(src, dst, *args)

    monkeypatch.setattr(nc.shutil, 'copyfileobj', copy_then_fail)
    with pytest.raises(KeyboardInterrupt):
        load_node_dataset('Cora', str(root), raw_source=str(source),
                          download=False)
    missing = missing_raw_files('Cora', str(root))
    # Only the interrupted file is missing (a partial copy would count as
    # present and be parsed), and no temporary file is left behind.
    assert len(missing) == len(nc.NODE_DATASETS['Cora'].files) - 2
    assert not list(root.rglob('.tmp-*'))
    monkeypatch.setattr(nc.shutil, 'copyfileobj', copy)
    data = load_node_dataset('Cora', str(root), raw_source=str(source),
                             download=False)[0]
    assert data.num_nodes == 2708
    # Staged files get the user's usual permissions, not mkstemp's 0o600.
    raw = root / 'Planetoid' / 'Cora' / 'raw' / 'ind.cora.x'
    assert stat.S_IMODE(raw.stat().st_mode) == default_file_mode()


@needs_shared
def test_raw_source_copies_and_unpacks(tmp_path):
    data = load_node_dataset('CiteSeer', str(tmp_path),
                             raw_source=str(SHARED), download=False)[0]
    assert (data.num_nodes, data.num_features) == (3327, 3703)
    assert missing_raw_files('CiteSeer', str(tmp_path)) == []
    # Amazon is stored zipped in the shared folder.
    photo = load_node_dataset('Photo', str(tmp_path), raw_source=str(SHARED),
                              download=False)[0]
    assert (photo.num_nodes, photo.num_features) == (7650, 745)


@needs_shared
def test_chameleon_has_ten_geom_gcn_splits(tmp_path):
    src = SHARED / 'WikipediaNetwork' / 'chameleon'
    shutil.copytree(src, tmp_path / 'WikipediaNetwork' / 'chameleon')
    data = load_node_dataset('Chameleon', str(tmp_path), download=False)[0]
    assert data.num_nodes == 2277 and data.train_mask.shape == (2277, 10)


def test_unwritable_root(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    with pytest.raises(ValueError, match='cannot be created'):
        # Cora's raw files come from the package; the root itself is bad.
        load_node_dataset('Cora', str(blocker / 'root'))
    assert not os.path.exists(blocker / 'root')


def _packaged_cora(root):
    from pyg_hyper.datasets import node_classification as nc
    raw = root / 'Planetoid' / 'Cora' / 'raw'
    shutil.copytree(os.path.join(nc._PACKAGE_DATA, 'Planetoid', 'Cora',
                                 'raw'), raw)
    return raw


def test_raw_file_cut_at_a_line_boundary_is_refused(tmp_path):
    # It reads without any error: 900 test nodes, the rest unpermuted.
    raw = _packaged_cora(tmp_path)
    index = raw / 'ind.cora.test.index'
    index.write_text(''.join(index.read_text().splitlines(True)[:900]))
    with pytest.raises(MissingRawFilesError,
                       match=r"has a public split of 500 validation and 900 "
                       r"test nodes, where it has 500 and 1000: a raw file "
                       r"is probably cut short"):
        load_node_dataset('Cora', str(tmp_path), download=False)


@needs_shared
def test_cut_edge_list_is_refused(tmp_path):
    src = SHARED / 'WikipediaNetwork' / 'chameleon'
    shutil.copytree(src, tmp_path / 'WikipediaNetwork' / 'chameleon')
    edges = (tmp_path / 'WikipediaNetwork' / 'chameleon' / 'geom_gcn' /
             'raw' / 'out1_graph_edges.txt')
    edges.write_text(''.join(edges.read_text().splitlines(True)[:20000]))
    with pytest.raises(MissingRawFilesError, match=r"2,277 nodes and .* "
                       r"edges, where the published graph has 2,277 and "
                       r"36,101"):
        load_node_dataset('Chameleon', str(tmp_path), download=False)


def test_home_in_root_is_expanded(tmp_path, monkeypatch):
    # PyG expands '~'; finding the raw files under a literal './~' instead
    # sent it downloading.
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    monkeypatch.chdir(tmp_path)
    data = load_node_dataset('Cora', '~/pyg', download=False)[0]
    assert data.num_nodes == 2708
    assert (tmp_path / 'home' / 'pyg' / 'Planetoid' / 'Cora' / 'raw').is_dir()
    assert not (tmp_path / '~').exists()


def test_unreadable_processed_file_is_rebuilt(tmp_path):
    first = load_node_dataset('Cora', str(tmp_path), download=False)[0]
    processed = tmp_path / 'Planetoid' / 'Cora' / 'processed' / 'data.pt'
    processed.write_bytes(processed.read_bytes()[:1000])  # cut mid-write
    with pytest.warns(UserWarning, match=r"processed files \['data\.pt'\] "
                      r"in .* cannot be read .*; rebuilding them from the "
                      r"raw files"):
        again = load_node_dataset('Cora', str(tmp_path), download=False)[0]
    assert again.x.equal(first.x) and again.edge_index.equal(
        first.edge_index)


def test_damaged_copy_in_raw_source_is_named(tmp_path):
    import gzip
    from pyg_hyper.datasets import node_classification as nc
    source = tmp_path / 'source' / 'Planetoid' / 'Cora' / 'raw'
    source.mkdir(parents=True)
    packed = gzip.compress((Path(nc._PACKAGE_DATA) / 'Planetoid' / 'Cora' /
                            'raw' / 'ind.cora.allx').read_bytes())
    (source / 'ind.cora.allx.gz').write_bytes(packed[:len(packed) // 2])
    with pytest.raises(MissingRawFilesError,
                       match=r"raw file '.*ind\.cora\.allx\.gz' cannot be "
                       r"read \(EOFError: .*\); replace it"):
        load_node_dataset('Cora', str(tmp_path / 'root'),
                          raw_source=str(tmp_path / 'source'),
                          download=False)
    # No partial file left.
    assert 'ind.cora.allx' in missing_raw_files('Cora', str(tmp_path / 'root'))
    assert not list((tmp_path / 'root').rglob('.tmp-*'))
    # An unrelated damaged zip does not matter once nothing is missing.
    (source / 'ind.cora.allx.gz').unlink()
    for f in (Path(nc._PACKAGE_DATA) / 'Planetoid' / 'Cora' / 'raw').iterdir():
        shutil.copy(f, source / f.name)
    (source / 'junk.zip').write_bytes(b'PK\x03\x04 not a zip')
    data = load_node_dataset('Cora', str(tmp_path / 'root2'),
                             raw_source=str(tmp_path / 'source'),
                             download=False)[0]
    assert data.num_nodes == 2708


def test_missing_files_message_lists_every_missing_file(tmp_path):
    # Guards against the error naming only the first missing raw file.
    raw = tmp_path / 'Planetoid' / 'CiteSeer' / 'raw'
    raw.mkdir(parents=True)
    (raw / 'ind.citeseer.x').write_bytes(b'partial')
    with pytest.raises(MissingRawFilesError) as info:
        load_node_dataset('CiteSeer', str(tmp_path), download=False)
    for ext in ('tx', 'allx', 'y', 'ty', 'ally', 'graph', 'test.index'):
        assert f'ind.citeseer.{ext}' in str(info.value), ext


def test_damaged_npz_is_named(shared_data, tmp_path):
    # Guards against skipping the CRC check of .npz raw files: a same-size
    # damaged archive must be named, not fail later inside PyG.
    load_node_dataset('Photo', str(tmp_path), raw_source=str(shared_data),
                      download=False)
    npz = tmp_path / 'Amazon' / 'Photo' / 'raw' / \
        'amazon_electronics_photo.npz'
    data = bytearray(npz.read_bytes())
    data[len(data) // 2:len(data) // 2 + 64] = b'\x00' * 64  # same size
    npz.write_bytes(bytes(data))
    shutil.rmtree(tmp_path / 'Amazon' / 'Photo' / 'processed')
    with pytest.raises(MissingRawFilesError,
                       match=r'amazon_electronics_photo\.npz \(BadZipFile'):
        load_node_dataset('Photo', str(tmp_path), download=False)
