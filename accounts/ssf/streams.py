"""The state of each provider's stream as this site knows it: what the admin shows.

One ``SignalStream`` row per provider: written by ``ssf_stream`` (stream id, status, the
push ``Authorization`` it registered, encrypted) and by every event received (last event,
verification). Also where the receiver finds the ``Authorization`` values it accepts.
"""

from __future__ import annotations

from typing import Any

from django.db.models import F
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from accounts.models import SignalStream
from accounts.providers.provider import Provider
from accounts.providers.registry import enabled_providers


def stream_of(provider: Provider) -> SignalStream | None:
    return SignalStream.objects.filter(provider=provider.slug).first()


def providers_for_authorization(header: str) -> list[Provider]:
    """The enabled providers whose push ``Authorization`` is exactly ``header``.

    A provider's value is its ``ssf_push_authorization`` setting, or the one ``ssf_stream
    create`` registered (read from the database only when no setting matched). Every
    candidate is compared in constant time.
    """
    providers = enabled_providers()
    found = [p for p in providers if _matches(p.ssf_push_authorization, header)]
    if found:
        return found
    stored = {
        row.provider: row.authorization
        for row in SignalStream.objects.exclude(authorization_encrypted="")
    }
    return [p for p in providers if _matches(stored.get(p.slug, ""), header)]


def _matches(expected: str, header: str) -> bool:
    return bool(expected) and constant_time_compare(expected, header)


def record_event(provider: Provider, event_type: str) -> None:
    """Count an event of the provider's stream and remember it as the last one."""
    changed = SignalStream.objects.filter(provider=provider.slug).update(
        last_event_type=event_type[:255],
        last_event_at=timezone.now(),
        events_received=F("events_received") + 1,
    )
    if not changed:
        SignalStream.objects.get_or_create(
            provider=provider.slug,
            defaults={
                "last_event_type": event_type[:255],
                "last_event_at": timezone.now(),
                "events_received": 1,
            },
        )


def record_verification(provider: Provider, state: Any) -> None:
    SignalStream.objects.update_or_create(
        provider=provider.slug,
        defaults={
            "last_verification_at": timezone.now(),
            "last_verification_state": state[:255] if isinstance(state, str) else "",
        },
    )


def record_status(provider: Provider, status: Any) -> None:
    if isinstance(status, str) and status:
        SignalStream.objects.filter(provider=provider.slug).update(status=status[:32])


def save_stream(provider: Provider, **fields: Any) -> SignalStream:
    """Create or update the provider's row with what the transmitter answered."""
    authorization = fields.pop("authorization", None)
    row, _ = SignalStream.objects.get_or_create(provider=provider.slug)
    for name, value in fields.items():
        setattr(row, name, value)
    if authorization is not None:
        row.set_authorization(authorization)
    row.save()
    return row
