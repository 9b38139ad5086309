"""Sphinx directive that renders an argparse parser's help, so the CLI
reference is generated from the code and cannot drift from it.

Usage::

    .. cli-reference:: pyg_hyper.cli:build_parser
"""
import argparse
import importlib

from docutils import nodes
from docutils.parsers.rst import Directive


def _parser(spec: str) -> argparse.ArgumentParser:
    module, func = spec.split(':')
    return getattr(importlib.import_module(module), func)()


def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:  # argparse has no public accessor
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices.items())
    return []


class CliReference(Directive):
    required_arguments = 1

    def _section(self, title: str, text: str) -> nodes.section:
        section = nodes.section(ids=[nodes.make_id(f'cli-{title}')])
        section += nodes.title(text=title)
        block = nodes.literal_block(text, text)
        block['language'] = 'text'
        section += block
        return section

    def run(self):
        parser = _parser(self.arguments[0])
        # A fixed width keeps the rendered help independent of the terminal.
        parser.formatter_class = _fixed_width
        out = [self._section(parser.prog, parser.format_help())]
        for name, sub in _subparsers(parser):
            sub.formatter_class = _fixed_width
            out.append(self._section(f'{parser.prog} {name}',
                                     sub.format_help()))
        return out


def _fixed_width(prog):
    return argparse.HelpFormatter(prog, width=79)


def setup(app):
    app.add_directive('cli-reference', CliReference)
    return {'parallel_read_safe': True, 'version': '1'}
