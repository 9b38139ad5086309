"""Every ``pyg-hyper train`` command the READMEs (and the tutorials' shell
blocks) give must still resolve.

The READMEs give "the exact commands" of each experiment. A renamed config
file or config key would leave a stale command behind, so each command is
extracted from the READMEs' shell code blocks (and inline code spans) and
run through ``pyg_hyper.cli.main(['train', ..., '--dry-run'])`` from the
repository root: every config file must exist, every override key and
value type must be valid, and a command whose ``--out`` holds a recorded
run must be able to continue it (the config the record ran with, its
seeds), so that rerunning it resumes instead of being refused.
``--dry-run`` only resolves and checks; nothing is trained or written.

The extraction understands just enough shell for these blocks: backslash
continuations, ``#`` comments, ``VAR="..."`` assignments expanded as ``$VAR``,
``for VAR in a b c; do ... done`` loops (each value is checked), ``&&`` / ``;``
/ ``|`` chains, brace expansion and ``*.yaml`` globs (relative to the
repository root), and wrappers such as ``torchrun ... -m pyg_hyper.cli train``
or ``python -m pyg_hyper train``.
"""
import glob
import os
import re
import shlex
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple

import pytest

from pyg_hyper.cli import main

ROOT = Path(__file__).resolve().parents[1]

#: READMEs that must give at least one train command.
REQUIRED_READMES = (
    'README.md',
    'experiments/citation/README.md',
    'experiments/ogb/README.md',
    'experiments/qm9/README.md',
    'experiments/tu/README.md',
)
#: Every README checked (an experiment README added later is picked up too),
#: and the Sphinx tutorials, whose ``.. code-block:: bash`` blocks give
#: commands too.
READMES = tuple(dict.fromkeys(REQUIRED_READMES + tuple(sorted(
    str(p.relative_to(ROOT)) for p in ROOT.glob('experiments/*/README.md')))
    + tuple(sorted(str(p.relative_to(ROOT)) for p in
                   ROOT.glob('docs/source/tutorials/*.rst')))))

#: Placeholders that some commands leave for the reader to fill in, and the
#: dummy value each is replaced by here. A dry run reads no data and writes
#: nothing, so any path will do. A placeholder not listed makes its command
#: fail (``<...>`` is otherwise read as a shell redirection), and a listed one
#: no README uses any more fails ``test_placeholders_are_used``.
PLACEHOLDERS: Dict[str, str] = {
    '<qm9 cache>': '/tmp/pyg-hyper-readme-check/qm9-cache',  # data.root=
    '<dir>': '/tmp/pyg-hyper-readme-check/out',  # --out
}

#: Code fences read as shell (the TU README's blocks carry no language).
SHELL_FENCES = ('', 'bash', 'sh', 'shell', 'console')

#: A train invocation as written in a README line.
INVOCATION = re.compile(r'(?:pyg-hyper|-m\s+pyg_hyper(?:\.cli)?)\s+train\b')


class Command(NamedTuple):
    readme: str
    line: int  # 1-based line of the README where the command starts
    bindings: Tuple[Tuple[str, str], ...]  # loop variables, for the test id
    args: Tuple[str, ...]  # the arguments after 'train'
    placeholders: Tuple[str, ...]  # placeholders substituted in its text


def _fences(text: str):
    """Yields (language, first line number, body lines) of each fenced
    block."""
    lines = text.split('\n')
    i = 0
    while i < len(lines):
        m = re.match(r'^\s*(```+|~~~+)\s*([\w+-]*)', lines[i])
        if not m:
            i += 1
            continue
        fence, lang = m.group(1), m.group(2).lower()
        body = []
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j])
            j += 1
        yield lang, i + 2, body, (i, j)
        i = j + 1


def _rst_blocks(text: str):
    """Yields (language, first line number, body lines) of each reST
    ``.. code-block::`` (its indented body, dedented)."""
    lines = text.split('\n')
    for i, line in enumerate(lines):
        m = re.match(r'^(\s*)\.\. code-block::\s*([\w+-]*)\s*$', line)
        if not m:
            continue
        j = i + 1
        while j < len(lines) and (not lines[j].strip() or lines[j].strip()
                                  .startswith(':')):
            j += 1  # options and the blank line before the body
        start = j
        indent = len(m.group(1))
        while j < len(lines) and (not lines[j].strip() or len(lines[j]) -
                                  len(lines[j].lstrip()) > indent):
            j += 1
        body = lines[start:j]
        width = min((len(b) - len(b.lstrip()) for b in body if b.strip()),
                    default=0)
        yield m.group(2).lower(), start + 1, [b[width:] for b in body], \
            (i, j - 1)


