"""The embedded engine: Rego evaluated in process by regorus, reloaded when its files change."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson
import regorus

from gateway.kernel.policy import PolicyLoadError

Stamp = tuple[tuple[str, int, int], ...]


def policy_files(paths: Iterable[str]) -> list[Path]:
    """``*.rego`` and ``*.json`` (data) files under ``paths`` (directories are searched recursively)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(p for p in sorted(path.rglob("*")) if p.suffix in (".rego", ".json") and p.is_file())
        elif path.is_file():
            found.append(path)
    return found


def stamp(files: Iterable[Path]) -> Stamp:
    out = []
    for f in files:
        st = f.stat()
        out.append((str(f), st.st_mtime_ns, st.st_size))
    return tuple(out)


def compile_engine(files: Iterable[Path], modules: Mapping[str, str] | None = None,
                   data: Mapping[str, Any] | None = None) -> regorus.Engine:
    """The files, then inline ``modules`` (name → Rego) and ``data``; ``PolicyLoadError`` names the culprit."""
    engine = regorus.Engine()
    for name, source in (modules or {}).items():
        try:
            engine.add_policy(name, source)
        except (RuntimeError, ValueError) as exc:
            raise PolicyLoadError(f"policy.modules.{name}: {compile_error(exc)}") from exc
    if data:
        engine.add_data_json(orjson.dumps(dict(data)).decode())
    for f in files:
        try:
            if f.suffix == ".rego":
                engine.add_policy(str(f), f.read_text(encoding="utf-8"))
            else:
                engine.add_data_json(f.read_text(encoding="utf-8"))
        except (RuntimeError, OSError, ValueError) as exc:
            raise PolicyLoadError(f"{f}: {compile_error(exc)}") from exc
    return engine


def compile_error(exc: BaseException) -> str:
    """regorus' message in one line: where (``--> file:line:col``) and what (``error: ...``), no backtrace."""
    text = str(exc).split("Stack backtrace")[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    where = [line[3:].strip() for line in lines if line.startswith("-->")]
    what = [line for line in lines if line.startswith("error:")]
    return " ".join([*where[:1], *what[:1]]) or (lines[0] if lines else type(exc).__name__)


def rule_path(decision: str) -> str:
    """``llmops/authz/decision`` → ``data.llmops.authz.decision``."""
    return "data." + decision.strip("/").replace("/", ".")


class RegoEvaluator:
    def __init__(self, paths: Iterable[str], decision: str, modules: Mapping[str, str] | None = None,
                 data: Mapping[str, Any] | None = None) -> None:
        self._paths = tuple(paths)
        self._modules = dict(modules or {})
        self._data = dict(data or {})
        self.rule = rule_path(decision)
        files = policy_files(self._paths)
        if not self._modules and not any(f.suffix == ".rego" for f in files):
            raise PolicyLoadError(f"no .rego files under {', '.join(self._paths) or '(no paths)'}")
        self._stamp = stamp(files)
        self.engine = compile_engine(files, self._modules, self._data)

    async def evaluate(self, document: Mapping[str, Any]) -> Any:
        """The decision rule's value, or ``None`` when undefined. Synchronous inside: ~20 µs."""
        return self.evaluate_now(document)

    def evaluate_now(self, document: Mapping[str, Any]) -> Any:
        self.engine.set_input_json(orjson.dumps(document).decode())
        try:
            return self.engine.eval_rule(self.rule)
        except RuntimeError:  # regorus: "not a valid rule path" = no such rule = undefined
            return None

    def reload_if_changed(self) -> bool:
        """Recompile when a file changed; raises ``PolicyLoadError`` (old policy kept) on bad files."""
        files = policy_files(self._paths)
        current = stamp(files)
        if current == self._stamp:
            return False
        self._stamp = current
        self.engine = compile_engine(files, self._modules, self._data)
        return True

    async def aclose(self) -> None:
        return None
