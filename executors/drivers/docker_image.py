"""Build the sandbox image with no registry: the host's python3.11 + busybox, ``docker import``ed.

The rootfs holds the files of Debian's python3.11 packages, their shared-library closure (``ldd``),
a static busybox for the shell, a passwd with ``nobody`` and the runner at ``RUNNER_PATH``. It is
streamed as a tar into ``docker import`` (under a second, ~40 MB). The tag carries a hash of the
runner so a changed runner makes a new image.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from executors.errors import DriverUnavailable

PACKAGES = (
    "python3.11-minimal",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "python3-minimal",
    "python3",
)
RUNNER_SOURCE = Path(__file__).with_name("docker_runner.py")
RUNNER_PATH = "/opt/llmops/runner.py"
IMAGE_REPOSITORY = "llmops-sandbox"
SKIP_PREFIXES = ("/usr/share/doc", "/usr/share/man", "/usr/share/lintian", "/usr/share/binfmts")
ETC_FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/scratch:/bin/sh\n",
    "etc/group": "root:x:0:\nnogroup:x:65534:\n",
    "etc/hostname": "sandbox\n",
}
CHANGES = [
    "USER 65534:65534",
    "WORKDIR /scratch",
    "ENV PATH=/usr/local/bin:/usr/bin:/bin",
    f'CMD ["/usr/bin/python3", "-I", "{RUNNER_PATH}"]',
]
_LDD_PATH = re.compile(r"(/\S+)")


def image_tag() -> str:
    digest = hashlib.sha256(RUNNER_SOURCE.read_bytes()).hexdigest()[:12]
    return f"{IMAGE_REPOSITORY}:py311-{digest}"


def _run(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise DriverUnavailable(f"cannot build the sandbox image: {argv[0]} failed: {exc}") from exc


def package_files(packages: Iterable[str] = PACKAGES) -> list[Path]:
    """Regular files and symlinks the given Debian packages installed (docs skipped)."""
    paths = []
    for line in _run(["dpkg", "-L", *packages]).splitlines():
        path = Path(line)
        if line.startswith(SKIP_PREFIXES) or not (path.is_symlink() or path.is_file()):
            continue
        paths.append(path)
    return paths


def library_closure(binaries: Iterable[Path]) -> set[Path]:
    """Every shared library (and the loader) the ELF files need, per ``ldd``."""
    found: set[Path] = set()
    elves = [str(p) for p in binaries if p.suffix == ".so" or p.name.startswith("python3.11")]
    for start in range(0, len(elves), 64):
        output = subprocess.run(
            ["ldd", *elves[start : start + 64]], capture_output=True, text=True, check=False
        ).stdout
        for match in _LDD_PATH.finditer(output):
            candidate = Path(match.group(1))
            if candidate.exists() and candidate.is_file() and ".so" in candidate.name:
                found.update((candidate, candidate.resolve()))
    return found


def _add_text(tar: tarfile.TarFile, name: str, text: str | bytes, mode: int = 0o644) -> None:
    data = text.encode() if isinstance(text, str) else text
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, mode
    tar.addfile(info)


def _add_link(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    tar.addfile(info)


def _arcname(path: Path) -> str:
    """A host path's name in the image (Debian 12 is merged-/usr: /lib is /usr/lib)."""
    real = str(path)
    for merged in ("/lib/", "/lib64/", "/bin/", "/sbin/"):
        if real.startswith(merged):
            real = "/usr" + real
    return real.lstrip("/")


def rootfs_tar(busybox: str | None = None) -> bytes:
    """The whole image as an uncompressed tar."""
    busybox = busybox or shutil.which("busybox")
    if busybox is None:
        raise DriverUnavailable("busybox not found (apt-get install busybox-static)")
    files = package_files()
    libraries = library_closure([*files, *Path("/usr/lib/python3.11/lib-dynload").glob("*.so")])
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory, mode in (
            ("usr", 0o755),
            ("usr/bin", 0o755),
            ("etc", 0o755),
            ("tmp", 0o1777),
            ("scratch", 0o1777),
            ("opt", 0o755),
            ("opt/llmops", 0o755),
            ("proc", 0o555),
            ("sys", 0o555),
            ("dev", 0o755),
        ):
            _add_dir(tar, directory, mode)
        for link, target in (
            ("bin", "usr/bin"),
            ("sbin", "usr/bin"),
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
        ):
            _add_link(tar, link, target)
        names = {_arcname(path): path for path in sorted({*files, *libraries})}
        for name, path in sorted(names.items()):
            tar.add(str(path), arcname=name, recursive=False)
        _add_text(tar, "usr/bin/busybox", Path(busybox).read_bytes(), 0o755)
        for applet in (
            "sh",
            "ls",
            "cat",
            "echo",
            "env",
            "id",
            "sleep",
            "head",
            "wc",
            "sha256sum",
            "true",
            "false",
        ):
            _add_link(tar, f"usr/bin/{applet}", "busybox")
        for name, text in ETC_FILES.items():
            _add_text(tar, name, text)
        _add_text(tar, RUNNER_PATH.lstrip("/"), RUNNER_SOURCE.read_bytes())
    return buffer.getvalue()


def build_image(client: Any, tag: str | None = None) -> str:
    """Build the sandbox image through ``client`` (a ``docker.DockerClient``); returns the tag."""
    tag = tag or image_tag()
    repository, _, version = tag.partition(":")
    client.api.import_image_from_data(
        rootfs_tar(), repository=repository, tag=version or "latest", changes=CHANGES
    )
    return tag