def _blocks(readme: str, text: str):
    return _rst_blocks(text) if readme.endswith('.rst') else _fences(text)


def _inline_spans(readme: str, prose: str):
    # reST's inline literals are ``...``; only the READMEs give inline
    # commands.
    if readme.endswith('.rst'):
        return []
    return list(re.finditer(r'(?<!`)`([^`]+)`(?!`)', prose))


def _logical_lines(body: List[str], first: int):
    """Joins backslash continuations; yields (line number, text)."""
    buf, start = [], None
    for k, line in enumerate(body):
        if start is None:
            start = first + k
        if line.endswith('\\'):
            buf.append(line[:-1])
            continue
        buf.append(line)
        yield start, ' '.join(buf)
        buf, start = [], None
    if buf:
        yield start, ' '.join(buf)


def _substitute_placeholders(text: str) -> Tuple[str, Tuple[str, ...]]:
    used = tuple(p for p in PLACEHOLDERS if p in text)
    for p in used:
        text = text.replace(p, PLACEHOLDERS[p])
    return text, used


def _expand_vars(text: str, env: Dict[str, str]) -> str:
    # An unknown variable stays as written and fails the command's test.
    return re.sub(r'\$(?:\{(\w+)\}|(\w+))',
                  lambda m: env.get(m.group(1) or m.group(2), m.group(0)),
                  text)


