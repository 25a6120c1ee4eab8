"""Settings for issue 3: rate limits and budgets."""

from __future__ import annotations

from gateway.config.base import Section


class LimitsSettings(Section):
    pass
