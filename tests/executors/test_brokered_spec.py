"""``BrokeredSecret`` on the wire: validated, round-tripped, never in a repr."""

from __future__ import annotations

import pytest

from executors.errors import JobRejected
from executors.spec import BrokeredSecret, Grants, Job, host_granted, job_from_dict, job_to_dict


def test_a_brokered_secret_round_trips_through_the_node_channel_and_hides_its_value() -> None:
    secret = BrokeredSecret("tok-123456", ("api.example.com", "10.0.0.0/8"), header="Authorization",
                            format="Bearer {value}")
    job = Job(id="j", tool="http_request", runtime="http", grants=Grants(("api.example.com",), brokered={"T": secret}))
    assert job_from_dict(job_to_dict(job)) == job
    assert "tok-123456" not in repr(job) and "tok-123456" not in repr(secret)


@pytest.mark.parametrize(
    "fields",
    [
        {"header": "Authorization", "query": "k"},  # both places
        {},  # neither
        {"header": "Bad Header"},
        {"header": "X-Key", "format": "no placeholder"},
        {"header": "X-Key", "format": "{value}\r\nX-Evil: 1"},
    ],
)
def test_a_malformed_brokered_secret_is_rejected(fields: dict[str, str]) -> None:
    with pytest.raises(JobRejected):
        BrokeredSecret("tok-123456", ("api.example.com",), **fields)
    with pytest.raises(JobRejected):
        job_from_dict({"id": "j", "tool": "t", "runtime": "http",
                       "grants": {"brokered": {"T": {"value": "v", "hosts": ["h"], **fields}}}})


def test_hosts_match_by_name_wildcard_or_cidr_for_ip_literals_only() -> None:
    grants = ["api.example.com", "*.example.org", "127.0.0.1/32"]
    assert host_granted("API.example.com.", grants) and host_granted("a.b.example.org", grants)
    assert host_granted("127.0.0.1", grants) and not host_granted("127.0.0.2", grants)
    assert not host_granted("example.org", grants) and not host_granted("evil-example.com", grants)
