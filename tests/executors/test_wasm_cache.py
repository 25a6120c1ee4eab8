"""The compiled wasm module cache is node-local state: private, written safely, verified before loading.

Each attack from the issue: a module planted under the right name, a symlink at the temp name, a
cache directory another user can write or owns, and the old predictable place in the shared temp dir.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from executors.drivers.base import SANDBOX_UID
from executors.drivers.wasm import WasmDriver, _wasmtime_version
from executors.drivers.wasm_cache import DEFAULT_CACHE_DIR, ModuleCache, entry_name
from executors.localfs import UnsafeDirectory, private_dir
from executors.spec import Job

wasmtime = pytest.importorskip("wasmtime")
ANSWER = '(module (func (export "answer") (result i32) (i32.const 42)))'
VERSION = "test"


@pytest.fixture
def module_file(tmp_path: Path) -> Path:
    path = tmp_path / "answer.wasm"
    path.write_bytes(bytes(wasmtime.wat2wasm(ANSWER)))
    return path


@pytest.fixture
def engine() -> Any:
    return wasmtime.Engine()


def answer(engine: Any, module: Any) -> int:
    store = wasmtime.Store(engine)
    result: int = wasmtime.Instance(store, module, []).exports(store)["answer"](store)
    return result


def entry(cache: Path, module_file: Path) -> Path:
    return cache / entry_name(module_file.read_bytes(), module_file.stem, VERSION)


def test_default_cache_is_not_in_the_shared_temp_dir() -> None:
    assert not DEFAULT_CACHE_DIR.is_relative_to(tempfile.gettempdir())
    assert not DEFAULT_CACHE_DIR.is_relative_to("/tmp") and not DEFAULT_CACHE_DIR.is_relative_to("/var/tmp")


def test_first_load_writes_the_artifact_and_its_hash_in_a_0700_dir(
    tmp_path: Path, module_file: Path, engine: Any
) -> None:
    cache = tmp_path / "cache"
    assert answer(engine, ModuleCache(cache).load(engine, module_file, VERSION)) == 42
    assert (cache.stat().st_mode & 0o777) == 0o700 and cache.stat().st_uid == os.geteuid()
    artifact = entry(cache, module_file)
    recorded = Path(f"{artifact}.sha256").read_text().strip()
    assert recorded == hashlib.sha256(artifact.read_bytes()).hexdigest()
    assert (artifact.stat().st_mode & 0o777) == 0o600
    assert sorted(p.name for p in cache.iterdir()) == sorted([artifact.name, artifact.name + ".sha256"])
    assert answer(engine, ModuleCache(cache).load(engine, module_file, VERSION)) == 42  # the verified hit


@pytest.mark.parametrize("record_hash", [False, True])
def test_a_planted_module_under_the_right_name_is_not_loaded(
    tmp_path: Path, module_file: Path, engine: Any, record_hash: bool
) -> None:
    cache = private_dir(tmp_path / "cache")
    planted = entry(cache, module_file)
    bogus = b"\x7fELF not a wasmtime artifact" * 64
    planted.write_bytes(bogus)
    if record_hash:  # even with a matching hash, a file another user owns is not the node's
        Path(f"{planted}.sha256").write_text(hashlib.sha256(bogus).hexdigest())
        os.chown(planted, SANDBOX_UID, SANDBOX_UID)
    assert answer(engine, ModuleCache(cache).load(engine, module_file, VERSION)) == 42
    assert planted.read_bytes() != bogus and planted.stat().st_uid == os.geteuid()
    assert Path(f"{planted}.sha256").read_text().strip() == hashlib.sha256(planted.read_bytes()).hexdigest()


def test_a_tampered_artifact_is_recompiled(tmp_path: Path, module_file: Path, engine: Any) -> None:
    cache = tmp_path / "cache"
    ModuleCache(cache).load(engine, module_file, VERSION)
    artifact = entry(cache, module_file)
    good = artifact.read_bytes()
    artifact.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # one bit flipped, the old hash kept
    assert answer(engine, ModuleCache(cache).load(engine, module_file, VERSION)) == 42
    assert hashlib.sha256(artifact.read_bytes()).hexdigest() == Path(f"{artifact}.sha256").read_text().strip()


def test_a_symlink_at_the_temp_name_is_not_followed(tmp_path: Path, module_file: Path, engine: Any) -> None:
    cache = private_dir(tmp_path / "cache")
    victim = tmp_path / "root-owned-file"
    victim.write_text("precious")
    (cache / (entry(cache, module_file).name + ".tmp")).symlink_to(victim)
    (cache / (entry(cache, module_file).name + ".sha256.tmp")).symlink_to(victim)
    assert answer(engine, ModuleCache(cache).load(engine, module_file, VERSION)) == 42
    assert victim.read_text() == "precious"
    assert not any(p.is_symlink() for p in cache.iterdir())
    assert entry(cache, module_file).is_file() and not entry(cache, module_file).is_symlink()


def unsafe_dirs(tmp_path: Path) -> dict[str, Path]:
    writable = tmp_path / "world-writable"
    writable.mkdir()
    writable.chmod(0o777)
    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o700)
    os.chown(foreign, SANDBOX_UID, SANDBOX_UID)
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    return {"writable": writable, "foreign": foreign, "symlink": link}


@pytest.mark.parametrize("kind", ["writable", "foreign", "symlink"])
def test_a_cache_dir_that_is_not_the_nodes_alone_is_refused(
    tmp_path: Path, module_file: Path, engine: Any, kind: str
) -> None:
    directory = unsafe_dirs(tmp_path)[kind]
    with pytest.raises(UnsafeDirectory):
        private_dir(directory)
    assert answer(engine, ModuleCache(directory).load(engine, module_file, VERSION)) == 42  # compiled in memory
    assert list(directory.iterdir()) == []  # and nothing written there
    if kind == "writable":
        assert (directory.stat().st_mode & 0o777) == 0o777  # refused, not silently "repaired"


async def test_the_driver_loads_wasm_modules_through_the_verified_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("executors.drivers.wasm.python_wasm_path", lambda: None)  # no 26 MB CPython compile
    echo = tmp_path / "echo.wasm"
    source = Path(__file__).parents[2] / "executors/drivers/wasm_modules/echo.wat"
    echo.write_bytes(bytes(wasmtime.wat2wasm(source.read_text())))
    cache = private_dir(tmp_path / "cache")
    planted = cache / entry_name(echo.read_bytes(), "echo", _wasmtime_version())
    planted.write_bytes(b"planted")
    driver = WasmDriver(cache_dir=cache, modules={"tool": echo})
    if driver.unavailable_reason():
        pytest.skip(driver.unavailable_reason())
    async with driver:
        result = await driver.run(Job(id="c1", tool="tool", runtime="wasm", module="tool", stdin="hi"))
    assert result.exit_code == 0 and result.stdout == "hi"
    assert planted.read_bytes() != b"planted"
    assert Path(f"{planted}.sha256").read_text().strip() == hashlib.sha256(planted.read_bytes()).hexdigest()
