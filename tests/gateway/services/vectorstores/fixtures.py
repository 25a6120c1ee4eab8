"""Small documents of every supported format, made in the test (no binary fixtures)."""

from __future__ import annotations


def minimal_pdf(lines: list[str]) -> bytes:
    """A one-page PDF with ``lines`` of Helvetica text, with a correct xref table."""
    text = "BT /F1 12 Tf 72 720 Td 14 TL " + " ".join(f"({_escape(line)}) Tj T*" for line in lines) + " ET"
    stream = text.encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _escape(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


DOCUMENTS: dict[str, bytes] = {
    "zebras.txt": b"Zebras are African equines with distinctive black-and-white striped coats.",
    "volcano.md": b"# Volcanoes\n\nMount Etna is an active stratovolcano on the east coast of **Sicily**.",
    "bread.html": (b"<!doctype html><html><head><title>x</title><script>var hidden = 'SECRET';</script>"
                   b"</head><body><h1>Sourdough</h1>"
                   b"<p>Sourdough bread is leavened with a wild yeast starter.</p></body></html>"),
    "comet.pdf": minimal_pdf(["Halley's Comet is visible from Earth every 75 to 76 years.",
                              "It last appeared in the inner Solar System in 1986."]),
}
