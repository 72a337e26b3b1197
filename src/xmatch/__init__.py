"""xmatch: spatial cross-match and catalog federation for time-domain astronomy.

The public API is flat here and loaded lazily (PEP 562): ``import xmatch`` costs nothing
until a name is used, so ``xmatch --help`` and scripts that use one part stay quick.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("xmatch")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

#: Public name -> the module that defines it.
_PUBLIC = {
    "AsyncClient": "xmatch.service.aio_client",
    "Catalog": "xmatch.store.catalog",
    "CatalogNotFoundError": "xmatch.errors",
    "CatalogSpec": "xmatch.specs",
    "Client": "xmatch.service.client",
    "Cone": "xmatch.sky.regions",
    "ContextConfig": "xmatch.context.config",
    "DamagedCatalogError": "xmatch.errors",
    "DataDirectory": "xmatch.store.data_dir",
    "Ellipse": "xmatch.sky.regions",
    "HealpixPixel": "xmatch.store.catalog",
    "InputError": "xmatch.errors",
    "LoadError": "xmatch.errors",
    "LoadOptions": "xmatch.store.writer",
    "Moc": "xmatch.sky.regions",
    "Polygon": "xmatch.sky.regions",
    "RegionIndex": "xmatch.index.region_index",
    "ServiceError": "xmatch.errors",
    "SkyIndex": "xmatch.index.sky_index",
    "SkyMap": "xmatch.sky.skymap",
    "SkyMapRegion": "xmatch.sky.regions",
    "SpecError": "xmatch.errors",
    "UnavailableError": "xmatch.errors",
    "XmatchError": "xmatch.errors",
    "bundled_spec": "xmatch.specs",
    "bundled_spec_names": "xmatch.specs",
    "crossmatch": "xmatch.index.sky_index",
    "crossmatch_catalogs": "xmatch.join",
    "default_data_dir": "xmatch.store.data_dir",
    "ensure_default_catalogs": "xmatch.loading",
    "load_catalog": "xmatch.loading",
    "moc_contains": "xmatch.index.sky_index",
    "open_catalog": "xmatch.store.catalog",
    "propagate": "xmatch.index.motion",
    "read_context_config": "xmatch.context.config",
    "read_spec": "xmatch.specs",
    "read_table": "xmatch.io.tables",
}

__all__ = ["__version__", *sorted(_PUBLIC)]


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'xmatch' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__():
    return __all__
