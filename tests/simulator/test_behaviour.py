import pytest

from simulator.behaviour import Behaviour, Overrides, resolve_overrides
from simulator.errors import SimError
from simulator.state import SimState


def test_body_beats_headers_beats_defaults() -> None:
    defaults = Overrides(ttft_ms=5, itl_ms=1)
    got = resolve_overrides(defaults, {"x-sim-ttft-ms": "10", "x-sim-status": "503"}, {"ttft_ms": 20})
    assert got == Overrides(ttft_ms=20, itl_ms=1, status=503)
    assert resolve_overrides(defaults, {}, None) is defaults


@pytest.mark.parametrize("bad", [{"status": "x"}, {"ttft_ms": -1}, {"disconnect_after": 1.5}, "nope"])
def test_malformed_overrides_are_400(bad: object) -> None:
    with pytest.raises(SimError) as info:
        resolve_overrides(Overrides(), {}, bad)
    assert info.value.status == 400


def test_update_validates_before_changing() -> None:
    behaviour = Behaviour()
    behaviour.update({"ttft_ms": 3, "error_rate": 0.25, "status": None, "models": ["a"]})
    assert (behaviour.ttft_ms, behaviour.error_rate, behaviour.models) == (3, 0.25, ("a",))
    with pytest.raises(SimError):
        behaviour.update({"itl_ms": 9, "bogus": 1})
    with pytest.raises(SimError):
        behaviour.update({"error_rate": 2})
    assert behaviour.itl_ms == 0


def test_error_rate_is_exact_and_deterministic() -> None:
    state = SimState(Behaviour(error_rate=0.25))
    fails = [state.should_fail() for _ in range(20)]
    assert sum(fails) == 5
    assert fails == [SimState(Behaviour(error_rate=0.25)).should_fail() for _ in range(1)] + fails[1:]
    assert not any(SimState(Behaviour()).should_fail() for _ in range(10))
