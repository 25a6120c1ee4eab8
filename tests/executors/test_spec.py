from __future__ import annotations

import resource

import pytest

from executors.drivers.bwrap import rlimits
from executors.drivers.docker import Profile, host_config
from executors.errors import JobRejected, LimitExceeded, Timeout
from executors.spec import Grants, Job, Limits, Result, job_from_dict, job_to_dict, result_from_dict


def test_job_roundtrips_through_json_dicts() -> None:
    job = Job(
        id="j1",
        tool="python",
        runtime="python",
        code="print(1)",
        env={"A": "1"},
        limits=Limits(cpu_seconds=2),
        grants=Grants(egress=("a.test",), secrets={"K": "v"}),
    )
    assert job_from_dict(job_to_dict(job)) == job


def test_secrets_stay_out_of_repr() -> None:
    assert "topsecret" not in repr(Grants(secrets={"K": "topsecret"}))


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"id": "j", "tool": "t", "runtime": "cobol"},
        {"id": "../x", "tool": "t", "runtime": "python"},
        {"id": "j", "tool": "t", "runtime": "python", "env": {"A": 1}},
        {"id": "j", "tool": "t", "runtime": "python", "limits": {"memory_mb": -1}},
        {"id": "j", "tool": "t", "runtime": "python", "limits": {"memory_mb": "big"}},
    ],
)
def test_malformed_jobs_are_rejected(data: object) -> None:
    with pytest.raises(JobRejected):
        job_from_dict(data)


def test_result_raise_for_limit() -> None:
    ok = Result(0, "", "", "x", 1.0)
    assert ok.raise_for_limit() is ok
    with pytest.raises(Timeout):
        Result(-9, "", "", "x", 1.0, timed_out=True, limit="wall").raise_for_limit()
    with pytest.raises(LimitExceeded) as caught:
        Result(-9, "", "", "x", 1.0, limit="memory").raise_for_limit()
    assert caught.value.reason == "memory"
    assert (
        result_from_dict({"exit_code": 0, "stdout": "", "stderr": "", "driver": "x", "duration_ms": 1}) == ok
    )


def test_limits_map_to_docker_host_config() -> None:
    options = host_config(Profile.of(Limits(memory_mb=128, pids=16, scratch_mb=8)), cpus=0.5)
    assert options["mem_limit"] == "128m" and options["memswap_limit"] == "128m"
    assert options["pids_limit"] == 16 and options["nano_cpus"] == 500_000_000
    assert options["network_mode"] == "none" and options["cap_drop"] == ["ALL"] and options["read_only"]
    assert options["security_opt"] == ["no-new-privileges"]
    assert "size=8m" in options["tmpfs"]["/scratch"]


def test_limits_map_to_rlimits() -> None:
    mapped = dict(rlimits(Limits(cpu_seconds=2.4, scratch_mb=1)))
    assert mapped[resource.RLIMIT_CPU] == (2, 3)
    assert mapped[resource.RLIMIT_FSIZE] == (1024 * 1024, 1024 * 1024)
    assert mapped[resource.RLIMIT_CORE] == (0, 0)
