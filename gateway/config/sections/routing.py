"""Settings for issue 5: routing, balancing, resilience."""

from __future__ import annotations

from gateway.config.base import Section


class RoutingSettings(Section):
    pass
