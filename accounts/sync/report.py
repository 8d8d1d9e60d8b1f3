"""The outcome of a sync run: counts, skipped records with reasons, and examples of the plan.

The same object is printed as a table for people and as JSON (``--json``) for scripts. It
names users by username and subject only, never by email or any other attribute.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

EXAMPLES_PER_ACTION = 20
SKIPPED_KEPT = 50
COUNTS = ("created", "updated", "unchanged", "deactivated", "reactivated", "linked")


@dataclass
class SyncReport:
    """What a run did, or, for a dry run, would do."""

    source: str
    issuer: str
    dry_run: bool = False
    records: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    reactivated: int = 0
    linked: int = 0
    sessions_ended: int = 0
    skipped_reasons: Counter[str] = field(default_factory=Counter)
    skipped_records: list[dict[str, str]] = field(default_factory=list)
    plan: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0

    @property
    def skipped(self) -> int:
        return sum(self.skipped_reasons.values())

    def skip(self, ref: str, reason: str) -> None:
        """Count a record the run could not use; keep the first ones for the summary."""
        self.skipped_reasons[reason] += 1
        if len(self.skipped_records) < SKIPPED_KEPT:
            self.skipped_records.append({"record": ref, "reason": reason})

    def note(self, action: str, text: str) -> None:
        """Keep an example of an action (``create alice``) for the printed plan."""
        examples = self.plan.setdefault(action, [])
        if len(examples) < EXAMPLES_PER_ACTION:
            examples.append(text)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "source": self.source,
            "issuer": self.issuer,
            "dry_run": self.dry_run,
            "records": self.records,
        }
        data.update({name: getattr(self, name) for name in COUNTS})
        data.update(
            {
                "sessions_ended": self.sessions_ended,
                "skipped": self.skipped,
                "skipped_reasons": dict(self.skipped_reasons),
                "skipped_records": list(self.skipped_records),
                "plan": {action: list(items) for action, items in self.plan.items()},
                "error": self.error,
                "seconds": round(self.seconds, 3),
            }
        )
        return data

    def render(self, *, with_plan: bool = False) -> str:
        """The summary table; with the examples of each action when ``with_plan``."""
        title = "Sync plan (dry run, nothing written)" if self.dry_run else "Sync summary"
        lines = [f"{title}: source={self.source} issuer={self.issuer}"]
        lines += [f"  {name:<12} {getattr(self, name):>8}" for name in COUNTS]
        lines.append(f"  {'skipped':<12} {self.skipped:>8}")
        for reason, count in sorted(self.skipped_reasons.items()):
            lines.append(f"    {count:>6}  {reason}")
        lines.append(f"  {'sessions':<12} {self.sessions_ended:>8}  ended")
        lines.append(f"  {self.records} records in {self.seconds:.1f}s")
        if self.skipped_records:
            lines.append("Skipped records (first ones):")
            lines += [f"  {item['record']}: {item['reason']}" for item in self.skipped_records]
        if with_plan:
            for action, examples in self.plan.items():
                lines.append(f"{action} (first {len(examples)}):")
                lines += [f"  {text}" for text in examples]
        if self.error:
            lines.append(f"Stopped: {self.error}")
        return "\n".join(lines)
