"""Settings for issue 14: desired state reconciled live (file watch, SIGHUP, ``llmops apply``)."""

from __future__ import annotations

from pydantic import Field

from gateway.kernel.config.base import Section


class ExpectedNodes(Section):
    """Nodes the deployment expects to see: ready while at least ``count`` live nodes carry ``labels``."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels every counted node must carry.")
    count: int = Field(1, ge=1, description="Live nodes wanted with those labels.")


class ReconcileSettings(Section):
    watch_interval_s: float = Field(
        1.0, ge=0, description="Poll the config file (or directory) and its policy files for changes and apply "
        "them live; 0 = never (SIGHUP and `llmops apply` still do).",
    )
    drain_timeout_s: float = Field(
        600.0, gt=0, description="Longest a replaced configuration waits for its in-flight requests before closing.",
    )
    expected_nodes: tuple[ExpectedNodes, ...] = Field(
        (), description="Node labels the deployment expects; each entry is reported ready or failed in /admin/state.",
    )
