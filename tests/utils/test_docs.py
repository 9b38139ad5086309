import pytest

from pyg_hyper.datasets import GINFormatDataset, QM9
from pyg_hyper.utils.docs import fill_docs


def test_fill_docs_fills_class_and_forward():
    @fill_docs({'{X_ARGS}': 'x (int): An x.'})
    class Layer:
        """Args:
            {X_ARGS}
        """

        def forward(self):
            r"""Uses :math:`\mathrm{ELU}` and {X_ARGS}."""

    assert 'x (int): An x.' in Layer.__doc__
    assert Layer.forward.__doc__ == (r"Uses :math:`\mathrm{ELU}` and "
                                     r"x (int): An x..")


def test_inherited_forward_is_left_alone():
    class Base:
        def forward(self):
            """{X_ARGS}"""

    @fill_docs({'{X_ARGS}': 'x'})
    class Child(Base):
        """{X_ARGS}"""

    assert Child.__doc__ == 'x' and Base.forward.__doc__ == '{X_ARGS}'


def test_unknown_marker_raises_at_definition():
    with pytest.raises(KeyError, match=r"\{Y_ARGS\}"):
        @fill_docs({'{X_ARGS}': 'x'})
        class Layer:
            """{X_ARGS} {Y_ARGS}"""


@pytest.mark.parametrize('cls', [QM9, GINFormatDataset])
def test_datasets_document_pyg_arguments(cls):
    for name in ('transform', 'pre_transform', 'pre_filter', 'force_reload'):
        assert f'\n        {name} (' in cls.__doc__
    assert '_ARGS}' not in cls.__doc__
