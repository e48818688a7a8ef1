"""Small charts drawn as inline SVG on the server: no script, no CDN, readable without CSS.

Each chart is drawn twice, at two widths: an SVG scales as a picture, so the desktop's 720
units shrunk onto a phone's 345 pixels drew its labels 5 pixels high. The page shows the one
that fits (templates/stats/stats.html: the narrow one under 640 pixels) and hides the other,
to the eye and to a screen reader alike (``display: none``)."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.html import escape

HEIGHT = 220
LEFT, RIGHT, BOTTOM = 44, 10, 28
TITLE_Y = 14
COLOURS = ["#2563eb", "#f97316", "#16a34a", "#9333ea"]


@dataclass(frozen=True)
class _Size:
    name: str
    width: int
    font: int  # the axes' labels; the title and the legend one and two more
    labels: int  # at most this many days named under the axis

    def top(self, legend: bool) -> int:
        """Where the plot starts: under the title, and under the legend's row if any (the
        legend sat at the plot's top right, over the highest values)."""
        return TITLE_Y + 10 + (self.font + 8 if legend else 0)


SIZES = (_Size("wide", 720, 10, 10), _Size("narrow", 360, 11, 5))


def _both(draw) -> str:
    return "".join(draw(size) for size in SIZES)


def _scale(values: list[float | None]) -> float:
    peak = max((v for v in values if v is not None), default=0)
    return peak if peak > 0 else 1


def _frame(size: _Size, title: str, labels: list[str], peak: float, top: int) -> list[str]:
    plot_h = HEIGHT - top - BOTTOM
    right = size.width - RIGHT
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size.width} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}" class="ct-chart ct-chart--{size.name}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{LEFT}" y="{TITLE_Y}" font-size="{size.font + 2}" font-weight="bold">'
        f"{escape(title)}</text>",
        f'<line x1="{LEFT}" y1="{top + plot_h}" x2="{right}" y2="{top + plot_h}" stroke="#999"/>',
    ]
    for fraction in (0, 0.5, 1):
        y = top + plot_h - fraction * plot_h
        value = peak * fraction
        text = f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"
        parts.append(
            f'<text x="{LEFT - 4}" y="{y + 4:.1f}" font-size="{size.font}" '
            f'text-anchor="end">{text}</text>'
        )
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#eee"/>')
    step = -(-len(labels) // size.labels) or 1  # ceiling: at most size.labels of them
    width = (right - LEFT) / max(1, len(labels))
    for index in range(0, len(labels), step):
        x = LEFT + width * (index + 0.5)
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - 8}" font-size="{size.font}" '
            f'text-anchor="middle">{escape(labels[index])}</text>'
        )
    return parts


def bar_chart(labels: list[str], values: list[float | None], *, title: str) -> str:
    peak = _scale(values)

    def draw(size: _Size) -> str:
        top = size.top(legend=False)
        parts = _frame(size, title, labels, peak, top)
        plot_h = HEIGHT - top - BOTTOM
        width = (size.width - RIGHT - LEFT) / max(1, len(labels))
        for index, (label, value) in enumerate(zip(labels, values, strict=True)):
            h = (value or 0) / peak * plot_h
            x = LEFT + width * index + width * 0.15
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{width * 0.7:.1f}" '
                f'height="{h:.1f}" fill="{COLOURS[0]}"><title>{escape(label)}: {value or 0}'
                "</title></rect>"
            )
        parts.append("</svg>")
        return "".join(parts)

    return _both(draw)


def line_chart(labels: list[str], series: dict[str, list[float | None]], *, title: str) -> str:
    peak = _scale([v for values in series.values() for v in values])

    def draw(size: _Size) -> str:
        top = size.top(legend=True)
        parts = _frame(size, title, labels, peak, top)
        plot_h = HEIGHT - top - BOTTOM
        width = (size.width - RIGHT - LEFT) / max(1, len(labels))
        legend_x = LEFT
        for number, (name, values) in enumerate(series.items()):
            colour = COLOURS[number % len(COLOURS)]
            points = [
                f"{LEFT + width * (i + 0.5):.1f},{top + plot_h - v / peak * plot_h:.1f}"
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
                x, y = LEFT + width * (i + 0.5), top + plot_h - v / peak * plot_h
                parts.append(
                    f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
                    f"<title>{escape(labels[i])} {escape(name)}: {v}</title></circle>"
                )
            # The legend: one row between the title and the plot, left to right (each name
            # given about 0.65 of the font size a letter, and a gap).
            font = size.font + 1
            parts.append(
                f'<text x="{legend_x}" y="{TITLE_Y + 10 + font}" font-size="{font}" '
                f'fill="{colour}" class="ct-legend">■ {escape(name)}</text>'
            )
            legend_x += round((len(name) + 2) * font * 0.65) + 2 * font
        parts.append("</svg>")
        return "".join(parts)

    return _both(draw)
