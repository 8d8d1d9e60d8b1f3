"""Sign-ins and refusals per day and provider, as data for an inline SVG bar chart.

Pure layout: ``summary_charts`` turns counts into bars with coordinates; the admin's
summary template draws them as SVG rectangles. No JavaScript and nothing from a CDN.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.audit.log import FAILURE, SIGN_IN, SUCCESS
from accounts.models import AuditEvent

NONE_LABEL = "(none)"  # the provider of events that concern no known provider
SLOT = 24  # px per day
BAR = 10
LEFT, TOP, PLOT_HEIGHT, BOTTOM = 44, 12, 160, 30


@dataclass
class Bar:
    x: int
    y: float
    height: float
    kind: str  # "success" or "failure"
    label: str  # the tooltip: "2026-12-01: 3 sign-ins"


@dataclass
class Chart:
    provider: str
    width: int
    height: int
    bars: list[Bar] = field(default_factory=list)
    y_ticks: list[tuple[float, int]] = field(default_factory=list)  # (y, value)
    x_labels: list[tuple[int, str]] = field(default_factory=list)  # (x, "12-01")
    successes: int = 0
    failures: int = 0
    rows: list[tuple[date, int, int]] = field(default_factory=list)  # the same as a table

    @property
    def label(self) -> str:
        """The provider's slug, or "(none)" for events that concern no known provider."""
        return self.provider or NONE_LABEL


def last_days(days: int, today: date | None = None) -> list[date]:
    today = today or timezone.localdate()
    return [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def sign_in_counts(days: list[date]) -> dict[tuple[str, date, str], int]:
    """(provider, day, outcome) -> number of sign-ins, from the audit log."""
    start = timezone.make_aware(datetime.combine(days[0], datetime.min.time()))
    rows = (
        AuditEvent.objects.filter(event=SIGN_IN, created_at__gte=start)
        .annotate(day=TruncDate("created_at"))
        .values("provider", "day", "outcome")
        .annotate(total=Sum("count"))
    )
    return {(r["provider"], r["day"], r["outcome"]): r["total"] for r in rows}


def _scale_top(peak: int) -> int:
    """A round number at or above the peak, so the ticks read well."""
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if peak <= step * 4:
            return step * 4
    return peak


def chart_for(provider: str, days: list[date], counts: dict) -> Chart:
    series = [
        (day, counts.get((provider, day, SUCCESS), 0), counts.get((provider, day, FAILURE), 0))
        for day in days
    ]
    top = _scale_top(max([1, *(max(ok, bad) for _, ok, bad in series)]))
    chart = Chart(
        provider=provider, width=LEFT + SLOT * len(days) + 8, height=TOP + PLOT_HEIGHT + BOTTOM
    )
    base = TOP + PLOT_HEIGHT
    for index, (day, ok, bad) in enumerate(series):
        x = LEFT + index * SLOT + 2
        for offset, kind, value, noun in (
            (0, SUCCESS, ok, "sign-ins"),
            (BAR, FAILURE, bad, "refusals"),
        ):
            height = PLOT_HEIGHT * value / top
            label = f"{day.isoformat()}: {value} {noun}"
            chart.bars.append(
                Bar(x + offset, round(base - height, 1), round(height, 1), kind, label)
            )
        if index % 5 == 0 or index == len(series) - 1:
            chart.x_labels.append((x + BAR, day.strftime("%m-%d")))
    chart.y_ticks = [(round(base - PLOT_HEIGHT * i / 4, 1), top * i // 4) for i in range(5)]
    chart.successes = sum(ok for _, ok, _ in series)
    chart.failures = sum(bad for _, _, bad in series)
    chart.rows = series
    return chart


def summary_charts(days: int = 30, today: date | None = None) -> list[Chart]:
    """One chart per provider seen in the period (the default provider when none was)."""
    period = last_days(days, today)
    counts = sign_in_counts(period)
    providers = sorted({provider for provider, _, _ in counts}) or ["default"]
    return [chart_for(provider, period, counts) for provider in providers]
