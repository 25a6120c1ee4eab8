import io

import httpx
import openai

from simulator.media import read_wav


def test_speech_wav_and_pcm(client: openai.OpenAI) -> None:
    wav = client.audio.speech.create(
        model="sim-tts", input="one two three", voice="alloy", response_format="wav"
    )
    assert wav.response.headers["content-type"] == "audio/wav"
    info = read_wav(wav.content)
    assert info is not None and abs(info.duration - 0.15) < 1e-9
    pcm = client.audio.speech.create(
        model="sim-tts", input="one two three", voice="alloy", response_format="pcm"
    )
    assert pcm.response.headers["content-type"] == "audio/pcm" and len(pcm.content) == 2 * 16000 * 0.15


def test_speech_rejects_unknown_format(http: httpx.Client) -> None:
    bad = http.post(
        "/v1/audio/speech", json={"model": "t", "input": "x", "voice": "alloy", "response_format": "ogg"}
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "response_format"


def test_transcription_formats(client: openai.OpenAI) -> None:
    wav = client.audio.speech.create(model="t", input="a b c d", voice="alloy", response_format="wav").content
    done = client.audio.transcriptions.create(model="sim-stt", file=("clip.wav", io.BytesIO(wav)))
    assert done.text == f"Simulated transcription of clip.wav ({len(wav)} bytes), 0.20 seconds of audio."
    verbose = client.audio.transcriptions.create(
        model="sim-stt", file=("clip.wav", io.BytesIO(wav)), response_format="verbose_json", language="fr"
    )
    assert verbose.language == "fr" and abs(verbose.duration - 0.2) < 1e-9
    text = client.audio.transcriptions.create(
        model="sim-stt", file=("n.mp3", b"12345"), response_format="text"
    )
    assert str(text).strip() == "Simulated transcription of n.mp3 (5 bytes)."
    srt = client.audio.transcriptions.create(model="sim-stt", file=("c.wav", wav), response_format="srt")
    assert "00:00:00,000 --> 00:00:00,200" in str(srt)


def test_transcription_needs_a_file(http: httpx.Client) -> None:
    bad = http.post("/v1/audio/transcriptions", data={"model": "m"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "file"
