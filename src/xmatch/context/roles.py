"""What a catalog is for, and which of its columns carry it: the ``[context]`` table of a
catalog spec (docs/catalog-specs.md).

```toml
[context]
purposes = ["galaxies"]              # bright_stars, variable_stars, agn, galaxies, error_regions
object_type = "VarType"              # a column naming each row's kind of object
magnitudes = { G = "phot_g_mean_mag" }   # band -> column (mag), for bright-star halos

[context.shape]                      # galaxy shapes
semi_major = "a"                     # column
axis_ratio = "b2a"                   # b/a column ... or semi_minor = "b"
position_angle = "pa"                # deg east of north, of the major axis
unit = "arcmin"                      # of the axes: arcsec, arcmin or deg
axes = "semi"                        # the columns hold semi-axes ("semi") or diameters
isophote = "as CLU gives it"         # what the size measures (D25, Petrosian ...)

[context.distance]
luminosity_mpc = "distmpc"           # luminosity distance, Mpc
spec_z = "z"                         # spectroscopic redshift
photo_z = "zph"                      # photometric redshift (used only without the others)

[context.error_region]               # rows that are error regions
semi_major = "amaj"                  # ... or radius = "err" for circles
semi_minor = "amin"
position_angle = "phi"
unit = "deg"
confidence = 0.95                    # the probability the region holds the source
```

Every key is checked; unknown ones are errors, as everywhere in a spec.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from xmatch.errors import SpecError

PURPOSES = ("bright_stars", "variable_stars", "agn", "galaxies", "error_regions")
AXIS_UNITS = {"arcsec": 1.0, "arcmin": 60.0, "deg": 3600.0}
_TOP = {"purposes", "object_type", "magnitudes", "shape", "distance", "error_region"}
_SHAPE = {"semi_major", "semi_minor", "axis_ratio", "position_angle", "unit", "axes",
          "isophote"}
_DISTANCE = {"luminosity_mpc", "spec_z", "photo_z"}
_REGION = {"radius", "semi_major", "semi_minor", "position_angle", "unit", "axes",
           "confidence"}


@dataclass(frozen=True)
class Axes:
    """Columns of per-row ellipses (or circles: ``semi_major`` alone, the radius), with the
    factor that turns their values into semi-axes in arcsec."""

    semi_major: str
    semi_minor: str | None = None
    axis_ratio: str | None = None
    position_angle: str | None = None
    arcsec_per_unit: float = 1.0

    @property
    def columns(self) -> list[str]:
        return [c for c in (self.semi_major, self.semi_minor, self.axis_ratio,
                            self.position_angle) if c]


@dataclass(frozen=True)
class ContextRoles:
    """The parsed ``[context]`` table of a spec."""

    purposes: tuple[str, ...] = ()
    object_type: str | None = None
    magnitudes: dict = field(default_factory=dict)
    shape: Axes | None = None
    isophote: str = ""
    luminosity_mpc: str | None = None
    spec_z: str | None = None
    photo_z: str | None = None
    error_region: Axes | None = None
    confidence: float | None = None

    @classmethod
    def parse(cls, data: dict) -> ContextRoles:
        if not data:
            return cls()
        _keys(data, _TOP, "[context]")
        purposes = data.get("purposes", [])
        if not isinstance(purposes, list) or not all(p in PURPOSES for p in purposes):
            raise SpecError(f"context.purposes must be a list of {', '.join(PURPOSES)}; got "
                            f"{purposes!r}")
        magnitudes = data.get("magnitudes", {})
        if not isinstance(magnitudes, dict) or not all(
                isinstance(v, str) and v for v in magnitudes.values()):
            raise SpecError("context.magnitudes must map band names to column names, as "
                            "{ G = \"phot_g_mean_mag\" }")
        shape = _axes(data.get("shape"), _SHAPE, "context.shape")
        distance = data.get("distance", {})
        _keys(distance, _DISTANCE, "[context.distance]")
        region = _axes(data.get("error_region"), _REGION, "context.error_region")
        confidence = None
        if region is not None:
            confidence = data["error_region"].get("confidence")
            if not (isinstance(confidence, int | float) and 0 < confidence < 1):
                raise SpecError("context.error_region.confidence must be the probability the "
                                f"region holds the source, in (0, 1) (0.95 for a 95 % "
                                f"ellipse); got {confidence!r}")
        roles = cls(tuple(purposes), _column(data, "object_type", "context.object_type"),
                    dict(magnitudes), shape,
                    str((data.get("shape") or {}).get("isophote", "")),
                    *(_column(distance, k, f"context.distance.{k}") for k in
                      ("luminosity_mpc", "spec_z", "photo_z")),
                    region, None if confidence is None else float(confidence))
        needs = {"bright_stars": (roles.magnitudes, "context.magnitudes"),
                 "galaxies": (roles.shape or roles.luminosity_mpc or roles.spec_z
                              or roles.photo_z, "context.shape or context.distance"),
                 "error_regions": (roles.error_region, "[context.error_region]")}
        for purpose in roles.purposes:
            have, what = needs.get(purpose, (True, ""))
            if not have:
                raise SpecError(f"context.purposes names {purpose}, which needs {what}")
        return roles

    @property
    def columns(self) -> list[str]:
        """Every column the roles name."""
        names = [self.object_type, *self.magnitudes.values(), self.luminosity_mpc,
                 self.spec_z, self.photo_z]
        for axes in (self.shape, self.error_region):
            if axes is not None:
                names += axes.columns
        return [n for n in dict.fromkeys(names) if n]

    @property
    def sigma_per_unit(self) -> float | None:
        """The error region's radius in Gaussian sigmas (per axis): a region holding the
        source with probability P is the 2-D Gaussian's ellipse at sqrt(-2 ln(1 - P))
        sigma (2.448 for 95 %)."""
        if self.confidence is None:
            return None
        return math.sqrt(-2.0 * math.log(1.0 - self.confidence))


def _keys(table, allowed: set, where: str) -> None:
    if not isinstance(table, dict):
        raise SpecError(f"{where} must be a table")
    unknown = set(table) - allowed
    if unknown:
        raise SpecError(f"unknown key(s) in {where}: {sorted(unknown)}; allowed: "
                        f"{sorted(allowed)}")


def _column(table: dict, key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and not (isinstance(value, str) and value):
        raise SpecError(f"{where} must be a column name, got {value!r}")
    return value


def _axes(table, allowed: set, where: str) -> Axes | None:
    if table is None:
        return None
    _keys(table, allowed, f"[{where}]")
    major = _column(table, "semi_major", f"{where}.semi_major")
    radius = _column(table, "radius", f"{where}.radius") if "radius" in allowed else None
    if (major is None) == (radius is None) and "radius" in allowed:
        raise SpecError(f"[{where}] needs semi_major (an ellipse) or radius (a circle), "
                        "not both")
    if major is None and radius is None:
        raise SpecError(f"[{where}] needs semi_major")
    minor = _column(table, "semi_minor", f"{where}.semi_minor")
    ratio = _column(table, "axis_ratio", f"{where}.axis_ratio")
    angle = _column(table, "position_angle", f"{where}.position_angle")
    if radius is not None and (minor or ratio or angle):
        raise SpecError(f"[{where}]: a radius makes circles; semi_minor, axis_ratio and "
                        "position_angle belong to ellipses")
    if minor and ratio:
        raise SpecError(f"[{where}]: give semi_minor or axis_ratio, not both")
    if (minor or ratio) and not angle:
        raise SpecError(f"[{where}]: an ellipse needs position_angle (deg east of north)")
    unit = table.get("unit")
    if unit not in AXIS_UNITS:
        raise SpecError(f"{where}.unit must be one of {', '.join(AXIS_UNITS)} (the unit of the "
                        f"axis columns); got {unit!r}")
    axes = table.get("axes", "semi")
    if axes not in ("semi", "diameter"):
        raise SpecError(f"{where}.axes must be 'semi' (columns hold semi-axes) or 'diameter'; "
                        f"got {axes!r}")
    return Axes(major or radius, minor, ratio, angle,
                AXIS_UNITS[unit] / (2.0 if axes == "diameter" else 1.0))
