"""The Shared Signals receiver (SSF 1.0 with CAEP and RISC): the provider's security events.

``sets`` verifies a Security Event Token, ``subjects`` finds whom it names, ``events`` acts
on it, ``receiver`` is push and poll delivery (RFC 8935, RFC 8936), ``transmitter`` the
provider's SSF configuration and stream API, ``streams`` the stream state the admin shows.
Import from the modules, not from the package; may import sessions, users and below.
"""
