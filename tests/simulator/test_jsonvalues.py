from typing import Any

from simulator.jsonvalues import build_value


def test_fills_every_property_with_typed_values() -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 3, "maximum": 5},
            "ratio": {"type": "number"},
            "ok": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "when": {"type": "string", "format": "date"},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "integer"}]},
            "nested": {"$ref": "#/$defs/Inner"},
        },
        "required": ["city", "unit"],
        "$defs": {"Inner": {"type": "object", "properties": {"name": {"type": ["string", "null"]}}}},
    }
    value = build_value(schema, ["Paris"])
    assert value["city"] == "Paris"
    assert value["unit"] == "celsius"
    assert isinstance(value["days"], int) and 3 <= value["days"] <= 5
    assert isinstance(value["ratio"], float)
    assert value["ok"] is True
    assert len(value["tags"]) == 2 and all(isinstance(t, str) for t in value["tags"])
    assert value["when"] == "2024-01-01"
    assert isinstance(value["maybe"], int)
    assert isinstance(value["nested"]["name"], str)


def test_placeholders_are_deterministic() -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}, "n": {"type": "integer"}}}
    assert (
        build_value(schema, [])
        == build_value(schema, [])
        == {"q": "sim-q", "n": build_value(schema, [])["n"]}
    )


def test_recursive_schema_terminates() -> None:
    schema = {
        "$ref": "#/$defs/Node",
        "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
    }
    assert isinstance(build_value(schema, []), dict)
