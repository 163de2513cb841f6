"""The sales chart's geometry: every bar inside the picture, taller for more, none for nothing."""

import itertools
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from admin.chart import BOTTOM, HEIGHT, LABEL_SPACING, TOP, bar_chart

pytestmark = pytest.mark.unit

VALUES = st.lists(st.integers(-(10**12), 10**15), min_size=1, max_size=366)


@given(VALUES)
def test_bars_stay_inside_the_chart_and_follow_their_values(values: list[int]) -> None:
    start = date(2026, 1, 1)
    chart = bar_chart([(start + timedelta(days=n), v) for n, v in enumerate(values)])
    assert len(chart.bars) == len(values)
    for bar in chart.bars:
        assert bar.x >= 0
        assert bar.x + bar.width <= chart.width
        assert 0 <= bar.y <= chart.baseline
        assert bar.y + bar.height == chart.baseline
        assert (bar.height > 0) == (bar.value > 0)
    # More is never shorter, for every pair of bars: sorted by value (ties by height), heights never drop.
    by_value = sorted(chart.bars, key=lambda bar: (bar.value, bar.height))
    assert all(a.height <= b.height for a, b in itertools.pairwise(by_value))
    tallest = max(chart.bars, key=lambda bar: bar.value)
    if tallest.value > 0:
        assert tallest.y == 10  # the tallest reaches the top margin


def test_day_labels_never_crowd_each_other() -> None:
    start = date(2026, 1, 1)
    chart = bar_chart([(start + timedelta(days=n), n) for n in range(30)])
    labelled = [n for n, bar in enumerate(chart.bars) if bar.label]
    assert labelled[0] == 0
    assert labelled[-1] == 29
    assert all(b - a >= 4 for a, b in itertools.pairwise(labelled))


def test_no_days_is_an_empty_chart_and_no_sales_are_flat() -> None:
    empty = bar_chart([])
    assert (empty.bars, empty.peak, empty.baseline) == ([], 0, HEIGHT - BOTTOM)
    start = date(2026, 1, 1)
    flat = bar_chart([(start + timedelta(days=n), -n) for n in range(10)])
    assert flat.peak == 0
    assert all((bar.height, bar.y) == (0, flat.baseline) for bar in flat.bars)


def test_a_single_sale_beside_a_huge_one_still_shows() -> None:
    start = date(2026, 1, 1)
    chart = bar_chart([(start, 1), (start + timedelta(days=1), 10**15)])
    assert [bar.height for bar in chart.bars] == [1, HEIGHT - BOTTOM - TOP]


def test_the_last_day_is_always_labelled_and_labels_keep_their_distance() -> None:
    start = date(2026, 1, 1)
    for days in range(1, 40):
        chart = bar_chart([(start + timedelta(days=n), n) for n in range(days)])
        labelled = [n for n, bar in enumerate(chart.bars) if bar.label]
        assert labelled[-1] == days - 1, days
        assert chart.bars[-1].label == (start + timedelta(days=days - 1)).strftime("%b %d")
        assert all(b - a >= LABEL_SPACING for a, b in itertools.pairwise(labelled)), (days, labelled)
        assert all(n % 7 == 0 for n in labelled[:-1]), (days, labelled)  # the others: every seventh day
