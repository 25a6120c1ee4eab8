import hashlib
import json

from simulator.tools import (
    ToolChoice,
    ToolSpec,
    build_arguments,
    plan_tool_calls,
    python_sha256_code,
    quoted_strings,
)

WEATHER = ToolSpec(
    "get_weather",
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
)
PYTHON = ToolSpec(
    "python", {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}
)


def test_quoted_strings_ignore_apostrophes() -> None:
    assert quoted_strings("don't stop \"Paris\" and 'Rome' \u201cOslo\u201d") == ["Paris", "Rome", "Oslo"]


def test_arguments_take_quoted_text_then_placeholders() -> None:
    args = json.loads(build_arguments(WEATHER.parameters, 'weather in "Paris"'))
    assert args["city"] == "Paris" and isinstance(args["days"], int)
    assert json.loads(build_arguments({}, "x")) == {}


def test_auto_calls_mentioned_tools_only() -> None:
    assert plan_tool_calls([WEATHER], ToolChoice(), "hello", after_tool=False) == []
    calls = plan_tool_calls([WEATHER, PYTHON], ToolChoice(), "use get_weather please", after_tool=False)
    assert [c.name for c in calls] == ["get_weather"]


def test_forced_required_none_and_after_tool() -> None:
    assert [
        c.name
        for c in plan_tool_calls([WEATHER, PYTHON], ToolChoice("forced", "python"), "hi", after_tool=True)
    ] == ["python"]
    assert [c.name for c in plan_tool_calls([WEATHER], ToolChoice("required"), "hi", after_tool=False)] == [
        "get_weather"
    ]
    assert plan_tool_calls([WEATHER], ToolChoice("none"), "get_weather", after_tool=False) == []
    assert plan_tool_calls([WEATHER], ToolChoice(), "get_weather", after_tool=True) == []


def test_parallel_flag_limits_to_one_call() -> None:
    both = "get_weather and python"
    assert len(plan_tool_calls([WEATHER, PYTHON], ToolChoice(), both, after_tool=False)) == 2
    assert len(plan_tool_calls([WEATHER, PYTHON], ToolChoice(), both, after_tool=False, parallel=False)) == 1


def test_python_sha256_special_case_runs_to_the_right_digest() -> None:
    prompt = "Compute the SHA-256 of \"h\u00e9llo 'world'\" with the tool"
    code = python_sha256_code(prompt)
    assert code is not None and code.startswith("import hashlib\nprint(hashlib.sha256(b")
    namespace: dict[str, object] = {}
    printed: list[str] = []
    exec(code.replace("print(", "printed.append("), {"printed": printed}, namespace)
    assert printed == [hashlib.sha256("h\u00e9llo 'world'".encode()).hexdigest()]
    calls = plan_tool_calls([WEATHER, PYTHON], ToolChoice(), prompt, after_tool=False)
    assert [c.name for c in calls] == ["python"]
    assert json.loads(calls[0].arguments) == {"code": code}
    assert python_sha256_code("sha256 of nothing quoted") is None
