"""Small charts drawn as inline SVG on the server: no script, no CDN, readable without CSS."""

from __future__ import annotations

from django.utils.html import escape

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 10, 24, 28
COLOURS = ["#2563eb", "#f97316", "#16a34a", "#9333ea"]


def _scale(values: list[float | None]) -> float:
    peak = max((v for v in values if v is not None), default=0)
    return peak if peak > 0 else 1


def _frame(title: str, labels: list[str], peak: float) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}" class="ct-chart">',
        f"<title>{escape(title)}</title>",
        f'<text x="{LEFT}" y="14" font-size="12" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" '
        'stroke="#999"/>',
    ]
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h - fraction * plot_h
        value = peak * fraction
        text = f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"
        parts.append(
            f'<text x="{LEFT - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{text}</text>'
        )
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#eee"/>'
        )
    step = max(1, len(labels) // 10)
    width = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    for index in range(0, len(labels), step):
        x = LEFT + width * (index + 0.5)
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - 8}" font-size="10" text-anchor="middle">'
            f"{escape(labels[index])}</text>"
        )
    return parts


def bar_chart(labels: list[str], values: list[float | None], *, title: str) -> str:
    peak = _scale(values)
    parts = _frame(title, labels, peak)
    plot_h = HEIGHT - TOP - BOTTOM
    width = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = (value or 0) / peak * plot_h
        x = LEFT + width * index + width * 0.15
        parts.append(
            f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{width * 0.7:.1f}" '
            f'height="{h:.1f}" fill="{COLOURS[0]}"><title>{escape(label)}: {value or 0}'
            "</title></rect>"
        )
    parts.append("</svg>")
    return "".join(parts)


def line_chart(labels: list[str], series: dict[str, list[float | None]], *, title: str) -> str:
    peak = _scale([v for values in series.values() for v in values])
    parts = _frame(title, labels, peak)
    plot_h = HEIGHT - TOP - BOTTOM
    width = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    for number, (name, values) in enumerate(series.items()):
        colour = COLOURS[number % len(COLOURS)]
        points = [
            f"{LEFT + width * (i + 0.5):.1f},{TOP + plot_h - v / peak * plot_h:.1f}"
            for i, v in enumerate(values)
            if v is not None
        ]
        if points:
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                f'points="{" ".join(points)}"/>'
            )
        # A dot on each value, so that a day alone between gaps still shows.
        for i, v in enumerate(values):
            if v is None:
                continue
            x, y = LEFT + width * (i + 0.5), TOP + plot_h - v / peak * plot_h
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
                f"<title>{escape(labels[i])} {escape(name)}: {v}</title></circle>"
            )
        parts.append(
            f'<text x="{WIDTH - RIGHT - 120}" y="{14 + 12 * number}" font-size="11" '
            f'fill="{colour}">■ {escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
