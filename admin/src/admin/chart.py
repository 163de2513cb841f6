"""A bar chart laid out on the server, for an inline SVG in the template: no JavaScript, and no inline style
(the admin's Content-Security-Policy refuses both), only SVG geometry attributes."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

WIDTH = 720
HEIGHT = 220
TOP = 10  # room above the tallest bar
BOTTOM = 24  # room below the bars for the day labels
GAP = 2
LABEL_SPACING = 4  # bars between two labels, at least


@dataclass(frozen=True)
class Bar:
    x: int
    y: int
    width: int
    height: int
    day: date
    value: int
    label: str | None  # the day under every seventh bar and the last, never two labels close together


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    baseline: int
    bars: list[Bar]
    peak: int


def bar_chart(points: Sequence[tuple[date, int]], *, width: int = WIDTH, height: int = HEIGHT) -> Chart:
    """One bar per day, heights proportional to the values (integers, rounded down; a value above zero is
    at least 1 px tall so a small sale still shows). Negative values draw as zero."""
    baseline = height - BOTTOM
    room = baseline - TOP
    peak = max((max(value, 0) for _, value in points), default=0)
    slot = width // max(len(points), 1)
    bars = []
    for index, (day, value) in enumerate(points):
        tall = 0 if peak == 0 or value <= 0 else max(1, room * value // peak)
        last = index == len(points) - 1
        bars.append(
            Bar(
                x=index * slot + GAP // 2,
                y=baseline - tall,
                width=max(slot - GAP, 1),
                height=tall,
                day=day,
                value=value,
                label=day.strftime("%b %d")
                if last or (index % 7 == 0 and len(points) - 1 - index >= LABEL_SPACING)
                else None,
            )
        )
    return Chart(width=width, height=height, baseline=baseline, bars=bars, peak=peak)
