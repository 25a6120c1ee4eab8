"""Settings for issue 4: embeddings, vector stores, augmentation."""

from __future__ import annotations

from gateway.config.base import Section


class RagSettings(Section):
    pass
