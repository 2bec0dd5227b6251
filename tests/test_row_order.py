"""`RowOrder`: each epoch's row order as a seeded bijection, looked up per position in constant memory. Every
row comes exactly once per epoch, for every size; positions are looked up without the ones before them; the
orders of different seeds are unrelated and each row lands at each position about equally often (a
chi-squared test against the uniform distribution, scipy's)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chisquare

from trainers.row_order import RowOrder


@pytest.mark.parametrize("size", [*range(40), 255, 256, 257, 1000, 4097, 65_536, 65_539, 1 << 20])
def test_every_row_exactly_once(size):
    order = RowOrder(size, (7, 0, 123))
    rows = order.take(0, size)
    assert len(order) == size and sorted(rows.tolist()) == list(range(size))
    for position in {0, size // 3, size - 1} if size else ():  # one position alone: the same row
        assert order[position] == int(rows[position])


def test_any_position_alone_at_corpus_scale():
    """10^12 rows (a trillion-token corpus of 1,024-token rows and more): positions near the end are looked
    up directly and are distinct; nothing of size n is ever held."""
    size = 10**12
    order = RowOrder(size, (42, 3, 9))
    positions = [size - 1, size // 2, 0, 123_456_789_012]
    rows = [order[p] for p in positions]
    assert all(0 <= r < size for r in rows) and len(set(rows)) == len(rows)
    assert order.take(size - 5, size).tolist() == [order[p] for p in range(size - 5, size)]
    assert len(order._keys) == 6  # the whole state: round keys and two masks


def test_seeds_and_epochs_give_unrelated_orders_and_no_shuffle_is_the_identity():
    first, again = RowOrder(1000, (1, 0, 5)).take(0, 1000), RowOrder(1000, (1, 0, 5)).take(0, 1000)
    other_epoch = RowOrder(1000, (1, 1, 5)).take(0, 1000)
    assert np.array_equal(first, again)
    assert np.mean(first == other_epoch) < 0.02  # about 1/1000 of positions agree by chance
    assert abs(np.corrcoef(first, other_epoch)[0, 1]) < 0.1
    assert RowOrder(50, 3, shuffle=False).take(0, 50).tolist() == list(range(50))
    with pytest.raises(IndexError, match=r"row 50 is not in \[0, 50\)"):
        RowOrder(50, 3)[50]


@pytest.mark.parametrize("size", [10, 37])
def test_each_row_lands_at_each_position_about_equally_often(size):
    draws = 3000
    first = np.array([RowOrder(size, (seed, 0, 1))[0] for seed in range(draws)])
    middle = np.array([RowOrder(size, (seed, 0, 1))[size // 2] for seed in range(draws)])
    for positions in (first, middle):
        counts = np.bincount(positions, minlength=size)
        assert chisquare(counts).pvalue > 1e-3, counts
