import struct
import zlib

from simulator.media import MAX_SIDE, PNG_SIGNATURE, SAMPLE_RATE, make_png, make_wav, read_wav, tone_samples


def parse_png(data: bytes) -> tuple[int, int, bytes]:
    """(width, height, raw scanlines) after checking the signature, chunk CRCs and IHDR."""
    assert data[:8] == PNG_SIGNATURE
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        chunks[kind] = body
        pos += 12 + length
    width, height, depth, colour, _, _, _ = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, colour) == (8, 2) and b"IEND" in chunks
    return width, height, zlib.decompress(chunks[b"IDAT"])


def test_png_is_valid_and_capped() -> None:
    width, height, raw = parse_png(make_png(1024, 512, "a cat"))
    assert (width, height) == (MAX_SIDE, MAX_SIDE)
    assert len(raw) == height * (1 + 3 * width)
    assert parse_png(make_png(16, 8, "x"))[:2] == (16, 8)


def test_png_colours_follow_the_prompt() -> None:
    assert make_png(8, 8, "a") == make_png(8, 8, "a") != make_png(8, 8, "b")


def test_wav_header_and_duration() -> None:
    wav = make_wav(tone_samples("one two three four"))
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    assert struct.unpack("<I", wav[4:8])[0] == len(wav) - 8
    info = read_wav(wav)
    assert info is not None
    assert (info.channels, info.sample_rate, info.bits_per_sample) == (1, SAMPLE_RATE, 16)
    assert abs(info.duration - 0.2) < 1e-9


def test_wav_duration_is_capped_and_non_wav_is_rejected() -> None:
    info = read_wav(make_wav(tone_samples("word " * 500)))
    assert info is not None and info.duration == 3.0
    assert read_wav(b"not a wav file at all") is None
