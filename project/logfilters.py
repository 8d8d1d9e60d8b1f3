"""Logging filters of the project: request lines without the query strings of the OIDC URLs.

Django's development server (``make run``) logs every request line, and the query string of
``/oidc/callback/`` holds the authorization code and state, that of front-channel logout the
provider's ``sid``. This filter cuts the query string off request lines under ``/oidc/``
before anything prints them.
"""

from __future__ import annotations

import logging
import re

_OIDC_QUERY = re.compile(r"(\S+ /oidc/[^?\s]*)\?\S*")


class QuietOIDCQueries(logging.Filter):
    """Replace the query string of ``/oidc/...`` request lines with ``?...``; keep the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and isinstance(record.args, tuple):
            record.args = tuple(
                _OIDC_QUERY.sub(r"\1?...", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        elif isinstance(record.msg, str):
            record.msg = _OIDC_QUERY.sub(r"\1?...", record.msg)
        return True
