"""Dataset cards (YAML), their loaders and seeded synthetic generators.

Use :func:`data_catalog.registry.load` (re-exported as ``workbench.load_dataset``).
"""

from data_catalog.cards_schema import CardError, DatasetCard, read_card
from data_catalog.folder import FolderError, load_folder, register_folder
from data_catalog.registry import catalog_table, get_card, list_cards, load, register_loader

__all__ = [
    "CardError", "DatasetCard", "FolderError", "catalog_table", "get_card", "list_cards", "load",
    "load_folder", "read_card", "register_folder", "register_loader",
]
