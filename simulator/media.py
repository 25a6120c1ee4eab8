"""Pure media builders: small PNGs (zlib + struct) and 16 kHz mono 16-bit WAV tones, plus a WAV reader."""

from __future__ import annotations

import math
import struct
import sys
import zlib
from array import array
from dataclasses import dataclass

from simulator.text import digest

MAX_SIDE = 64
SAMPLE_RATE = 16_000
WORD_SECONDS = 0.05
MAX_SECONDS = 3.0
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True, slots=True)
class WavInfo:
    channels: int
    sample_rate: int
    bits_per_sample: int
    data_bytes: int

    @property
    def duration(self) -> float:
        frame = self.channels * self.bits_per_sample // 8
        return self.data_bytes / (frame * self.sample_rate) if frame and self.sample_rate else 0.0


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _rows(width: int, height: int, colours: bytes) -> bytes:
    first, second = colours[:3], colours[3:6]
    rows = []
    for y in range(height):
        row = b"".join(first if ((x + y) // 8) % 2 == 0 else second for x in range(width))
        rows.append(b"\x00" + row)  # filter type 0 (None) per scanline
    return b"".join(rows)


def make_png(width: int, height: int, seed: str) -> bytes:
    """An RGB PNG of at most 64x64 pixels with diagonal stripes in two colours from hash(seed)."""
    width, height = max(1, min(width, MAX_SIDE)), max(1, min(height, MAX_SIDE))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(_rows(width, height, digest("png", seed)))
    return (
        PNG_SIGNATURE + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", pixels) + _png_chunk(b"IEND", b"")
    )


def tone_samples(text: str) -> bytes:
    """One 50 ms sine tone per word (pitch from the word's hash), capped at 3 s; int16 little-endian."""
    words = text.split() or ["."]
    per_word = int(SAMPLE_RATE * WORD_SECONDS)
    words = words[: int(MAX_SECONDS / WORD_SECONDS)]
    samples = array("h")
    for word in words:
        freq = 220 + int.from_bytes(digest("tone", word)[:2], "big") % 660
        step = 2 * math.pi * freq / SAMPLE_RATE
        samples.extend(int(8000 * math.sin(step * i)) for i in range(per_word))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def make_wav(pcm: bytes, sample_rate: int = SAMPLE_RATE) -> bytes:
    """RIFF/WAVE container around mono 16-bit PCM."""
    fmt = struct.pack("<HHIIHH", 1, 1, sample_rate, sample_rate * 2, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(pcm)) + pcm
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _wav_chunks(data: bytes) -> dict[bytes, tuple[int, int]]:
    chunks: dict[bytes, tuple[int, int]] = {}
    pos = 12
    while pos + 8 <= len(data):
        kind, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        chunks.setdefault(kind, (pos + 8, size))
        pos += 8 + size + (size & 1)
    return chunks


def read_wav(data: bytes) -> WavInfo | None:
    """Header facts of a PCM WAV, or ``None`` if ``data`` is not a readable RIFF/WAVE file."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    chunks = _wav_chunks(data)
    if b"fmt " not in chunks or b"data" not in chunks:
        return None
    start, _ = chunks[b"fmt "]
    _, channels, rate, _, _, bits = struct.unpack("<HHIIHH", data[start : start + 16])
    data_start, data_size = chunks[b"data"]
    return WavInfo(channels, rate, bits, min(data_size, len(data) - data_start))
