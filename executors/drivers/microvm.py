"""MicroVM (Firecracker) driver placeholder: the interface is ready, the machine is not.

No Firecracker binary is reachable from this project's registries, and QEMU guests hang under
KVM on these hosts (they are VMs themselves). The driver reports why and refuses jobs, so a node
lists it as unavailable and the control plane never schedules to it.
"""

from __future__ import annotations

import os
import shutil

from executors.drivers.base import SandboxDriver
from executors.errors import DriverUnavailable
from executors.spec import Job, Result


class MicroVMDriver(SandboxDriver):
    name = "microvm"
    runtimes = frozenset({"python", "shell", "image"})

    def __init__(self, firecracker: str = "firecracker") -> None:
        self._binary = shutil.which(firecracker)

    def available(self) -> bool:
        return False

    def unavailable_reason(self) -> str:
        if self._binary is None:
            return "no firecracker binary on this machine"
        if not os.access("/dev/kvm", os.R_OK | os.W_OK):
            return "/dev/kvm is not usable"
        return "the microVM driver is not implemented yet (interface placeholder)"

    async def start(self) -> None:
        raise DriverUnavailable(self.unavailable_reason())

    async def run(self, job: Job) -> Result:
        raise DriverUnavailable(self.unavailable_reason())
