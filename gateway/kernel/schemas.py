"""Typed views of OpenAI request bodies, validated once at the endpoint.

The raw JSON object is kept and forwarded (unknown fields pass through); these structs
check what the gateway relies on and what OpenAI would reject.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

import msgspec
from msgspec import Meta, Struct

PositiveInt = Annotated[int, Meta(ge=1)]
Temperature = Annotated[float, Meta(ge=0, le=2)]
Probability = Annotated[float, Meta(ge=0, le=1)]
Penalty = Annotated[float, Meta(ge=-2, le=2)]
Choices = Annotated[int, Meta(ge=1, le=128)]
ModelName = Annotated[str, Meta(min_length=1)]


class StreamOptions(Struct, omit_defaults=True):
    include_usage: bool | None = None


class FunctionDef(Struct):
    name: Annotated[str, Meta(min_length=1, max_length=64)]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(Struct):
    type: str
    function: FunctionDef | None = None
    vector_store_ids: list[str] | None = None


class ChatMessage(Struct):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class ChatCompletionRequest(Struct):
    model: ModelName
    messages: Annotated[list[ChatMessage], Meta(min_length=1)]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    n: Choices | None = None
    temperature: Temperature | None = None
    top_p: Probability | None = None
    max_tokens: PositiveInt | None = None
    max_completion_tokens: PositiveInt | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | None = None
    tools: list[Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    user: str | None = None


class CompletionRequest(Struct):
    model: ModelName
    prompt: str | list[str | int | list[int]]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    n: Choices | None = None
    temperature: Temperature | None = None
    top_p: Probability | None = None
    max_tokens: Annotated[int, Meta(ge=0)] | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    echo: bool | None = None
    logprobs: Annotated[int, Meta(ge=0, le=5)] | None = None
    user: str | None = None


class EmbeddingRequest(Struct):
    model: ModelName
    input: str | Annotated[list[str | int | list[int]], Meta(min_length=1)]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: PositiveInt | None = None
    user: str | None = None


class ImageRequest(Struct):
    prompt: Annotated[str, Meta(min_length=1)]
    model: ModelName | None = None
    n: Annotated[int, Meta(ge=1, le=10)] | None = None
    size: str | None = None
    response_format: Literal["url", "b64_json"] | None = None
    quality: str | None = None
    style: str | None = None
    user: str | None = None


class SpeechRequest(Struct):
    model: ModelName
    input: Annotated[str, Meta(min_length=1, max_length=4096)]
    voice: str | dict[str, Any]
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] | None = None
    speed: Annotated[float, Meta(ge=0.25, le=4.0)] | None = None
    instructions: str | None = None


class TranscriptionForm(Struct):
    model: ModelName
    language: str | None = None
    prompt: str | None = None
    response_format: Literal["json", "text", "srt", "verbose_json", "vtt"] | None = None
    temperature: Annotated[float, Meta(ge=0, le=1)] | None = None


MetadataKey = Annotated[str, Meta(min_length=1, max_length=64)]
Metadata = Annotated[dict[MetadataKey, Annotated[str, Meta(max_length=512)]], Meta(max_length=16)]
Attribute = str | bool | int | float
ObjectId = Annotated[str, Meta(min_length=1, max_length=128)]


Purpose = Literal["assistants", "user_data", "batch", "fine-tune", "vision"]
PURPOSES: frozenset[str] = frozenset(get_args(Purpose))


class FileUpload(Struct):
    """``POST /v1/files`` (multipart/form-data). ``file`` is the upload itself (binary)."""

    file: bytes
    purpose: Purpose


class VectorStoreCreate(Struct):
    name: Annotated[str, Meta(max_length=256)] | None = None
    metadata: Metadata | None = None
    file_ids: Annotated[list[ObjectId], Meta(max_length=500)] | None = None
    chunking_strategy: dict[str, Any] | None = None


class VectorStoreFileCreate(Struct):
    file_id: ObjectId
    attributes: Annotated[dict[MetadataKey, Attribute], Meta(max_length=16)] | None = None
    chunking_strategy: dict[str, Any] | None = None


class RankingOptions(Struct):
    score_threshold: Annotated[float, Meta(ge=0, le=1)] | None = None
    ranker: str | None = None


class VectorStoreSearch(Struct):
    query: Annotated[str, Meta(min_length=1)] | Annotated[list[Annotated[str, Meta(min_length=1)]],
                                                         Meta(min_length=1, max_length=16)]
    max_num_results: Annotated[int, Meta(ge=1, le=50)] | None = None
    filters: dict[str, Any] | None = None
    ranking_options: RankingOptions | None = None
    score_threshold: Annotated[float, Meta(ge=0, le=1)] | None = None
    rewrite_query: bool | None = None


class Page(Struct):
    """Query parameters of OpenAI's list endpoints (``limit`` bounds differ per route)."""

    limit: Annotated[int, Meta(ge=1, le=100)] | None = None
    after: ObjectId | None = None
    order: Literal["asc", "desc"] | None = None


