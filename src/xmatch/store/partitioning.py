"""Adaptive HEALPix partitioning: a histogram of row counts in, a list of partitions out.

A partition is the lowest-order pixel whose row count fits the threshold, so dense sky
gets small (high-order) partitions and sparse sky large ones, as HATS prescribes.
"""

from __future__ import annotations

import warnings

import numpy as np

from xmatch.errors import InputError
from xmatch.sky.healpix import npix_at


def add_sparse_counts(histogram: np.ndarray, pixels: np.ndarray, counts: np.ndarray) -> None:
    """Add counts of unique ``pixels`` into a dense ``histogram`` in place."""
    histogram[pixels] += counts


def sparse_histogram(sorted_pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique values and their counts of an already sorted pixel array."""
    if len(sorted_pixels) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    starts = np.flatnonzero(np.r_[True, sorted_pixels[1:] != sorted_pixels[:-1]])
    counts = np.diff(np.r_[starts, len(sorted_pixels)])
    return sorted_pixels[starts].astype(np.int64), counts.astype(np.int64)


def plan_partitions(
    histogram: np.ndarray,
    histogram_order: int,
    threshold_rows: int,
    lowest_order: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Choose partitions from a dense histogram at ``histogram_order``.

    Returns
    -------
    orders, pixels, counts : numpy.ndarray
        One entry per non-empty partition, sorted by their position along the
        order-29 curve (which is also HATS' ``(Norder, Npix)`` breadth-first order
        within each order).
    """
    if len(histogram) != npix_at(histogram_order):
        raise InputError(f"histogram has {len(histogram)} bins, "
                         f"expected {npix_at(histogram_order)}")
    if threshold_rows < 1:
        raise InputError("threshold_rows must be at least 1")
    if not 0 <= lowest_order <= histogram_order:
        raise InputError(f"lowest_order must be within 0..{histogram_order}")
    found_orders, found_pixels, found_counts = [], [], []
    undecided = None  # pixels at the current order whose parent was too full
    for order in range(lowest_order, histogram_order + 1):
        group = 1 << (2 * (histogram_order - order))
        counts = histogram.reshape(-1, group).sum(axis=1)
        if undecided is None:
            undecided = np.ones(len(counts), bool)
        last = order == histogram_order
        fits = undecided & (counts > 0) & ((counts <= threshold_rows) | last)
        pixels = np.flatnonzero(fits)
        found_orders.append(np.full(len(pixels), order, np.int64))
        found_pixels.append(pixels.astype(np.int64))
        found_counts.append(counts[pixels].astype(np.int64))
        if last:
            oversized = counts[pixels] > threshold_rows
            if oversized.any():
                warnings.warn(
                    f"{int(oversized.sum())} partitions at the highest order {order} hold more "
                    f"than {threshold_rows} rows (largest {int(counts[pixels].max())}); raise "
                    "highest_order to split them",
                    stacklevel=2,
                )
        undecided = np.repeat(undecided & (counts > threshold_rows), 4)
    orders = np.concatenate(found_orders)
    pixels = np.concatenate(found_pixels)
    counts = np.concatenate(found_counts)
    start29 = pixels << (2 * (29 - orders))
    by_position = np.argsort(start29, kind="stable")
    return orders[by_position], pixels[by_position], counts[by_position]
