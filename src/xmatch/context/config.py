"""A deployment's context configuration: the layers (which catalog answers which question)
and the ordered rules that turn them into one class per position. A TOML file; the bundled
default (``default.toml`` beside this module) works on the bundled catalogs. Every key,
default and the source of each number is documented in docs/context.md.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from xmatch.errors import InputError

#: What a layer answers, and the catalog purpose (spec ``[context] purposes``) it needs.
KINDS = {"bright_star": "bright_stars", "variable_star": "variable_stars", "agn": "agn",
         "host_galaxy": "galaxies", "error_region": "error_regions"}
#: The classes no rule gives: nothing around the position (every layer answered no match),
#: and the rest (a layer failed or had no coverage there, or matched without a rule).
ORPHAN, UNCLEAR = "orphan", "unclear"
#: Sherlock's bright-star halo: r = 10^(-0.2 m + 3.7) arcsec (Lasair/Sherlock, Young et al.).
SHERLOCK_HALO = {"slope": -0.2, "intercept": 3.7, "cap_arcsec": 1800.0}

_LAYER_KEYS = {
    "bright_star": {"band", "max_mag", "halo"},
    "variable_star": {"radius_arcsec"},
    "agn": {"radius_arcsec"},
    "host_galaxy": {"max_dlr", "fixed_radius_kpc"},
    "error_region": {"reach"},
}
_COMMON_KEYS = {"name", "kind", "catalog"}
_RULE_KEYS = {"class", "layer", "max_distance", "max_separation_arcsec", "types"}
_HALO_KEYS = {"slope", "intercept", "cap_arcsec"}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Layer:
    """One question asked of one catalog (see docs/context.md for each kind)."""

    name: str
    kind: str
    catalog: str
    band: str | None = None              # bright_star
    max_mag: float = math.inf            # bright_star: only stars at least this bright
    halo: dict = field(default_factory=lambda: dict(SHERLOCK_HALO))
    radius_arcsec: float | None = None   # variable_star, agn
    max_dlr: float = 5.0                 # host_galaxy
    fixed_radius_kpc: float | None = None  # host_galaxy rows without a shape
    reach: float = 1.0                   # error_region

    def halo_radius_arcsec(self, mag):
        """The halo radius of stars of magnitude ``mag`` (array): 10^(slope m + intercept)
        arcsec, at most ``cap_arcsec``."""
        import numpy as np

        h = self.halo
        return np.minimum(10.0 ** (h["slope"] * np.asarray(mag) + h["intercept"]),
                          h["cap_arcsec"])


@dataclass(frozen=True)
class Rule:
    """``klass`` is given when ``layer`` has a candidate within the limits (the closest
    one that is: the evidence)."""

    klass: str
    layer: str
    max_distance: float = math.inf
    max_separation_arcsec: float = math.inf
    types: tuple[str, ...] = ()   # object types (the catalog's object_type role) it takes

    def describe(self) -> str:
        limits = [f"{what} <= {value:g}" for what, value in
                  (("distance", self.max_distance),
                   ("separation", self.max_separation_arcsec)) if math.isfinite(value)]
        if self.types:
            limits.append(f"type in {', '.join(self.types)}")
        return f"{self.klass}: {self.layer}" + (f" ({', '.join(limits)})" if limits else "")


@dataclass(frozen=True)
class ContextConfig:
    layers: tuple[Layer, ...]
    rules: tuple[Rule, ...]
    source: str = "<config>"

    def layer(self, name: str) -> Layer:
        return next(layer for layer in self.layers if layer.name == name)

    @property
    def catalogs(self) -> list[str]:
        return list(dict.fromkeys(layer.catalog for layer in self.layers))


def _number(value, where: str, low: float = 0.0, strict: bool = True) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= low if strict else value < low):
        raise InputError(f"{where} must be a number {'>' if strict else '>='} {low:g}; got "
                         f"{value!r}")
    return float(value)


def _unknown(table: dict, allowed: set, where: str) -> None:
    unknown = set(table) - allowed
    if unknown:
        raise InputError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: "
                         f"{sorted(allowed)}")


def parse_config(text: str, source: str = "<config>") -> ContextConfig:
    """Parse and check a context configuration (``InputError`` naming the key)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"{source}: not valid TOML: {error}") from None
    _unknown(data, {"layer", "rule"}, source)
    layers = []
    for i, table in enumerate(data.get("layer", [])):
        where = f"{source}: layer {i + 1}"
        if not isinstance(table, dict):
            raise InputError(f"{where} must be a table ([[layer]])")
        kind = table.get("kind")
        if kind not in KINDS:
            raise InputError(f"{where}: kind must be one of {', '.join(KINDS)}; got {kind!r}")
        _unknown(table, _COMMON_KEYS | _LAYER_KEYS[kind], f"{where} ({kind})")
        name = table.get("name", kind)
        if not isinstance(name, str) or not _NAME.match(name):
            raise InputError(f"{where}: name {name!r} must be lower-case letters, digits and "
                             "'_', starting with a letter")
        where = f"{source}: layer {name!r}"
        catalog = table.get("catalog")
        if not isinstance(catalog, str) or not catalog:
            raise InputError(f"{where}: catalog must name a catalog")
        options = {}
        if kind == "bright_star":
            if not isinstance(table.get("band"), str):
                raise InputError(f"{where}: band must name one of the catalog's magnitude "
                                 "bands (its spec's context.magnitudes)")
            options["band"] = table["band"]
            if "max_mag" in table:
                options["max_mag"] = _number(table["max_mag"], f"{where}: max_mag", -math.inf)
            halo = dict(SHERLOCK_HALO)
            given = table.get("halo", {})
            if not isinstance(given, dict):
                raise InputError(f"{where}: halo must be a table {{ slope, intercept, "
                                 "cap_arcsec }")
            _unknown(given, _HALO_KEYS, f"{where}: halo")
            for key, value in given.items():
                halo[key] = (_number(value, f"{where}: halo.{key}") if key == "cap_arcsec"
                             else _number(value, f"{where}: halo.{key}", -math.inf))
            options["halo"] = halo
        elif kind in ("variable_star", "agn"):
            if "radius_arcsec" not in table:
                raise InputError(f"{where}: radius_arcsec (the match radius) is required")
            options["radius_arcsec"] = _number(table["radius_arcsec"],
                                               f"{where}: radius_arcsec")
        elif kind == "host_galaxy":
            if "max_dlr" in table:
                options["max_dlr"] = _number(table["max_dlr"], f"{where}: max_dlr")
            if "fixed_radius_kpc" in table:
                options["fixed_radius_kpc"] = _number(table["fixed_radius_kpc"],
                                                      f"{where}: fixed_radius_kpc")
        elif "reach" in table:
            options["reach"] = _number(table["reach"], f"{where}: reach")
        layers.append(Layer(name, kind, catalog, **options))
    names = [layer.name for layer in layers]
    if not layers:
        raise InputError(f"{source}: no [[layer]]: context needs at least one")
    if len(set(names)) != len(names):
        raise InputError(f"{source}: layer names must differ; got {names} (give name = ...)")
    rules = []
    for i, table in enumerate(data.get("rule", [])):
        where = f"{source}: rule {i + 1}"
        if not isinstance(table, dict):
            raise InputError(f"{where} must be a table ([[rule]])")
        _unknown(table, _RULE_KEYS, where)
        klass, layer = table.get("class"), table.get("layer")
        if not isinstance(klass, str) or not _NAME.match(klass) or klass in (ORPHAN, UNCLEAR):
            raise InputError(f"{where}: class {klass!r} must be lower-case letters, digits and "
                             f"'_' ({ORPHAN} and {UNCLEAR} are given by xmatch itself)")
        if layer not in names:
            raise InputError(f"{where}: layer {layer!r} is not one of the layers "
                             f"({', '.join(names)})")
        types = table.get("types", [])
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise InputError(f"{where}: types must be a list of object types")
        kind = next(layer.kind for layer in layers if layer.name == table["layer"])
        if types and kind not in ("variable_star", "agn"):
            raise InputError(f"{where}: types select object types of variable_star and agn "
                             f"layers; {table['layer']} is a {kind} layer")
        rules.append(Rule(
            klass, layer,
            _number(table["max_distance"], f"{where}: max_distance")
            if "max_distance" in table else math.inf,
            _number(table["max_separation_arcsec"], f"{where}: max_separation_arcsec")
            if "max_separation_arcsec" in table else math.inf,
            tuple(types)))
    if not rules:
        raise InputError(f"{source}: no [[rule]]: the class of a position comes from the "
                         "rules; give at least one (docs/context.md)")
    return ContextConfig(tuple(layers), tuple(rules), source)


def read_context_config(path: str | Path | None = None) -> ContextConfig:
    """A context configuration file, or the bundled default (``None``)."""
    if path is None:
        resource = resources.files("xmatch.context") / "default.toml"
        return parse_config(resource.read_text(), "xmatch/context/default.toml")
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise InputError(f"cannot read context configuration {path}: "
                         f"{error.strerror}") from None
    return parse_config(text, str(path))
