"""Distances for projected offsets: astropy's Planck 2018 flat Lambda-CDM cosmology
(``astropy.cosmology.Planck18``; H0 = 67.66 km/s/Mpc, Omega_m = 0.30966), the one choice
documented in docs/context.md."""

from __future__ import annotations

import functools

import numpy as np

#: Redshifts of the table that turns luminosity distances into redshifts.
_Z_GRID = np.concatenate([np.linspace(0.0, 0.1, 2001)[1:], np.linspace(0.1, 20.0, 4000)[1:]])


@functools.lru_cache(maxsize=1)
def _tables():
    from astropy.cosmology import Planck18

    d_l = Planck18.luminosity_distance(_Z_GRID).value
    d_a = Planck18.angular_diameter_distance(_Z_GRID).value
    return d_l, d_a


def angular_diameter_distance_mpc(value: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Angular-diameter distance (Mpc) from a luminosity distance (``source`` is
    ``luminosity_mpc``: z from D_L in the cosmology, D_A = D_L / (1 + z)^2) or a redshift
    (``spec_z``, ``photo_z``); NaN where there is neither."""
    d_l_grid, d_a_grid = _tables()
    value = np.asarray(value, np.float64)
    out = np.full(len(value), np.nan)
    lum = (source == "luminosity_mpc") & np.isfinite(value)
    if lum.any():
        z = np.interp(value[lum], np.r_[0.0, d_l_grid], np.r_[0.0, _Z_GRID])
        out[lum] = value[lum] / (1.0 + z) ** 2
    red = ((source == "spec_z") | (source == "photo_z")) & np.isfinite(value)
    if red.any():
        out[red] = np.interp(value[red], np.r_[0.0, _Z_GRID], np.r_[0.0, d_a_grid])
    return out
