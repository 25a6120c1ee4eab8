"""Settings for issue 4: exact and semantic cache."""

from __future__ import annotations

from gateway.config.base import Section


class CacheSettings(Section):
    pass
