"""The alert history in numba: detections associated with objects, alert ids remembered.

State is a set of flat arrays the wrapper (:mod:`xmatch.history.live`) owns and grows:

* objects, by index: the unit vector of its first detection, the sum of the unit vectors
  of its detections (its position is their mean, as ZTF places its objects), its home
  survey, the surveys seen (a bit mask), counts, first and last time, the peak (brightest)
  magnitude, and per band the magnitude and time of its latest detection;
* a grid: an open-addressing hash table from a HEALPix cell at ``grid_order`` to the
  first object filed there, objects of one cell chained through ``obj_next``; an object is
  filed by its mean position, and moves to another cell when its mean does. The grid
  order is the deepest whose pixel neighbourhood holds a cone of the widest association
  radius, so the nine cells around an alert hold every candidate;
* the alert ids seen, an open-addressing set keyed by (survey code, alert id), with the
  object each one went to: an alert recorded twice is recognised, never recorded again.

Association is sequential over a batch, in arrival order: an alert sees every object
made before it, those of its own batch included, at its mean position then. The nearest
object (largest cosine; ties to the lower index) within the radius of the (alert survey,
object home survey) pair takes it; none, and a new object is made.
"""

from __future__ import annotations

import numpy as np

from xmatch.kernels.healpix import neighbour_pixels, vector_to_pixel
from xmatch.kernels.jit import jit

#: What became of an alert in the history.
NEW, KNOWN, DUPLICATE = 0, 1, 2
#: The bands with a per-band summary (latest magnitude and time), by code.
BANDS = ("u", "g", "r", "i", "z", "y")
EMPTY = -1


@jit
def _mix(key):
    """A 64-bit integer mix (splitmix64's finaliser): neighbouring cells and sequential
    alert ids spread over the table."""
    z = np.uint64(key)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@jit
def grid_find(grid_keys, grid_head, cell):
    """The first object filed in ``cell``, or -1."""
    mask = np.uint64(len(grid_keys) - 1)
    slot = _mix(cell) & mask
    while True:
        key = grid_keys[slot]
        if key == cell:
            return grid_head[slot]
        if key == EMPTY:
            return -1
        slot = (slot + np.uint64(1)) & mask


@jit
def grid_file(grid_keys, grid_head, obj_next, cell, obj):
    """File object ``obj`` in ``cell`` (at the head of its chain); returns 1 if the cell
    was new to the table."""
    mask = np.uint64(len(grid_keys) - 1)
    slot = _mix(cell) & mask
    while True:
        key = grid_keys[slot]
        if key == cell:
            obj_next[obj] = grid_head[slot]
            grid_head[slot] = obj
            return 0
        if key == EMPTY:
            grid_keys[slot] = cell
            grid_head[slot] = obj
            obj_next[obj] = -1
            return 1
        slot = (slot + np.uint64(1)) & mask


@jit
def grid_unfile(grid_keys, grid_head, obj_next, cell, obj):
    """Take object ``obj`` out of the chain of ``cell`` (the key stays: probing goes on
    past it)."""
    mask = np.uint64(len(grid_keys) - 1)
    slot = _mix(cell) & mask
    while grid_keys[slot] != cell:
        slot = (slot + np.uint64(1)) & mask
    current = grid_head[slot]
    if current == obj:
        grid_head[slot] = obj_next[obj]
        return
    while obj_next[current] != obj:
        current = obj_next[current]
    obj_next[current] = obj_next[obj]


@jit
def mean_cosine(obj_sum, obj, x, y, z):
    """Cosine of the angle between (x, y, z) and an object's mean position."""
    sx, sy, sz = obj_sum[obj, 0], obj_sum[obj, 1], obj_sum[obj, 2]
    return (x * sx + y * sy + z * sz) / np.sqrt(sx * sx + sy * sy + sz * sz)


@jit
def seen_find(seen_id, seen_survey, seen_object, alert_id, survey):
    """The object an alert (``survey``, ``alert_id``) went to, or -1 if it was never seen."""
    mask = np.uint64(len(seen_id) - 1)
    slot = _mix(alert_id ^ (np.int64(survey) << 56)) & mask
    while True:
        code = seen_survey[slot]
        if code == 0:
            return -1
        if code == survey and seen_id[slot] == alert_id:
            return np.int64(seen_object[slot])
        slot = (slot + np.uint64(1)) & mask


@jit
def seen_add(seen_id, seen_survey, seen_object, alert_id, survey, obj):
    mask = np.uint64(len(seen_id) - 1)
    slot = _mix(alert_id ^ (np.int64(survey) << 56)) & mask
    while seen_survey[slot] != 0:
        slot = (slot + np.uint64(1)) & mask
    seen_id[slot] = alert_id
    seen_survey[slot] = survey
    seen_object[slot] = obj


