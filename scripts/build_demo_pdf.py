"""Write pagehop/demo/harbor-lane-review-2021.pdf: a two-page report with a text layer, a table and a bar chart.

The demo sample is our own (fictional) writing. The PDF is written by hand with the base-14 Helvetica
font so it needs no PDF library; run this script again after changing the text.
"""

from __future__ import annotations

from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "pagehop" / "demo" / "harbor-lane-review-2021.pdf"

PAGE_1 = [
    (20, "Harbor Lane Robotics - Annual Review 2021"),
    (12, ""),
    (12, "Harbor Lane Robotics was founded in 2008 by Mirela Voss, an engineer who grew up in"),
    (12, "the port city of Tallinn. The company builds warehouse robots that move pallets between"),
    (12, "loading docks and storage racks without fixed rails."),
    (12, ""),
    (12, "Mirela Voss was born in Tallinn in 1979 and studied mechanical engineering in Tartu"),
    (12, "before she started the company in a rented boat shed."),
    (12, ""),
    (12, "The company is headquartered in Rotterdam and employs 640 people across three sites."),
]

REVENUE = [("2019", 84), ("2020", 97), ("2021", 131)]  # million euros


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _text_block(lines: list[tuple[int, str]], top: int) -> str:
    ops = ["BT"]
    y = top
    for size, line in lines:
        ops.append(f"/F1 {size} Tf 1 0 0 1 60 {y} Tm ({_escape(line)}) Tj")
        y -= int(size * 1.6)
    ops.append("ET")
    return "\n".join(ops)


def page_two() -> str:
    heading = _text_block(
        [
            (16, "Revenue by year (million euros)"),
            (12, ""),
            (12, "Year      Revenue"),
            *[(12, f"{year}      {value}") for year, value in REVENUE],
            (12, ""),
            (12, "Figure 1. Revenue grew 35 percent in 2021, driven by the Kestrel Optics vision line."),
        ],
        760,
    )
    bars = []
    for i, (year, value) in enumerate(REVENUE):
        x = 100 + i * 120
        bars.append(f"0.2 0.4 0.7 rg {x} 300 60 {value * 2} re f")
        bars.append(f"0 0 0 rg BT /F1 11 Tf 1 0 0 1 {x + 15} 285 Tm ({year}) Tj ET")
        bars.append(f"BT /F1 11 Tf 1 0 0 1 {x + 18} {305 + value * 2} Tm ({value}) Tj ET")
    axis = "0 0 0 RG 1 w 90 300 m 480 300 l S 90 300 m 90 580 l S"
    return "\n".join([heading, axis, "0 0 0 rg", *bars])


def build_pdf(pages: list[str]) -> bytes:
    objects: list[bytes] = []
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    for i, content in enumerate(pages):
        stream = content.encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


if __name__ == "__main__":
    OUT.write_bytes(build_pdf([_text_block(PAGE_1, 780), page_two()]))
    print(f"wrote {OUT}")