IncludeValue = Literal["file_search_call.results", "web_search_call.results", "web_search_call.action.sources",
                       "message.input_image.image_url", "computer_call_output.output.image_url",
                       "code_interpreter_call.outputs", "reasoning.encrypted_content",
                       "message.output_text.logprobs"]
ItemId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,128}$")]


class IncludeQuery(Struct):
    """``include`` (``include[]=...`` as the SDKs send it, or repeated): known values only. Items are kept
    whole, so each of them is already there."""

    include: list[IncludeValue] | None = None


class ItemPage(IncludeQuery):
    """A list of stored items (a response's input items, a conversation's items)."""

    limit: Annotated[int, Meta(ge=1, le=100)] | None = None
    order: Literal["asc", "desc"] | None = None
    after: ItemId | None = None


class ResponseQuery(IncludeQuery):
    """``GET /v1/responses/{id}``: ``stream`` replays a background response's events after ``starting_after``."""

    stream: bool | None = None
    starting_after: Annotated[int, Meta(ge=0, le=2**31 - 1)] | None = None


class FilePage(Struct):
    limit: Annotated[int, Meta(ge=1, le=10_000)] | None = None


BatchEndpoint = Literal["/v1/chat/completions", "/v1/embeddings", "/v1/responses"]


class BatchCreate(Struct):
    """``POST /v1/batches``: a file uploaded with purpose ``batch``, run against one endpoint."""

    input_file_id: ObjectId
    endpoint: BatchEndpoint
    completion_window: Literal["24h"]
    metadata: Metadata | None = None
    output_expires_after: dict[str, Any] | None = None


class BatchPage(Struct):
    limit: Annotated[int, Meta(ge=1, le=100)] | None = None
    after: ObjectId | None = None


class TranscriptionUpload(TranscriptionForm):
    """``POST /v1/audio/transcriptions`` (multipart/form-data): the audio ``file`` and the form's fields."""

    file: bytes = b""


class ResponsesRequest(Struct):
    """``POST /v1/responses``; items, tools and formats are checked further at the endpoint."""

    model: ModelName
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    stream: bool | None = None
    store: bool | None = None
    background: bool | None = None
    previous_response_id: Annotated[str, Meta(min_length=1)] | None = None
    conversation: Annotated[str, Meta(min_length=1)] | dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: Annotated[int, Meta(ge=16)] | None = None
    temperature: Temperature | None = None
    top_p: Probability | None = None
    text: dict[str, Any] | None = None
    reasoning: dict[str, Any] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    include: list[str] | None = None
    metadata: dict[str, Annotated[str, Meta(max_length=512)]] | None = None
    user: str | None = None
    safety_identifier: Annotated[str, Meta(max_length=64)] | None = None
    prompt_cache_key: str | None = None


def param_of(error: msgspec.ValidationError) -> tuple[str, str | None]:
    """Split msgspec's "... - at `$.messages[0].role`" into (message, "messages[0].role")."""
    text = str(error)
    marker = " - at `$"
    at = text.rfind(marker)
    if at < 0:
        return text, None
    path = text[at + len(marker) : -1].lstrip(".")
    return text[:at], path or None