@jit
def associate_kernel(grid_order, xyz, survey, alert_id, mjd, band, mag, usable,
                     cos_radius, objects, obj_xyz, obj_sum, obj_next, obj_home,
                     obj_surveys, obj_count, obj_first, obj_last, obj_peak_mag,
                     obj_peak_mjd, obj_peak_band, obj_band_mag, obj_band_mjd,
                     grid_keys, grid_head, seen_id, seen_survey, seen_object, counts,
                     out_object, out_status, out_dot, out_prev_mag, out_prev_mjd):
    """Record a batch of alerts, in order; ``counts`` = [objects, cells, alerts seen],
    updated in place. Per alert: its object, status (NEW, KNOWN, DUPLICATE; -1 where not
    ``usable``), the cosine of its angle to the object's mean position (before it joined),
    and the latest
    earlier detection of the object in the alert's band (magnitude, time; NaN if none).
    ``cos_radius[a, o]``: cosine of the association radius of an alert of survey ``a``
    with an object whose home survey is ``o``. Capacities were ensured by the caller."""
    for i in range(len(xyz)):
        out_prev_mag[i] = np.nan
        out_prev_mjd[i] = np.nan
        if not usable[i]:
            out_object[i] = -1
            out_status[i] = -1
            out_dot[i] = np.nan
            continue
        x, y, z = xyz[i, 0], xyz[i, 1], xyz[i, 2]
        s = survey[i]
        earlier = seen_find(seen_id, seen_survey, seen_object, alert_id[i], s)
        if earlier >= 0:
            out_object[i] = earlier
            out_status[i] = DUPLICATE
            out_dot[i] = mean_cosine(obj_sum, earlier, x, y, z)
            continue
        cell = vector_to_pixel(grid_order, x, y, z)
        best = -1
        best_dot = -2.0
        around = neighbour_pixels(grid_order, cell)
        for k in range(9):
            c = cell if k == 0 else around[k - 1]
            if c < 0:
                continue
            obj = grid_find(grid_keys, grid_head, c)
            while obj >= 0:
                dot = mean_cosine(obj_sum, obj, x, y, z)
                if dot >= cos_radius[s, obj_home[obj]] and (
                        dot > best_dot or (dot == best_dot and obj < best)):
                    best = obj
                    best_dot = dot
                obj = obj_next[obj]
        if best < 0:
            best = counts[0]
            counts[0] += 1
            obj_xyz[best, 0] = x
            obj_xyz[best, 1] = y
            obj_xyz[best, 2] = z
            obj_sum[best, :] = 0.0
            obj_home[best] = s
            obj_surveys[best] = 0
            obj_count[best] = 0
            obj_first[best] = mjd[i]
            obj_last[best] = mjd[i]
            obj_peak_mag[best] = np.nan
            obj_peak_mjd[best] = np.nan
            obj_peak_band[best] = -1
            obj_band_mag[best, :] = np.nan
            obj_band_mjd[best, :] = np.nan
            counts[1] += grid_file(grid_keys, grid_head, obj_next, cell, best)
            out_status[i] = NEW
            best_dot = x * x + y * y + z * z
        else:
            out_status[i] = KNOWN
        out_object[i] = best
        out_dot[i] = best_dot
        if out_status[i] == KNOWN:
            was = vector_to_pixel(grid_order, obj_sum[best, 0], obj_sum[best, 1],
                                  obj_sum[best, 2])
        obj_sum[best, 0] += x
        obj_sum[best, 1] += y
        obj_sum[best, 2] += z
        if out_status[i] == KNOWN:
            now = vector_to_pixel(grid_order, obj_sum[best, 0], obj_sum[best, 1],
                                  obj_sum[best, 2])
            if now != was:  # the mean moved to another cell: so does the object
                grid_unfile(grid_keys, grid_head, obj_next, was, best)
                counts[1] += grid_file(grid_keys, grid_head, obj_next, now, best)
        obj_surveys[best] |= np.int32(1) << s
        obj_count[best] += 1
        obj_first[best] = min(obj_first[best], mjd[i])
        obj_last[best] = max(obj_last[best], mjd[i])
        m = mag[i]
        if m == m and not (obj_peak_mag[best] <= m):  # a magnitude, and brighter (or first)
            obj_peak_mag[best] = m
            obj_peak_mjd[best] = mjd[i]
            obj_peak_band[best] = band[i]
        b = band[i]
        if b >= 0 and m == m:
            if obj_band_mjd[best, b] <= mjd[i]:    # the latest before this one (NaN: none)
                out_prev_mag[i] = obj_band_mag[best, b]
                out_prev_mjd[i] = obj_band_mjd[best, b]
            if not (obj_band_mjd[best, b] > mjd[i]):  # this one is the band's latest
                obj_band_mag[best, b] = m
                obj_band_mjd[best, b] = mjd[i]
        seen_add(seen_id, seen_survey, seen_object, alert_id[i], s, best)
        counts[2] += 1


@jit
def refile_kernel(grid_order, n_objects, obj_sum, obj_next, grid_keys, grid_head):
    """File objects 0..n_objects-1 by their mean positions in an empty grid (after it
    grew); returns the cells."""
    cells = 0
    for obj in range(n_objects - 1, -1, -1):
        cell = vector_to_pixel(grid_order, obj_sum[obj, 0], obj_sum[obj, 1], obj_sum[obj, 2])
        cells += grid_file(grid_keys, grid_head, obj_next, cell, obj)
    return cells


@jit
def reseen_kernel(old_id, old_survey, old_object, seen_id, seen_survey, seen_object):
    """Move the alert ids of an old set into a larger empty one."""
    for slot in range(len(old_id)):
        if old_survey[slot] != 0:
            seen_add(seen_id, seen_survey, seen_object, old_id[slot], old_survey[slot],
                     old_object[slot])
