"""/metrics under gunicorn with two workers: every worker's counts add up (multiprocess mode)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.deployments import start_deployment

pytestmark = pytest.mark.devidp


def samples(url: str) -> dict[tuple, float]:
    answer = requests.get(f"{url}/metrics", timeout=20)
    assert answer.status_code == 200, answer.text[:300]
    found = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found[(sample.name, *sorted(sample.labels.items()))] = sample.value
    return found


def total(found: dict[tuple, float], name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for key, v in found.items() if key[0] == name and wanted <= set(key[1:]))


def test_counts_of_two_gunicorn_workers_add_up_and_junk_adds_no_series(tmp_path):
    prom = tmp_path / "prometheus"
    prom.mkdir()
    with start_deployment(
        "gunicorn2-sqlite",
        workdir=tmp_path,
        access_token_ttl=2,
        site_env={"PROMETHEUS_MULTIPROC_DIR": str(prom)},
    ) as site:
        url = site.urls[0]
        users = [site.sign_in(name) for name in ("alice", "staff", "admin")]

        # Refused bearer tokens, fifty at once so that both workers answer some.
        def junk(index: int) -> int:
            token = f"junk-{index}-" + "x" * (index % 7)
            headers = {"Authorization": f"Bearer {token}"}
            return requests.get(f"{url}/api/me/", headers=headers, timeout=30).status_code

        with ThreadPoolExecutor(max_workers=50) as pool:
            codes = list(pool.map(junk, range(50)))
        assert set(codes) == {401}
        import time

        time.sleep(2.5)  # the access tokens expire: the next requests refresh
        for http in users:
            assert http.get(f"{url}/api/me/", timeout=30).status_code == 200
        found = samples(url)
        log = site.log_text()

    pids = {re.sub(r"\D", "", path.name) for path in prom.glob("counter_*.db")}
    assert len(pids) >= 2, sorted(p.name for p in prom.iterdir())  # both workers counted
    assert total(found, "oidc_sign_ins_total", provider="default", outcome="success") == 3
    assert total(found, "oidc_bearer_requests_total", outcome="refused") == 50
    assert total(found, "oidc_refreshes_total", provider="default", outcome="refreshed") >= 3
    timed = total(found, "oidc_provider_request_duration_seconds_count", endpoint="token")
    assert timed >= 6  # three codes and three refreshes, at least
    bearer_series = [k for k in found if k[0] == "oidc_bearer_requests_total"]
    assert len(bearer_series) <= 3, bearer_series  # 50 different tokens, a handful of reasons
    assert "Traceback" not in log
