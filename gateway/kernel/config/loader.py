"""Load settings: YAML file → ``${ENV}`` interpolation → ``LLMOPS_*`` overrides → validation."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gateway.kernel.config.model import Settings

ENV_PREFIX = "LLMOPS_"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """A configuration problem, phrased as ``key.path: what is wrong``."""


def load_settings(path: str | Path | None, environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    raw: Any = {}
    if path is not None:
        raw = read_desired(Path(path))
    return settings_from_mapping(raw, env)


def config_files(path: Path) -> list[Path]:
    """The YAML files of a configuration: ``path`` itself, or a directory's ``*.yaml``/``*.yml`` by name."""
    if not path.is_dir():
        return [path]
    return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def read_desired(path: Path) -> Any:
    """The raw document of a file, or of a directory's YAML files merged in name order: mappings merge
    key by key, lists concatenate (each file adds its backends, models, keys...), other values are replaced."""
    if not path.is_dir():
        return _read_yaml(path)
    merged: Any = {}
    for file in config_files(path):
        part = _read_yaml(file)
        if part is None:
            continue
        if not isinstance(part, dict):
            raise ConfigError(f"{file}: the configuration must be a mapping")
        merged = merge(merged, part)
    return merged


def merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = merge(base[key], value) if key in base else value
        return out
    if isinstance(base, list) and isinstance(over, list):
        return [*base, *over]
    return over


def settings_from_mapping(raw: Any, environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("<root>: the configuration must be a mapping")
    data = _interpolate(raw, env, "")
    data = _apply_env_overrides(data, env)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} invalid YAML ({getattr(exc, 'problem', exc)})") from None


def _interpolate(node: Any, env: Mapping[str, str], key: str) -> Any:
    if isinstance(node, dict):
        return {k: _interpolate(v, env, _join(key, str(k))) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, env, _join(key, str(i))) for i, v in enumerate(node)]
    if isinstance(node, str):
        return _ENV_REF.sub(lambda m: _lookup(m, env, key), node)
    return node


def _lookup(match: re.Match[str], env: Mapping[str, str], key: str) -> str:
    name, default = match.group(1), match.group(2)
    if name in env:
        return env[name]
    if default is not None:
        return default
    raise ConfigError(f"{key or '<root>'}: environment variable {name} is not set (use ${{{name}:-default}})")


def _apply_env_overrides(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """``LLMOPS_SERVER__PORT=9000`` sets ``server.port``; values are parsed as YAML scalars/JSON."""
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX):
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p]
        if not path or path[0] not in Settings.model_fields:
            continue  # LLMOPS_CONFIG, LLMOPS_CONFIG_DIR, ...: process settings, not keys
        try:
            value = yaml.safe_load(env[name])
        except yaml.YAMLError:
            raise ConfigError(f"{'.'.join(path)}: cannot parse {name}") from None
        _set_path(data, path, value, name)
    return data


def _set_path(data: dict[str, Any], path: list[str], value: Any, source: str) -> None:
    node: Any = data
    for i, part in enumerate(path[:-1]):
        child = _child(node, part)
        if child is None:
            child = {}
            _assign(node, part, child, source)
        if not isinstance(child, (dict, list)):
            raise ConfigError(f"{'.'.join(path[: i + 1])}: {source} reaches into a scalar")
        node = child
    _assign(node, path[-1], value, source)


def _child(node: Any, part: str) -> Any:
    if isinstance(node, list):
        return node[int(part)] if part.isdigit() and int(part) < len(node) else None
    return node.get(part)


def _assign(node: Any, part: str, value: Any, source: str) -> None:
    if isinstance(node, list):
        if not part.isdigit() or int(part) > len(node):
            raise ConfigError(f"{source}: list index {part!r} out of range")
        if int(part) == len(node):
            node.append(value)
        else:
            node[int(part)] = value
    else:
        node[part] = value


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = _join_loc(err.get("loc", ()))
        msg = str(err.get("msg", "invalid"))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
            lines.append(msg if ":" in msg.split(" ")[0] else f"{key or '<root>'}: {msg}")
            continue
        lines.append(f"{key or '<root>'}: {msg}")
    return "\n".join(lines)


def _join_loc(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in loc)


def _join(prefix: str, part: str) -> str:
    return f"{prefix}.{part}" if prefix else part
