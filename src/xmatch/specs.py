"""Catalog specs: the declarative TOML description of a catalog.

A spec names the catalog, where its rows come from by default, which columns carry the
identifier, position, epoch and proper motion, which columns to keep, and how to match
against it. Bundled specs ship in the wheel as ``xmatch.catalogs``; ``docs/catalog-specs.md``
documents every key.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from xmatch.errors import SpecError

BUNDLED_PACKAGE = "xmatch.catalogs"

_TOP_KEYS = {"name", "title", "description", "loader", "default_source", "file_loader",
             "columns", "match", "partitioning", "provenance", "loader_options", "context"}
_COLUMN_KEYS = {"id", "ra", "dec", "epoch_jyear", "epoch_column", "pmra", "pmdec", "parallax",
                "radial_velocity", "keep", "key", "optional", "positional_error",
                "strip_whitespace", "distance"}
_MATCH_KEYS = {"default_radius_arcsec", "positional_error_arcsec", "coverage_dec_min_deg",
               "coverage_dec_max_deg"}
_PARTITION_KEYS = {"threshold_rows", "highest_order", "lowest_order"}
_PROVENANCE_KEYS = {"synthetic", "reference", "license", "note"}


@dataclass(frozen=True)
class CatalogSpec:
    """Everything xmatch needs to know about one catalog.

    Column attributes hold source column names; ``None`` means the catalog has no such
    column. ``pmra`` follows the Gaia convention (mu_alpha* = mu_alpha cos dec, mas/yr).
    ``keep`` lists payload columns to keep (``None`` keeps every column); names in
    ``optional`` may be absent from a source without error.
    """

    name: str
    ra: str
    dec: str
    title: str = ""
    description: str = ""
    id: str | None = None
    epoch_jyear: float | None = None
    epoch_column: str | None = None
    pmra: str | None = None
    pmdec: str | None = None
    parallax: str | None = None
    radial_velocity: str | None = None
    positional_error: str | None = None
    distance: str | None = None  # Mpc (luminosity distance), for sky-map 3-D densities
    keep: tuple[str, ...] | None = None
    key: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    strip_whitespace: bool = False
    default_radius_arcsec: float = 1.0
    positional_error_arcsec: float | None = None
    # The survey's declination limits: with the partitions, the catalog's coverage MOC,
    # outside which an alert without a counterpart is "outside coverage", not "no match".
    coverage_dec_min_deg: float = -90.0
    coverage_dec_max_deg: float = 90.0
    loader: str | None = None
    file_loader: str | None = None
    default_source: str | list | None = None  # one source, or a list of them
    loader_options: dict = field(default_factory=dict)
    # The [context] table as written (what the catalog is for; see xmatch.context.roles).
    context: dict = field(default_factory=dict)
    threshold_rows: int = 1_000_000
    highest_order: int = 10
    lowest_order: int = 0
    synthetic: bool = False
    reference: str = ""
    license: str = ""
    note: str = ""

    def __post_init__(self):
        _check(self.name.replace("_", "").replace("-", "").isalnum() and self.name[0].isalpha(),
               f"name '{self.name}' must start with a letter and use only letters, digits, "
               "'_' and '-'")
        _check(self.default_radius_arcsec > 0, "match.default_radius_arcsec must be > 0")
        _check(-90.0 <= self.coverage_dec_min_deg < self.coverage_dec_max_deg <= 90.0,
               "match needs -90 <= coverage_dec_min_deg < coverage_dec_max_deg <= 90")
        _check(1 <= self.threshold_rows, "partitioning.threshold_rows must be >= 1")
        _check(0 <= self.lowest_order <= self.highest_order <= 20,
               "partitioning needs 0 <= lowest_order <= highest_order <= 20")
        _check(not (self.epoch_jyear is not None and self.epoch_column is not None),
               "give columns.epoch_jyear or columns.epoch_column, not both")
        _check((self.pmra is None) == (self.pmdec is None),
               "columns.pmra and columns.pmdec go together")
        self.context_roles  # noqa: B018 (parsing it checks it)
        unknown_key = set(self.key) - set(self.source_columns(include_keep=True))
        _check(self.keep is None or not unknown_key,
               f"columns.key names columns that are not kept: {sorted(unknown_key)}")

    @property
    def role_columns(self) -> dict[str, str]:
        """Role name -> source column, for the roles this catalog has."""
        roles = {"id": self.id, "ra": self.ra, "dec": self.dec, "epoch": self.epoch_column,
                 "pmra": self.pmra, "pmdec": self.pmdec, "parallax": self.parallax,
                 "radial_velocity": self.radial_velocity,
                 "positional_error": self.positional_error, "distance": self.distance}
        return {role: col for role, col in roles.items() if col is not None}

    @property
    def context_roles(self):
        """The parsed ``[context]`` table (:class:`xmatch.context.roles.ContextRoles`)."""
        from xmatch.context.roles import ContextRoles

        return ContextRoles.parse(self.context)

    def source_columns(self, include_keep: bool = True) -> list[str]:
        """Columns read from a source, roles first, without repeats."""
        names = list(self.role_columns.values()) + self.context_roles.columns
        if include_keep and self.keep:
            names += list(self.keep)
        return list(dict.fromkeys(names))

    def first_missing_column(self, available) -> str | None:
        """The first column a source must have (roles, and ``keep`` when given) that
        ``available`` lacks, ``optional`` ones excepted; ``None`` if nothing is missing."""
        for name in self.source_columns(include_keep=self.keep is not None):
            if name not in available and name not in self.optional:
                return name
        return None

    def present_in(self, names) -> CatalogSpec:
        """The spec of a load whose rows have the columns ``names``: roles, kept and key
        columns the sources did not have are dropped, so the catalog's metadata names only
        columns it holds (the proper motions of a subset without them, say)."""
        names = set(names)
        roles = {role: None for role in ("id", "epoch_column", "pmra", "pmdec", "parallax",
                                         "radial_velocity", "positional_error", "distance")
                 if getattr(self, role) is not None and getattr(self, role) not in names}
        if "pmra" in roles or "pmdec" in roles:
            roles.update(pmra=None, pmdec=None, parallax=None, radial_velocity=None)
        if "id" in roles:
            del roles["id"]  # a missing identifier is an error of the load, never dropped
        keep = None if self.keep is None else tuple(c for c in self.keep if c in names)
        return dataclasses.replace(
            self, **roles, keep=keep, key=tuple(c for c in self.key if c in names),
            optional=tuple(c for c in self.optional if c in names))

    def with_overrides(self, **changes) -> CatalogSpec:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        for name in ("keep", "key", "optional"):
            if out[name] is not None:
                out[name] = list(out[name])
        return out

    @classmethod
    def from_dict(cls, data: dict) -> CatalogSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        for name in ("keep", "key", "optional"):
            if data.get(name) is not None:
                data[name] = tuple(data[name])
        return cls(**data)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise SpecError(message)


def _section(data: dict, name: str, allowed: set, where: str) -> dict:
    section = data.get(name, {})
    if not isinstance(section, dict):
        raise SpecError(f"{where}: [{name}] must be a table")
    unknown = set(section) - allowed
    if unknown:
        raise SpecError(f"{where}: unknown key(s) in [{name}]: {sorted(unknown)}; "
                        f"allowed: {sorted(allowed)}")
    return section


def parse_spec(text: str, where: str = "<spec>") -> CatalogSpec:
    """Parse and validate the TOML text of a spec; ``where`` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{where}: not valid TOML: {exc}") from None
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise SpecError(f"{where}: unknown top-level key(s) {sorted(unknown)}; "
                        f"allowed: {sorted(_TOP_KEYS)}")
    columns = _section(data, "columns", _COLUMN_KEYS, where)
    match = _section(data, "match", _MATCH_KEYS, where)
    partitioning = _section(data, "partitioning", _PARTITION_KEYS, where)
    provenance = _section(data, "provenance", _PROVENANCE_KEYS, where)
    for required, table in (("name", data), ("ra", columns), ("dec", columns)):
        if required not in table:
            raise SpecError(f"{where}: missing required key '{required}'"
                            + ("" if table is data else " in [columns]"))
    fields = {k: data[k] for k in ("name", "title", "description", "loader", "default_source",
                                   "file_loader") if k in data}
    fields["loader_options"] = data.get("loader_options", {})
    fields["context"] = data.get("context", {})
    fields.update(columns)
    fields.update(match)
    fields.update(partitioning)
    fields.update(provenance)
    try:
        return CatalogSpec.from_dict(fields)
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}") from None
    except TypeError as exc:
        raise SpecError(f"{where}: {exc}") from None


def read_spec(path: str | Path) -> CatalogSpec:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"cannot read spec {path}: {exc.strerror}") from None
    return parse_spec(text, str(path))


def bundled_spec_names() -> list[str]:
    files = resources.files(BUNDLED_PACKAGE)
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".toml"))


def bundled_spec(name: str) -> CatalogSpec:
    """The spec shipped with xmatch under ``name`` (``SpecError`` if there is none)."""
    resource = resources.files(BUNDLED_PACKAGE) / f"{name}.toml"
    if not resource.is_file():
        raise SpecError(f"no bundled catalog spec named '{name}'; bundled: "
                        f"{', '.join(bundled_spec_names())}")
    return parse_spec(resource.read_text(), f"{BUNDLED_PACKAGE}/{name}.toml")


def bundled_resource(relative: str) -> Path:
    """Path of a data file shipped beside the bundled specs."""
    path = Path(str(resources.files(BUNDLED_PACKAGE) / relative))
    if not path.exists():
        raise SpecError(f"bundled resource '{relative}' is missing from the installation")
    return path
