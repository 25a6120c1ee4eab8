"""Settings for issue 3: the policy engine."""

from __future__ import annotations

from gateway.config.base import Section


class PolicySettings(Section):
    pass
