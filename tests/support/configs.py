"""Gateway configurations used across tests."""

from __future__ import annotations


def sim_config(sim_url: str, *models: str, **extra: object) -> dict[str, object]:
    """A gateway config with one simulator backend serving ``models``."""
    names = models or ("sim-chat", "sim-embed", "sim-image", "sim-tts", "sim-stt")
    return {
        "backends": [{"name": "sim", "type": "openai", "base_url": f"{sim_url}/v1"}],
        "models": [{"name": m, "deployments": [{"backend": "sim"}]} for m in names],
        **extra,
    }
