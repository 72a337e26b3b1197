"""The on-disk catalog store: HATS v1.0 layout, atomic publishing, manifests."""

from xmatch.store.catalog import Catalog, HealpixPixel, open_catalog
from xmatch.store.data_dir import DataDirectory, default_data_dir

__all__ = ["Catalog", "HealpixPixel", "open_catalog", "DataDirectory", "default_data_dir"]
