from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A frozen settings section that rejects unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")
