"""Settings for issue 3: virtual keys, static keys, JWT."""

from __future__ import annotations

from gateway.config.base import Section


class AuthSettings(Section):
    pass
