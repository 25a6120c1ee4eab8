"""Configuration: a frozen, validated model loaded from YAML, ``${ENV}`` and ``LLMOPS_*`` variables."""

from gateway.kernel.config.loader import ConfigError, load_settings, settings_from_mapping
from gateway.kernel.config.model import (
    BackendSettings,
    DeploymentSettings,
    ModelSettings,
    ServerSettings,
    Settings,
    TimeoutSettings,
)

__all__ = [
    "BackendSettings",
    "ConfigError",
    "DeploymentSettings",
    "ModelSettings",
    "ServerSettings",
    "Settings",
    "TimeoutSettings",
    "load_settings",
    "settings_from_mapping",
]
