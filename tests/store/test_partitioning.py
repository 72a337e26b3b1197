"""Adaptive partitioning against a brute-force reference."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xmatch.sky.healpix import npix_at
from xmatch.store.partitioning import plan_partitions, sparse_histogram


def reference_plan(histogram, order_max, threshold):
    """Top-down recursion, obviously correct and slow."""
    found = []

    def count(order, pixel):
        width = 4 ** (order_max - order)
        return histogram[pixel * width:(pixel + 1) * width].sum()

    def visit(order, pixel):
        n = count(order, pixel)
        if n == 0:
            return
        if n <= threshold or order == order_max:
            found.append((order, pixel, n))
        else:
            for child in range(4 * pixel, 4 * pixel + 4):
                visit(order + 1, child)

    for base in range(12):
        visit(0, base)
    return sorted(found, key=lambda t: t[1] << (2 * (29 - t[0])))


@settings(max_examples=60, derandomize=True, deadline=None)
@given(st.integers(0, 3), st.integers(1, 500), st.integers(0, 2**32 - 1))
def test_plan_matches_reference(order_max, threshold, seed):
    rng = np.random.default_rng(seed)
    histogram = rng.poisson(rng.uniform(0, 30), npix_at(order_max)).astype(np.int64)
    histogram[rng.random(len(histogram)) < 0.3] = 0  # empty areas
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # oversized pixels are part of the test
        orders, pixels, counts = plan_partitions(histogram, order_max, threshold)
    expected = reference_plan(histogram, order_max, threshold)
    assert list(zip(orders.tolist(), pixels.tolist(), counts.tolist(), strict=True)) == expected
    assert counts.sum() == histogram.sum()


def test_oversized_partitions_warn_at_highest_order():
    histogram = np.zeros(npix_at(1), np.int64)
    histogram[5] = 1000
    with pytest.warns(UserWarning, match="hold more than 10 rows"):
        orders, pixels, counts = plan_partitions(histogram, 1, 10)
    assert (orders.tolist(), pixels.tolist(), counts.tolist()) == ([1], [5], [1000])


def test_empty_histogram_gives_no_partitions_and_bad_arguments_raise():
    orders, _, _ = plan_partitions(np.zeros(npix_at(2), np.int64), 2, 10)
    assert len(orders) == 0
    with pytest.raises(ValueError, match="bins"):
        plan_partitions(np.zeros(7, np.int64), 2, 10)
    with pytest.raises(ValueError, match="threshold"):
        plan_partitions(np.zeros(npix_at(1), np.int64), 1, 0)


def test_sparse_histogram():
    values, counts = sparse_histogram(np.array([1, 1, 2, 5, 5, 5]))
    assert values.tolist() == [1, 2, 5] and counts.tolist() == [2, 1, 3]
    values, counts = sparse_histogram(np.array([], np.int64))
    assert len(values) == 0 and len(counts) == 0
