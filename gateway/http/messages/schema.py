"""Typed views of Anthropic Messages request bodies (``/v1/messages``, ``/v1/messages/count_tokens``).

Validated once at the endpoint with msgspec; content blocks are tagged by ``type``, so an unknown block
type is a 400 naming its place (``messages[0].content[1].type``). Fields a block may carry that the
gateway does not use (``cache_control``, ``citations``) are accepted and ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

ModelName = Annotated[str, Meta(min_length=1)]
NonEmpty = Annotated[str, Meta(min_length=1)]


class TextBlock(Struct, tag_field="type", tag="text"):
    text: str


class Base64Source(Struct, tag_field="type", tag="base64"):
    media_type: NonEmpty
    data: NonEmpty


class UrlSource(Struct, tag_field="type", tag="url"):
    url: NonEmpty


class ImageBlock(Struct, tag_field="type", tag="image"):
    source: Base64Source | UrlSource


class ToolUseBlock(Struct, tag_field="type", tag="tool_use"):
    id: NonEmpty
    name: NonEmpty
    input: dict[str, Any]


class ToolResultBlock(Struct, tag_field="type", tag="tool_result"):
    tool_use_id: NonEmpty
    content: str | list[TextBlock | ImageBlock] | None = None
    is_error: bool = False


class ThinkingBlock(Struct, tag_field="type", tag="thinking"):
    """The model's own reasoning, sent back in the history: not forwarded to chat backends."""

    thinking: str = ""


class RedactedThinkingBlock(Struct, tag_field="type", tag="redacted_thinking"):
    data: str = ""


Block = TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock | RedactedThinkingBlock


class Message(Struct):
    role: Literal["user", "assistant"]
    content: str | list[Block]


class ToolDef(Struct):
    """A client tool. Anthropic's server tools (``type`` other than ``custom``) are refused at the endpoint."""

    name: Annotated[str, Meta(min_length=1, max_length=128)]
    input_schema: dict[str, Any] | None = None
    description: str | None = None
    type: str | None = None


class AutoChoice(Struct, tag_field="type", tag="auto"):
    disable_parallel_tool_use: bool = False


class AnyChoice(Struct, tag_field="type", tag="any"):
    disable_parallel_tool_use: bool = False


class ToolChoiceByName(Struct, tag_field="type", tag="tool"):
    name: NonEmpty
    disable_parallel_tool_use: bool = False


class NoneChoice(Struct, tag_field="type", tag="none"):
    pass


ToolChoice = AutoChoice | AnyChoice | ToolChoiceByName | NoneChoice


class Metadata(Struct):
    user_id: str | None = None


class JsonOutputFormat(Struct, tag_field="type", tag="json_schema"):
    schema: dict[str, Any]


class OutputConfig(Struct):
    """Structured output (``format``) and ``effort`` (a reasoning budget chat backends do not share)."""

    format: JsonOutputFormat | None = None
    effort: str | None = None


class MessagesInput(Struct, kw_only=True):
    """What both routes read: the conversation, its system prompt and the tools offered."""

    model: ModelName
    messages: Annotated[list[Message], Meta(min_length=1)]
    system: str | list[TextBlock] | None = None
    tools: list[ToolDef] | None = None
    tool_choice: ToolChoice | None = None


class MessagesRequest(MessagesInput, kw_only=True):
    """``POST /v1/messages``: ``max_tokens`` is required, as Anthropic requires it."""

    max_tokens: Annotated[int, Meta(ge=1)]
    stop_sequences: list[str] | None = None
    temperature: Annotated[float, Meta(ge=0, le=1)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    top_k: Annotated[int, Meta(ge=0)] | None = None
    metadata: Metadata | None = None
    output_config: OutputConfig | None = None
    stream: bool | None = None
