"""The vision reproductions' summaries must say what their records say.

``experiments/vision/summarize.py`` copies each recorded verdict into the
README's results block, the tutorial's table (``results/summary.rst``) and
the docs' pictures. After a script is rerun and ``summarize.py`` forgotten,
the README would quote a verdict no record holds.
"""
import importlib.util
import sys
from pathlib import Path

import pytest

VISION = Path(__file__).resolve().parents[1] / 'experiments' / 'vision'
STATIC = VISION.parents[1] / 'docs' / 'source' / '_static' / 'vision'


@pytest.fixture(scope='module')
def summarize():
    # A unique module name: experiments/tu has a summarize.py too.
    spec = importlib.util.spec_from_file_location(
        'vision_summarize', VISION / 'summarize.py')
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(VISION))  # for its `import _common`
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(VISION))


def test_every_reproduction_is_recorded(summarize):
    recorded = sorted(p.stem for p in (VISION / 'results').glob('*.json'))
    assert recorded == sorted(summarize.ORDER)
    for name in summarize.ORDER:
        for suffix in ('.md', '.png'):
            assert (VISION / 'results' / f'{name}{suffix}').is_file(), name


def test_records_name_their_command_and_environment(summarize):
    for record in summarize.load_records():
        assert record['command'].startswith(
            'python experiments/vision/'), record['name']
        env = record['environment']
        for key in ('torch', 'python', 'cpu', 'torch_threads'):
            assert env.get(key), (record['name'], key)
        assert record['claim'] and record['verdict'], record['name']


def test_readme_and_tutorial_tables_are_current(summarize):
    md, rst = summarize.tables(summarize.load_records())
    readme = (VISION / 'README.md').read_text()
    assert summarize.readme_with(readme, md) == readme, (
        'experiments/vision/README.md is stale: run '
        'python experiments/vision/summarize.py')
    assert (VISION / 'results' / 'summary.rst').read_text() == rst


def test_docs_pictures_are_the_recorded_ones(summarize):
    for name in summarize.ORDER:
        recorded = (VISION / 'results' / f'{name}.png').read_bytes()
        assert (STATIC / f'{name}.png').read_bytes() == recorded, name


def test_readme_block_keeps_backslashes(summarize):
    # A verdict is free text: a backslash in it must reach the README as
    # written (re.sub would read '\d' in a replacement string as an escape).
    text = 'intro\n' + summarize.BEGIN + '\nold\n' + summarize.END + '\nend'
    md = r'| a | loss \delta drops by 2\% |'
    out = summarize.readme_with(text, md)
    assert out == ('intro\n' + summarize.BEGIN + '\n' + md + '\n' +
                   summarize.END + '\nend')
    assert summarize.readme_with(out, 'new').count(summarize.BEGIN) == 1
