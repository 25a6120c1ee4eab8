"""``POST /v1/audio/speech`` (WAV / PCM tones) and ``POST /v1/audio/transcriptions`` (multipart)."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile
from starlette.responses import PlainTextResponse, Response

from simulator.media import make_wav, read_wav, tone_samples
from simulator.pipeline import SimCall
from simulator.validate import bad, opt_str, req_str
from simulator.wire import json_response

SPEECH_FORMATS = frozenset({"mp3", "opus", "aac", "flac", "wav", "pcm"})
TRANSCRIPT_FORMATS = frozenset({"json", "text", "verbose_json", "srt", "vtt"})


def _voice(body: dict[str, Any]) -> None:
    voice = body.get("voice")
    if not (isinstance(voice, str) and voice) and not (
        isinstance(voice, dict) and isinstance(voice.get("id"), str)
    ):
        raise bad("voice", "'voice' is a required property (a voice name or {'id': ...})")


async def create_speech(call: SimCall) -> Response:
    """Every format gets WAV bytes labelled ``audio/wav`` except ``pcm`` (raw ``audio/pcm`` samples)."""
    req_str(call.body, "model")
    text = req_str(call.body, "input")
    _voice(call.body)
    fmt = opt_str(call.body, "response_format", "mp3")
    if fmt not in SPEECH_FORMATS:
        raise bad("response_format", f"'response_format' must be one of {sorted(SPEECH_FORMATS)}")
    pcm = tone_samples(text)
    if fmt == "pcm":
        return Response(pcm, media_type="audio/pcm")
    return Response(make_wav(pcm), media_type="audio/wav")


def transcript_text(filename: str, data: bytes) -> tuple[str, float | None]:
    """Deterministic text naming the file and its size (and duration, for WAV input)."""
    info = read_wav(data)
    text = f"Simulated transcription of {filename} ({len(data)} bytes)"
    if info is None:
        return text + ".", None
    return f"{text}, {info.duration:.2f} seconds of audio.", info.duration


def _timestamp(seconds: float, sep: str) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}{sep}{rest % 1000:03d}"


def _segment(text: str, duration: float) -> dict[str, Any]:
    return {
        "id": 0,
        "seek": 0,
        "start": 0.0,
        "end": duration,
        "text": text,
        "tokens": [],
        "temperature": 0.0,
        "avg_logprob": -0.1,
        "compression_ratio": 1.0,
        "no_speech_prob": 0.0,
    }


def render_transcript(fmt: str, text: str, duration: float, language: str) -> Response:
    if fmt == "text":
        return PlainTextResponse(text + "\n")
    if fmt == "srt":
        return PlainTextResponse(f"1\n{_timestamp(0, ',')} --> {_timestamp(duration, ',')}\n{text}\n\n")
    if fmt == "vtt":
        return PlainTextResponse(
            f"WEBVTT\n\n{_timestamp(0, '.')} --> {_timestamp(duration, '.')}\n{text}\n\n"
        )
    if fmt == "verbose_json":
        body = {
            "task": "transcribe",
            "language": language,
            "duration": duration,
            "text": text,
            "segments": [_segment(text, duration)],
        }
        return json_response(body)
    return json_response({"text": text})


async def create_transcription(call: SimCall) -> Response:
    form = call.form
    upload = form.get("file") if form is not None else None
    if not isinstance(upload, UploadFile):
        raise bad("file", "'file' is a required multipart file field")
    fields = {k: v for k, v in (form or {}).items() if isinstance(v, str)}
    if not fields.get("model"):
        raise bad("model", "'model' is a required property")
    fmt = fields.get("response_format") or "json"
    if fmt not in TRANSCRIPT_FORMATS:
        raise bad("response_format", f"'response_format' must be one of {sorted(TRANSCRIPT_FORMATS)}")
    text, duration = transcript_text(upload.filename or "audio", await upload.read())
    return render_transcript(fmt, text, duration or 0.0, fields.get("language") or "english")
