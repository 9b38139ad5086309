"""Collects results/*.json into the summary tables of the README and the docs
tutorial, and copies the pictures into docs/source/_static/vision/.

    python experiments/vision/summarize.py
"""
import json
import re
import shutil

import _common

from pyg_hyper.experiment.results import atomic_write_text

ORDER = ['dfn_steerable', 'moving_digits', 'moving_digits_shared',
         'klein_blobs',
         'static_hypernet_digits', 'hyperconv_noise', 'hyperseg_synthetic',
         'conditioned_sr']
STATIC = _common.ROOT / 'docs' / 'source' / '_static' / 'vision'
README = _common.RESULTS.parent / 'README.md'
BEGIN, END = '<!-- results:begin -->', '<!-- results:end -->'


def load_records():
    """The recorded reproductions, in :data:`ORDER`."""
    records = []
    for name in ORDER:
        path = _common.RESULTS / f'{name}.json'
        if path.exists():
            records.append(json.loads(path.read_text()))
    return records


def tables(records):
    """The README's markdown table and the tutorial's reST table."""
    md = ['| Reproduction | Claim | Result | Runtime (s) |', '|---|---|---|---|']
    rst = ['.. list-table::', '   :header-rows: 1', '   :widths: 18 35 47',
           '', '   * - Reproduction', '     - Claim', '     - Result']
    for r in records:
        md.append(f"| [{r['name']}](results/{r['name']}.md) | {r['claim']} "
                  f"| {r['verdict']} | {r['runtime_s']} |")
        rst += [f"   * - ``{r['name']}``", f"     - {r['claim']}",
                f"     - {r['verdict']}"]
    return '\n'.join(md), '\n'.join(rst) + '\n'


def readme_with(text, md):
    """:obj:`text` with the block between the results markers replaced."""
    block = BEGIN + '\n' + md + '\n' + END
    return re.sub(re.escape(BEGIN) + '.*?' + re.escape(END),
                  lambda _: block, text, flags=re.S)


def main():
    records = load_records()
    md, rst = tables(records)
    atomic_write_text(str(_common.RESULTS / 'summary.rst'), rst)
    atomic_write_text(str(README), readme_with(README.read_text(), md))
    STATIC.mkdir(parents=True, exist_ok=True)
    for r in records:
        png = _common.RESULTS / f"{r['name']}.png"
        if png.exists():
            shutil.copyfile(png, STATIC / png.name)
    print(md)


if __name__ == '__main__':
    main()
