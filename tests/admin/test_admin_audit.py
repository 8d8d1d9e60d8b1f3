"""The audit log in the admin: read-only, filterable, and a summary chart drawn as SVG."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from accounts.audit import log as audit
from accounts.audit.chart import chart_for, last_days, summary_charts
from accounts.models import AuditEvent

pytestmark = pytest.mark.django_db

User = get_user_model()
LIST = "/admin/accounts/auditevent/"
SUMMARY = "/admin/accounts/auditevent/summary/"


@pytest.fixture
def staff() -> Client:
    user = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user, backend="accounts.backends.OIDCBackend")
    return client


def at(days_ago: int, event: str, outcome: str, *, provider: str = "default", user=None):
    row = audit.record(event, outcome, provider=provider, user=user)
    AuditEvent.objects.filter(pk=row.pk).update(
        created_at=timezone.now() - timedelta(days=days_ago)
    )
    return row


def test_the_list_filters_by_user_and_shows_only_their_events(staff):
    alice, bob = User.objects.create_user("alice"), User.objects.create_user("bob")
    audit.record(audit.SIGN_IN, audit.SUCCESS, user=alice, subject="sub-alice")
    audit.record(audit.SIGN_IN, audit.FAILURE, reason="inactive", user=alice)
    audit.record(audit.SIGN_IN, audit.SUCCESS, user=bob, subject="sub-bob")

    page = staff.get(LIST, {"user__id__exact": alice.pk}).content.decode()

    assert "sub-alice" in page and "inactive" in page
    assert "sub-bob" not in page
    assert "Summary chart" in page


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ({"event": "sign_out"}, "operator", "inactive"),
        ({"outcome": "failure"}, "inactive", "operator"),
        ({"provider": "corp"}, "inactive", "operator"),
        ({"q": "inactive"}, "inactive", "operator"),
    ],
)
def test_the_list_filters_by_event_outcome_provider_and_search(staff, query, shown, hidden):
    audit.record(audit.SIGN_OUT, audit.SUCCESS, reason="operator")
    audit.record(audit.SIGN_IN, audit.FAILURE, reason="inactive", provider="corp")

    page = staff.get(LIST, query).content.decode()

    assert shown in page
    assert f">{hidden}<" not in page


def test_the_list_filters_by_date(staff):
    at(0, audit.SIGN_IN, audit.SUCCESS)
    old = at(40, audit.SIGN_OUT, audit.SUCCESS)
    today = timezone.localdate()
    response = staff.get(  # the date hierarchy above the list
        LIST,
        {
            "created_at__year": today.year,
            "created_at__month": today.month,
            "created_at__day": today.day,
        },
    )
    assert response.status_code == 200
    shown = [r.pk for r in response.context["cl"].result_list]
    assert len(shown) == 1
    assert old.pk not in shown


def test_rows_cannot_be_added_changed_or_deleted_even_by_a_superuser(staff):
    row = audit.record(audit.SIGN_IN, audit.SUCCESS)

    assert staff.get(f"{LIST}add/").status_code == 403
    assert staff.get(f"{LIST}{row.pk}/delete/").status_code == 403
    detail = staff.get(f"{LIST}{row.pk}/change/")
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content
    staff.post(f"{LIST}{row.pk}/change/", {"reason": "edited"})
    assert AuditEvent.objects.get().reason == ""


def test_the_summary_page_draws_sign_ins_and_refusals_per_day_and_provider(staff):
    at(0, audit.SIGN_IN, audit.SUCCESS)
    at(0, audit.SIGN_IN, audit.SUCCESS)
    at(1, audit.SIGN_IN, audit.FAILURE)
    at(2, audit.SIGN_IN, audit.SUCCESS, provider="corp")
    at(45, audit.SIGN_IN, audit.SUCCESS)  # outside the 30 days

    response = staff.get(SUMMARY)

    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('class="audit-svg"') == 2  # one chart per provider
    assert "2 sign-ins, 1 refusal" in page
    assert "1 sign-in, 0 refusals" in page
    assert f"{timezone.localdate().isoformat()}: 2 sign-ins" in page
    assert "<script" not in page.split('id="content-main"')[1]
    assert not re.search(r"(src|href)=\"https?://", page)  # nothing from elsewhere


def test_people_without_the_view_permission_cannot_see_the_summary():
    clerk = User.objects.create_user("clerk", is_staff=True)
    client = Client()
    client.force_login(clerk, backend="accounts.backends.OIDCBackend")
    assert client.get(SUMMARY).status_code == 403
    assert Client().get(SUMMARY).status_code == 302  # anonymous: to the sign-in page


def test_chart_bars_are_proportional_and_the_scale_is_round():
    days = last_days(3, today=date(2026, 12, 3))
    counts = {("p", date(2026, 12, 2), "success"): 6, ("p", date(2026, 12, 3), "failure"): 3}

    chart = chart_for("p", days, counts)

    heights = {bar.label: bar.height for bar in chart.bars}
    assert heights["2026-12-02: 6 sign-ins"] == 2 * heights["2026-12-03: 3 refusals"]
    assert heights["2026-12-01: 0 sign-ins"] == 0
    assert [value for _, value in chart.y_ticks] == [0, 2, 4, 6, 8]
    assert (chart.successes, chart.failures) == (6, 3)


def test_with_no_events_the_summary_shows_an_empty_chart_of_the_default_provider():
    (chart,) = summary_charts(30)
    assert chart.provider == "default"
    assert len(chart.bars) == 60 and all(bar.height == 0 for bar in chart.bars)


def test_events_of_no_known_provider_show_as_none_in_the_list_the_filter_and_the_chart(staff):
    at(0, audit.SIGN_IN, audit.FAILURE, provider="")
    at(0, audit.SIGN_IN, audit.SUCCESS)

    page = staff.get(LIST).content.decode()
    assert '<td class="field-provider_label">(none)</td>' in page
    assert "?provider=-" in page  # the filter's "(none)" choice
    filtered = staff.get(LIST, {"provider": "-"}).content.decode()
    assert filtered.count('<td class="field-provider_label">') == 1
    assert '<td class="field-provider_label">(none)</td>' in filtered

    summary = staff.get(SUMMARY).content.decode()
    assert "Provider <code>(none)</code>: 0 sign-ins, 1 refusal" in summary
    assert "Provider <code>default</code>: 1 sign-in, 0 refusals" in summary
