"""Kernels of the nightly solar-system ephemeris cache: the HEALPix pixels each object's
track crosses during a night, and cone queries at an instant of that night.

A query takes the cone's pixels at the track order, gathers the objects whose track
touches any of them, evaluates each candidate exactly (two-body from its state at the
night's reference epoch, light time, topocentric) and keeps those inside the cone.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from xmatch.kernels.healpix import cone_cover_kernel
from xmatch.kernels.jit import jit, parallel_jit
from xmatch.kernels.orbits import APPARENT_SIZE, apparent_one

#: Added to every track disc: covers rounding and the observer interpolation (~1e-9 arcsec).
TRACK_MARGIN_RAD = math.radians(1.0 / 3600.0)


@jit
def _angle(ax, ay, az, bx, by, bz):
    """Angle between two unit vectors, accurate at every separation."""
    cx, cy, cz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
    return math.atan2(math.sqrt(cx * cx + cy * cy + cz * cz), ax * bx + ay * by + az * bz)


@parallel_jit
def _track_kernel(states, dt, observer, observer_velocity, sun, sun_velocity, gm, out):
    """Unit vectors (n, m, 3) of every object at every sample time (``dt`` days after the
    state epoch; observer and Sun vectors per sample)."""
    for k in numba.prange(states.shape[0]):
        place = np.empty(APPARENT_SIZE)
        for j in range(dt.shape[0]):
            apparent_one(states, k, dt[j], observer[j], observer_velocity[j], sun[j],
                         sun_velocity[j], gm, place)
            out[k, j, 0] = place[0]
            out[k, j, 1] = place[1]
            out[k, j, 2] = place[2]


def sample_tracks(states, dt, observer, observer_velocity, sun, sun_velocity, gm):
    """Unit vectors (n, m, 3) of objects at m sample times (see :func:`_track_kernel`)."""
    out = np.empty((states.shape[0], dt.shape[0], 3))
    _track_kernel(np.ascontiguousarray(states), np.ascontiguousarray(dt), observer,
                  observer_velocity, sun, sun_velocity, gm, out)
    return out


@jit
def _object_track_pixels(track, order):
    """Pixels at ``order`` that an object's path can touch, from unit vectors sampled at
    interval ends and midpoints (``track`` has 2m+1 rows). Each interval is covered by a
    disc around the chord's midpoint direction, of radius half the chord's angle plus twice
    the midpoint's distance from it (the path's bend) plus a margin; every point of a
    smooth path lies inside."""
    found = []
    for i in range(0, track.shape[0] - 2, 2):
        ax, ay, az = track[i, 0], track[i, 1], track[i, 2]
        bx, by, bz = track[i + 2, 0], track[i + 2, 1], track[i + 2, 2]
        cx, cy, cz = ax + bx, ay + by, az + bz
        norm = math.sqrt(cx * cx + cy * cy + cz * cz)
        cx, cy, cz = cx / norm, cy / norm, cz / norm
        half = 0.5 * _angle(ax, ay, az, bx, by, bz)
        bend = _angle(track[i + 1, 0], track[i + 1, 1], track[i + 1, 2], cx, cy, cz)
        radius = half + 2.0 * bend + TRACK_MARGIN_RAD
        ranges = cone_cover_kernel(math.atan2(cy, cx), math.asin(min(1.0, max(-1.0, cz))),
                                   radius, order)
        for r in range(ranges.shape[0]):
            for pixel in range(ranges[r, 0], ranges[r, 1]):
                found.append(pixel)
    pixels = np.empty(len(found), np.int64)
    for i in range(len(found)):
        pixels[i] = found[i]
    return np.unique(pixels)


@parallel_jit
def _track_pixel_counts_kernel(tracks, order, counts, pixel_lists_out, offsets, fill):
    """Two passes share this kernel: with ``fill`` False count each object's pixels; with
    ``fill`` True write them at ``offsets``."""
    for k in numba.prange(tracks.shape[0]):
        pixels = _object_track_pixels(tracks[k], order)
        if fill:
            start = offsets[k]
            for i in range(pixels.shape[0]):
                pixel_lists_out[start + i] = pixels[i]
        else:
            counts[k] = pixels.shape[0]


def track_pixels(tracks: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Per object, the pixels its sampled track (n, 2m+1, 3) can touch: CSR ``offsets``
    (n+1) and ``pixels``."""
    n = tracks.shape[0]
    counts = np.zeros(n, np.int64)
    empty = np.empty(0, np.int64)
    _track_pixel_counts_kernel(tracks, order, counts, empty, empty, False)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    pixels = np.empty(offsets[-1], np.int64)
    _track_pixel_counts_kernel(tracks, order, counts, pixels, offsets, True)
    return offsets, pixels


