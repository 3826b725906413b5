"""Write pagehop/demo/harbor-lane-review-2021.pdf: a two-page report with a text layer, a table and a bar chart.

The demo sample is our own (fictional) writing. The PDF is written by hand (pagehop.testing.pdf) with
the base-14 Helvetica font so it needs no PDF library; run this script again after changing the text.
"""

from __future__ import annotations

from pathlib import Path

from pagehop.testing.pdf import assemble_pdf, escape

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

A4 = (595, 842)  # points
REVENUE = [("2019", 84), ("2020", 97), ("2021", 131)]  # million euros


def _text_block(lines: list[tuple[int, str]], top: int) -> str:
    ops = ["BT"]
    y = top
    for size, line in lines:
        ops.append(f"/F1 {size} Tf 1 0 0 1 60 {y} Tm ({escape(line)}) Tj")
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


if __name__ == "__main__":
    OUT.write_bytes(assemble_pdf([_text_block(PAGE_1, 780).encode("latin-1"), page_two().encode("latin-1")], size=A4))
    print(f"wrote {OUT}")
