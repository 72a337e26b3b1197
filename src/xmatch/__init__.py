"""xmatch: spatial cross-match and catalog federation for time-domain astronomy."""

__version__ = "0.1.0"

from xmatch.errors import (  # noqa: E402  (the version must exist before submodules import it)
    CatalogNotFoundError,
    DamagedCatalogError,
    LoadError,
    SpecError,
    XmatchError,
)
from xmatch.index import SkyIndex, crossmatch, moc_contains, propagate  # noqa: E402
from xmatch.loading import ensure_default_catalogs, load_catalog  # noqa: E402
from xmatch.service.client import AsyncClient, Client  # noqa: E402
from xmatch.specs import CatalogSpec, bundled_spec, bundled_spec_names, read_spec  # noqa: E402
from xmatch.store import (  # noqa: E402
    Catalog,
    DataDirectory,
    HealpixPixel,
    default_data_dir,
    open_catalog,
)
from xmatch.store.writer import LoadOptions  # noqa: E402

__all__ = [
    "__version__", "AsyncClient", "Catalog", "CatalogNotFoundError", "CatalogSpec", "Client",
    "DamagedCatalogError",
    "DataDirectory", "HealpixPixel", "LoadError", "LoadOptions", "SkyIndex", "SpecError",
    "XmatchError", "bundled_spec", "bundled_spec_names", "crossmatch", "default_data_dir",
    "ensure_default_catalogs", "load_catalog", "moc_contains", "open_catalog", "propagate",
    "read_spec",
]