@jit
def _candidates(pair_pixels, pair_objects, ranges):
    """Distinct objects whose track touches any pixel of ``ranges`` (pixel-sorted pairs)."""
    found = []
    for r in range(ranges.shape[0]):
        lo = np.searchsorted(pair_pixels, ranges[r, 0])
        hi = np.searchsorted(pair_pixels, ranges[r, 1])
        for i in range(lo, hi):
            found.append(pair_objects[i])
    out = np.empty(len(found), np.int64)
    for i in range(len(found)):
        out[i] = found[i]
    return np.unique(out)


@jit
def sso_cone_one(pair_pixels, pair_objects, order, states, dt, observer, observer_velocity,
                 sun, sun_velocity, gm, ra_rad, dec_rad, radius_rad):
    """Objects inside one cone at one instant: their indices, separations (rad) and
    places (see :func:`xmatch.kernels.orbits.apparent_one`)."""
    ranges = cone_cover_kernel(ra_rad, dec_rad, radius_rad, order)
    candidates = _candidates(pair_pixels, pair_objects, ranges)
    qx = math.cos(dec_rad) * math.cos(ra_rad)
    qy = math.cos(dec_rad) * math.sin(ra_rad)
    qz = math.sin(dec_rad)
    places = np.empty((candidates.shape[0], APPARENT_SIZE))
    separations = np.empty(candidates.shape[0])
    keep = np.zeros(candidates.shape[0], np.bool_)
    for i in range(candidates.shape[0]):
        apparent_one(states, candidates[i], dt, observer, observer_velocity, sun,
                     sun_velocity, gm, places[i])
        separations[i] = _angle(places[i, 0], places[i, 1], places[i, 2], qx, qy, qz)
        keep[i] = separations[i] <= radius_rad
    return candidates[keep], separations[keep], places[keep]


@parallel_jit
def _sso_count_kernel(pair_pixels, pair_objects, order, states, dt, observer,
                      observer_velocity, sun, sun_velocity, gm, ra, dec, radius, counts):
    for q in numba.prange(ra.shape[0]):
        found, _, _ = sso_cone_one(pair_pixels, pair_objects, order, states, dt[q],
                                   observer[q], observer_velocity[q], sun[q], sun_velocity[q],
                                   gm, ra[q], dec[q], radius[q])
        counts[q] = found.shape[0]


@parallel_jit
def _sso_fill_kernel(pair_pixels, pair_objects, order, states, dt, observer,
                     observer_velocity, sun, sun_velocity, gm, ra, dec, radius, offsets,
                     objects_out, separations_out, places_out):
    for q in numba.prange(ra.shape[0]):
        found, separations, places = sso_cone_one(
            pair_pixels, pair_objects, order, states, dt[q], observer[q],
            observer_velocity[q], sun[q], sun_velocity[q], gm, ra[q], dec[q], radius[q])
        start = offsets[q]
        for i in range(found.shape[0]):
            objects_out[start + i] = found[i]
            separations_out[start + i] = separations[i]
            places_out[start + i] = places[i]


def sso_cones(pair_pixels, pair_objects, order, states, dt, observer, observer_velocity, sun,
              sun_velocity, gm, ra_rad, dec_rad, radius_rad):
    """Many cones, each at its own instant: CSR ``offsets`` (q+1) over matched ``objects``,
    their ``separations`` (rad) and ``places`` (rows of ``apparent_one``)."""
    args = (pair_pixels, pair_objects, order, states, dt, observer, observer_velocity, sun,
            sun_velocity, gm, ra_rad, dec_rad, radius_rad)
    counts = np.zeros(ra_rad.shape[0], np.int64)
    _sso_count_kernel(*args, counts)
    offsets = np.zeros(ra_rad.shape[0] + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    objects = np.empty(offsets[-1], np.int64)
    separations = np.empty(offsets[-1])
    places = np.empty((offsets[-1], APPARENT_SIZE))
    _sso_fill_kernel(*args, offsets, objects, separations, places)
    return offsets, objects, separations, places
