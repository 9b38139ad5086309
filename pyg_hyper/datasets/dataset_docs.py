"""The argument docs of PyG's ``InMemoryDataset`` that this package's
datasets share (:func:`~pyg_hyper.utils.docs.fill_docs`)."""
from pyg_hyper.utils.docs import fill_docs

__all__ = ['with_dataset_docs']

DATASET_DOCS = {
    '{IN_MEMORY_DATASET_ARGS}': """
        transform (callable, optional): A function/transform that takes in a
            :class:`~torch_geometric.data.Data` object and returns a
            transformed version, applied on every access.
            (default: :obj:`None`)
        pre_transform (callable, optional): The same, applied once before
            the processed dataset is saved to disk. (default: :obj:`None`)
        pre_filter (callable, optional): A function that takes in a
            :class:`~torch_geometric.data.Data` object and returns whether
            to keep it in the processed dataset. (default: :obj:`None`)
        force_reload (bool, optional): Whether to re-process the dataset.
            (default: :obj:`False`)""".strip(),
}

with_dataset_docs = fill_docs(DATASET_DOCS)