def _split(text: str) -> List[List[str]]:
    """Shell words, cut into simple commands at && || ; |, comments
    dropped."""
    lex = shlex.shlex(text, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    commands, current = [], []
    for word in lex:
        if word in ('&&', '||', ';', '|', '&'):
            commands.append(current)
            current = []
        else:
            current.append(word)
    commands.append(current)
    return [c for c in commands if c]


def _brace_expand(word: str) -> List[str]:
    m = re.search(r'\{([^{}]*,[^{}]*)\}', word)
    if not m:
        return [word]
    out = []
    for alt in m.group(1).split(','):
        out += _brace_expand(word[:m.start()] + alt + word[m.end():])
    return out


def _glob(word: str) -> List[str]:
    if not any(c in word for c in '*?['):
        return [word]
    # Like bash: sorted matches, or the word itself when nothing matches.
    matches = glob.glob(os.path.join(glob.escape(str(ROOT)), word))
    return sorted(os.path.relpath(m, ROOT) for m in matches) or [word]


def _train_args(words: List[str]) -> Optional[List[str]]:
    """The arguments after 'train' if these words invoke pyg-hyper train
    (directly, after prefixes such as 'taskset -c 0,1', or as
    '[torchrun ...|python] -m pyg_hyper[.cli] train')."""
    for i, word in enumerate(words):
        if word == 'pyg-hyper' and words[i + 1:i + 2] == ['train']:
            rest = words[i + 2:]
        elif (word == '-m' and words[i + 1:i + 2] in (['pyg_hyper'],
                                                      ['pyg_hyper.cli'])
              and words[i + 2:i + 3] == ['train']):
            rest = words[i + 3:]
        else:
            continue
        args = []
        for w in rest:
            for b in _brace_expand(w):
                args += _glob(b)
        return args
    return None


def _parse_block(lines):
    """Nests 'for VAR in ...; do' ... 'done' loops: a list of
    ('line', lineno, text) and ('for', lineno, var, words text, body)."""
    root: list = []
    stack = [root]
    for lineno, text in lines:
        stripped = text.strip()
        m = re.match(r'^for\s+(\w+)\s+in\s+(.*?)\s*;\s*do$', stripped)
        if m:
            node = ('for', lineno, m.group(1), m.group(2), [])
            stack[-1].append(node)
            stack.append(node[4])
        elif stripped in ('done', 'done;'):
            assert len(stack) > 1, f'line {lineno}: done without for'
            stack.pop()
        else:
            stack[-1].append(('line', lineno, text))
    assert len(stack) == 1, 'a for loop is not closed by done'
    return root


def _run_block(nodes, env, bindings, readme, out: List[Command]) -> None:
    for node in nodes:
        if node[0] == 'for':
            _, lineno, var, words, body = node
            for value in shlex.split(_expand_vars(words, env), comments=True):
                _run_block(body, {**env, var: value},
                           bindings + ((var, value), ), readme, out)
            continue
        _, lineno, text = node
        text, used = _substitute_placeholders(text)
        for words in _split(_expand_vars(text, env)):
            if len(words) == 1 and re.match(r'^[A-Za-z_]\w*=', words[0]):
                var, value = words[0].split('=', 1)
                env[var] = value  # a plain assignment, seen by later lines
                continue
            args = _train_args(words)
            if args is not None:
                out.append(Command(readme, lineno, bindings, tuple(args),
                                   used))


def _blank(text: str, spans) -> str:
    """The text with the given line ranges blanked (line numbers kept)."""
    lines = text.split('\n')
    for a, b in spans:
        for k in range(a, min(b + 1, len(lines))):
            lines[k] = ''
    return '\n'.join(lines)


def extract(readme: str) -> List[Command]:
    """Every train command of one README, in order."""
    text = (ROOT / readme).read_text()
    commands: List[Command] = []
    spans = []
    for lang, first, body, span in _blocks(readme, text):
        spans.append(span)
        if lang in SHELL_FENCES:
            _run_block(_parse_block(_logical_lines(body, first)), {}, (),
                       readme, commands)
    # Inline code spans outside the fenced blocks, e.g.
    # `pyg-hyper train ... --out <dir>`.
    prose = _blank(text, spans)
    for m in _inline_spans(readme, prose):
        code = ' '.join(m.group(1).split())
        if INVOCATION.search(code):
            lineno = prose.count('\n', 0, m.start()) + 1
            _run_block([('line', lineno, code)], {}, (), readme, commands)
    return sorted(commands, key=lambda c: c.line)


def invocation_lines(readme: str) -> List[int]:
    """Lines of a README's shell blocks and inline code that invoke train,
    found by a plain search: each must yield an extracted command."""
    text = (ROOT / readme).read_text()
    found, spans = set(), []
    for lang, first, body, span in _blocks(readme, text):
        spans.append(span)
        if lang in SHELL_FENCES:
            for k, line in enumerate(body):
                code = re.split(r'(?:^|\s)#', line, maxsplit=1)[0]
                if INVOCATION.search(code):
                    found.add(first + k)
    # A plain search of the whole text as well: an invocation outside any
    # recognized block (a block the extraction misread) must not hide.
    if readme.endswith('.rst'):
        for k, line in enumerate(text.split('\n')):
            code = re.split(r'(?:^|\s)#', line, maxsplit=1)[0]
            if INVOCATION.search(code) and not code.lstrip().startswith(
                    ('``', '*', '-')) and '``' not in code:
                found.add(k + 1)
    prose = _blank(text, spans)
    for m in _inline_spans(readme, prose):
        if INVOCATION.search(' '.join(m.group(1).split())):
            found.add(prose.count('\n', 0, m.start()) + 1)
    return sorted(found)


COMMANDS = [c for readme in READMES for c in extract(readme)]


def _id(c: Command) -> str:
    loop = ''.join(f'[{k}={v}]' for k, v in c.bindings)
    return f'{c.readme}:{c.line}{loop}'


@pytest.mark.parametrize('command', COMMANDS, ids=[_id(c) for c in COMMANDS])
def test_readme_train_command_resolves(command, monkeypatch, capsys):
    shown = 'pyg-hyper train ' + ' '.join(command.args)
    leftover = [a for a in command.args if '$' in a or a in ('<', '>', '>>')]
    assert not leftover, (
        f'{_id(command)}: {leftover} left in `{shown}`: an undefined shell '
        f'variable, or a placeholder missing from PLACEHOLDERS')
    monkeypatch.chdir(ROOT)
    rc = main(['train', *command.args, '--dry-run'])
    err = capsys.readouterr().err
    assert rc == 0, f'{_id(command)}: `{shown}` does not resolve:\n{err}'


@pytest.mark.parametrize('readme', REQUIRED_READMES)
def test_readme_has_train_commands(readme):
    # An extraction that silently finds nothing would pass every test above.
    assert [c for c in COMMANDS if c.readme == readme], (
        f'no pyg-hyper train command extracted from {readme}')


@pytest.mark.parametrize('readme', READMES)
def test_every_invocation_is_extracted(readme):
    extracted = {c.line for c in COMMANDS if c.readme == readme}
    missed = [n for n in invocation_lines(readme) if n not in extracted]
    assert not missed, (f'{readme}: lines {missed} invoke pyg-hyper train '
                        f'but no command was extracted from them')


def test_placeholders_are_used():
    used = {p for c in COMMANDS for p in c.placeholders}
    assert set(PLACEHOLDERS) <= used, (
        f'PLACEHOLDERS entries no README uses: {set(PLACEHOLDERS) - used}')
