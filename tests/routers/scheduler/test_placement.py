"""Hard constraints, then data locality, then load."""

from __future__ import annotations

from routers.scheduler import Placement
from routers.scheduler.placement import eligible, rank
from tests.routers.scheduler.fakes import node


def test_hard_constraints_filter_runtime_driver_labels_regions_pin_and_exclusions() -> None:
    eu = node("eu-1", drivers=("bwrap", "docker"), zone="a")
    us = node("us-1", region="us", runtimes=("python",))
    assert eligible(eu, Placement("shell")) and not eligible(us, Placement("shell"))
    assert eligible(eu, Placement("python", driver="docker")) and not eligible(us, Placement("python", driver="docker"))
    assert not eligible(eu, Placement("python", labels={"zone": "b"}))
    assert [n.id for n in rank([eu, us], Placement("python", regions=("us",)), {})] == ["us-1"]
    assert rank([eu, us], Placement("python", regions=()), {}) == []
    assert [n.id for n in rank([eu, us], Placement("python", pin="eu-1"), {})] == ["eu-1"]
    assert [n.id for n in rank([eu, us], Placement("python", exclude=frozenset({"eu-1"})), {})] == ["us-1"]


def test_data_locality_beats_load_and_region_preference() -> None:
    busy_with_data = node("a", slots=4, free=1, datasets=("docs",))
    idle = node("b", slots=4, region="us")
    near = node("c", slots=4, free=2, region="us")
    p = Placement("python", dataset="docs", prefer_region="us")
    assert [n.id for n in rank([idle, near, busy_with_data], p, {})] == ["a", "b", "c"]


def test_least_loaded_first_counting_local_inflight() -> None:
    a, b = node("a", slots=2), node("b", slots=2)
    assert [n.id for n in rank([a, b], Placement("python"), {"a": 1})] == ["b", "a"]
    reported_busy = node("c", slots=2, free=0)
    assert [n.id for n in rank([reported_busy, a], Placement("python"), {})] == ["a", "c"]
