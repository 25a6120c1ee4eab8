"""Sandbox drivers behind ``SandboxDriver``; loaded lazily by name (optional deps stay optional)."""

from __future__ import annotations

import importlib
from typing import Any

from executors.drivers.base import SandboxDriver
from executors.errors import DriverUnavailable

DRIVERS: dict[str, str] = {
    "bwrap": "executors.drivers.bwrap:BwrapDriver",
    "docker": "executors.drivers.docker:DockerDriver",
    "wasm": "executors.drivers.wasm:WasmDriver",
    "microvm": "executors.drivers.microvm:MicroVMDriver",
}


def load_driver(name: str, **options: Any) -> SandboxDriver:
    """Instantiate the driver called ``name``; ``DriverUnavailable`` for an unknown name."""
    try:
        module_name, _, class_name = DRIVERS[name].partition(":")
    except KeyError as exc:
        raise DriverUnavailable(f"unknown driver {name!r}") from exc
    driver: SandboxDriver = getattr(importlib.import_module(module_name), class_name)(**options)
    return driver


__all__ = ["DRIVERS", "SandboxDriver", "load_driver"]
