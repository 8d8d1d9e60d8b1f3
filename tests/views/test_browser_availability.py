"""The pages of a fault, as people see them: the database outage and a provider not answering.

In Chromium at 1280 px and 375 px (screenshots in ``artifacts/screenshots/``), with axe-core
(no serious or critical violation) and no Content-Security-Policy violation in the console.
"""

from __future__ import annotations

import pytest

from accounts.oidc import breaker
from tests.support.axe import assert_no_serious_violations
from tests.support.browser import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def look(page, url: str, name: str) -> str:
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    response = page.goto(url)
    assert response.status == 503
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 800})
        screenshot(page, f"{name}-{width}")
    assert_no_serious_violations(page, name)
    assert not [line for line in console if "Content Security Policy" in line], console
    return page.inner_text("main")


def test_a_database_outage_page_says_what_happened_and_offers_a_retry(live_server, page, settings):
    settings.ROOT_URLCONF = "tests.views.test_availability"
    text = look(page, f"{live_server.url}/broken/?x=1", "outage-database")
    assert "cannot reach its database" in text
    assert "Nothing was lost" in text
    assert page.get_attribute("text=Try this page again", "href") == "/broken/?x=1"


def test_a_provider_known_down_gets_a_page_not_a_redirect(live_server, page, op):
    for _ in range(3):
        breaker.failure(op.issuer + "/token")
    text = look(page, f"{live_server.url}/oidc/authenticate/?next=/members/", "outage-provider")
    assert "The identity provider is not answering" in text
    assert page.url.startswith(live_server.url)  # the browser stayed on the site
