"""axe-core in Chromium: inject the pinned npm package (devidp/node_modules) and run it.

``axe_check(page, name)`` runs every rule on the current page, writes the full result to
``artifacts/axe/<name>.json`` and returns the violations by impact. The script is
evaluated through the DevTools protocol, which a page's Content-Security-Policy does not
govern, so the pages need no exception for it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tests.support.browser import ARTIFACTS

AXE_JS = Path(__file__).resolve().parents[2] / "devidp" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")


def axe_check(page, name: str) -> dict[str, list[dict]]:
    """Run axe on the page; return ``{impact: [violation, ...]}`` and save the details."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    result = page.evaluate("async () => await window.axe.run(document)")
    by_impact: dict[str, list[dict]] = {}
    for violation in result["violations"]:
        by_impact.setdefault(violation["impact"] or "unknown", []).append(violation)
    path = ARTIFACTS / "axe" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result["violations"], indent=2), encoding="utf-8")
    return by_impact


def describe(violations: list[dict]) -> str:
    """One line per violation and node: rule id, target and axe's summary, for a failure."""
    lines = []
    for violation in violations:
        for node in violation["nodes"][:5]:
            lines.append(f"{violation['id']} {node['target']}: {node['failureSummary'][:200]}")
    return "\n".join(lines)


def assert_no_serious_violations(page, name: str) -> Counter:
    """Fail on serious or critical violations; return the count of the lesser ones."""
    found = axe_check(page, name)
    blocking = [v for impact in BLOCKING for v in found.get(impact, [])]
    assert not blocking, f"axe on {name}:\n{describe(blocking)}"
    return Counter({impact: len(v) for impact, v in found.items()})
