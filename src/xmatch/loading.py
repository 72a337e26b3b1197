"""Loading catalogs by name or spec: picks the loader, resolves sources, runs the writer."""

from __future__ import annotations

from pathlib import Path

from xmatch.errors import InputError, LoadError, SpecError
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

DEFAULT_CATALOGS = ("gaia_dr3", "hipparcos2", "gcvs", "glade_gw170817", "fermi_4fgl",
                    "fermi_4lac")
ID_UCD = "meta.id;meta.main"
#: The note of a spec derived from a table's columns.
DERIVED_NOTE = "spec derived from the table's columns (no spec given)"


def resolve_spec(name: str | None = None, spec: CatalogSpec | str | Path | None = None,
                 sources: list[str] | None = None, *, ra_column: str | None = None,
                 dec_column: str | None = None, id_column: str | None = None) -> CatalogSpec:
    """The spec to load with: a spec object or file, a bundled name, one derived from a HATS
    directory's properties, or one derived from the columns of the first table given
    (positions found by UCD or name, or as named)."""
    derived_only = {"ra_column": ra_column, "dec_column": dec_column, "id_column": id_column}
    given = [f"--{k.replace('_', '-')}" for k, v in derived_only.items() if v is not None]
    if isinstance(spec, CatalogSpec) or spec is not None or (
            name is not None and name in bundled_spec_names()):
        if given:
            raise InputError(f"{', '.join(given)} name the columns of a table loaded without "
                             "a spec; this load has a spec, whose [columns] say them")
        if isinstance(spec, CatalogSpec):
            return spec.with_overrides(name=name) if name else spec
        if spec is not None:
            found = read_spec(spec)
            return found.with_overrides(name=name) if name else found
        return bundled_spec(name)
    if name is None:
        raise SpecError("give a catalog name or a spec")
    if sources and all(paths.is_hats_catalog(Path(s)) for s in sources):
        if given:
            raise InputError(f"{', '.join(given)} do not apply to a HATS catalog, whose "
                             "properties name its columns")
        written = Path(sources[0]) / paths.SIDECAR_FILE
        if written.is_file():  # written by xmatch: its own spec, under the new name
            import json

            spec = CatalogSpec.from_dict(json.loads(written.read_text())["spec"])
            return spec.with_overrides(name=name, loader="hats", default_source=None)
        props = read_properties(Path(sources[0]))
        return CatalogSpec(name=name, ra=props.get("hats_col_ra", "ra"),
                           dec=props.get("hats_col_dec", "dec"), loader="hats")
    if not sources:
        raise SpecError(f"'{name}' is not a bundled catalog ({', '.join(bundled_spec_names())}); "
                        "give the table to load with --from FILE (its columns are found), or "
                        "a spec with --spec FILE.toml")
    return derived_spec(name, sources[0], ra_column, dec_column, id_column)


def derived_spec(name: str, source: str, ra_column: str | None, dec_column: str | None,
                 id_column: str | None) -> CatalogSpec:
    """The spec of a plain table: its position columns (:func:`xmatch.io.tables
    .position_columns`), its identifier (given, else the column whose UCD is
    ``meta.id;meta.main``, else none: rows are numbered), every column kept."""
    from xmatch.io.tables import position_columns, read_schema

    schema = read_schema(source)
    ra, dec = position_columns(schema.empty_table(), ra_column, dec_column, source)
    if id_column is not None:
        if id_column not in schema.names:
            raise LoadError(f"no column '{id_column}' (given with --id-column); columns "
                            f"present: {', '.join(schema.names)}", source=source)
    else:
        by_ucd = [f.name for f in schema
                  if (f.metadata or {}).get(b"ucd", b"").decode().lower() == ID_UCD]
        id_column = by_ucd[0] if len(by_ucd) == 1 else None
    return CatalogSpec(name=name, ra=ra, dec=dec, id=id_column,
                       title=f"{name} (loaded from {Path(source).name})",
                       note=DERIVED_NOTE)


def load_catalog(name: str | None = None, sources: list[str] | None = None, *,
                 spec: CatalogSpec | str | Path | None = None,
                 data: DataDirectory | str | Path | None = None,
                 loader: str | None = None, options: LoadOptions | None = None,
                 ra_column: str | None = None, dec_column: str | None = None,
                 id_column: str | None = None) -> Catalog:
    """Load (or re-load) a catalog into the data directory and return it, opened.

    Parameters
    ----------
    name : str, optional
        Bundled spec name (``gaia_dr3``, ``hipparcos2``, ``ps1_dr2``, ``gcvs``), or the
        name to publish under.
    sources : list of str, optional
        Input files or a HATS directory; default: the spec's ``default_source``.
    spec : CatalogSpec or path, optional
        A spec of your own instead of a bundled one. Without a spec or a bundled name, the
        spec is derived from the first source's columns (see :func:`derived_spec`).
    loader : str, optional
        Loader name; default: chosen from the spec and the sources.
    ra_column, dec_column, id_column : str, optional
        For a table loaded without a spec: its position and identifier columns.
    """
    data = data if isinstance(data, DataDirectory) else DataDirectory(data)
    spec = resolve_spec(name, spec, sources, ra_column=ra_column, dec_column=dec_column,
                        id_column=id_column)
    if sources:
        hats_dirs = [paths.is_hats_catalog(Path(s)) for s in sources]
        if any(hats_dirs) and not all(hats_dirs):
            raise LoadError("HATS directories and files cannot be mixed in one load")
        loader_name = loader or ("hats" if all(hats_dirs) else spec.file_loader or "table")
    else:
        if not spec.default_source:
            raise SpecError(f"spec '{spec.name}' has no default_source: give input files")
        sources = (list(spec.default_source) if isinstance(spec.default_source, list | tuple)
                   else [spec.default_source])
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
