"""Loading catalogs by name or spec: picks the loader, resolves sources, runs the writer."""

from __future__ import annotations

from pathlib import Path

from xmatch.errors import LoadError, SpecError
from xmatch.loaders import get_loader
from xmatch.specs import (
    CatalogSpec,
    bundled_resource,
    bundled_spec,
    bundled_spec_names,
    read_spec,
)
from xmatch.store import paths
from xmatch.store.catalog import Catalog, open_catalog, read_properties
from xmatch.store.data_dir import DataDirectory
from xmatch.store.writer import LoadOptions, build_catalog

DEFAULT_CATALOGS = ("gaia_dr3", "hipparcos2", "gcvs", "glade_gw170817")


def resolve_spec(name: str | None = None, spec: CatalogSpec | str | Path | None = None,
                 sources: list[str] | None = None) -> CatalogSpec:
    """The spec to load with: a spec object or file, a bundled name, or for a HATS
    directory given as the only source, one derived from the catalog's properties."""
    if isinstance(spec, CatalogSpec):
        return spec.with_overrides(name=name) if name else spec
    if spec is not None:
        found = read_spec(spec)
        return found.with_overrides(name=name) if name else found
    if name is None:
        raise SpecError("give a catalog name or a spec")
    if name in bundled_spec_names():
        return bundled_spec(name)
    if sources and all(paths.is_hats_catalog(Path(s)) for s in sources):
        props = read_properties(Path(sources[0]))
        return CatalogSpec(name=name, ra=props.get("hats_col_ra", "ra"),
                           dec=props.get("hats_col_dec", "dec"), loader="hats")
    raise SpecError(f"'{name}' is not a bundled catalog ({', '.join(bundled_spec_names())}); "
                    "give a spec with --spec FILE.toml")


def load_catalog(name: str | None = None, sources: list[str] | None = None, *,
                 spec: CatalogSpec | str | Path | None = None,
                 data: DataDirectory | str | Path | None = None,
                 loader: str | None = None, options: LoadOptions | None = None) -> Catalog:
    """Load (or re-load) a catalog into the data directory and return it, opened.

    Parameters
    ----------
    name : str, optional
        Bundled spec name (``gaia_dr3``, ``hipparcos2``, ``ps1_dr2``, ``gcvs``), or the
        name to publish under.
    sources : list of str, optional
        Input files or a HATS directory; default: the spec's ``default_source``.
    spec : CatalogSpec or path, optional
        A spec of your own instead of a bundled one.
    loader : str, optional
        Loader name; default: chosen from the spec and the sources.
    """
    data = data if isinstance(data, DataDirectory) else DataDirectory(data)
    spec = resolve_spec(name, spec, sources)
    if sources:
        hats_dirs = [paths.is_hats_catalog(Path(s)) for s in sources]
        if any(hats_dirs) and not all(hats_dirs):
            raise LoadError("HATS directories and files cannot be mixed in one load")
        loader_name = loader or ("hats" if all(hats_dirs) else spec.file_loader or "table")
    else:
        if not spec.default_source:
            raise SpecError(f"spec '{spec.name}' has no default_source: give input files")
        sources = [spec.default_source]
        loader_name = loader or spec.loader or "table"
    sources = [_resolve_source(s) for s in sources]
    try:
        chosen = get_loader(loader_name)
    except KeyError as exc:
        raise SpecError(str(exc.args[0])) from None
    if getattr(chosen, "registers", False):
        if len(sources) != 1:
            raise LoadError("register one HATS catalog directory at a time")
        chosen.register(sources[0], spec, data)
    else:
        build_catalog(spec, sources, chosen, data, options)
    return open_catalog(spec.name, data)


def _resolve_source(source: str) -> str:
    if source.startswith("bundled:"):
        return str(bundled_resource(source.removeprefix("bundled:")))
    return source


def ensure_default_catalogs(data: DataDirectory, options: LoadOptions | None = None) -> list[str]:
    """Load the bundled default catalogs that the data directory does not have yet."""
    loaded = []
    for name in DEFAULT_CATALOGS:
        if name not in data.names():
            load_catalog(name, data=data, options=options)
            loaded.append(name)
    return loaded
