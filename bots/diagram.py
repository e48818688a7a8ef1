"""The flow as an SVG diagram, rendered on the server (no script, no CDN).

Nodes are laid out in columns by their distance from the start; the edges are the links that
``bots.engine.node_links`` finds (``next``, a branch, a route, a quick reply's target).
"""

from __future__ import annotations

from collections import deque
from html import escape

from bots.engine import node_links

BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 190, 54, 80, 26, 20
COLORS = {
    "message": "#dbeafe",
    "question": "#fef3c7",
    "condition": "#ede9fe",
    "set": "#e0f2fe",
    "router": "#fce7f3",
    "http": "#dcfce7",
    "capture_lead": "#ffedd5",
    "handoff": "#fee2e2",
    "end": "#e5e7eb",
}

# What each node type is, in words (the diagram names no code).
NODE_LABELS = {
    "message": "Message",
    "question": "Question",
    "condition": "Condition",
    "set": "Set variables",
    "router": "Understand intent",
    "http": "HTTP request",
    "capture_lead": "Save a lead",
    "handoff": "Hand to a person",
    "end": "End",
}


def step_title(node_id: str, node: dict) -> str:
    """A step as a person picks it from a list: its name, what kind of step it is and the
    start of what it says ("ask_email · Question · “Your email?”"), not "ask_email
    (question)"."""
    kind = node.get("type") if isinstance(node, dict) else None
    parts = [node_id, NODE_LABELS.get(kind, str(kind or "?"))]
    text = node.get("text") if isinstance(node, dict) else None
    if isinstance(text, str) and text.strip():
        said = " ".join(text.split())
        parts.append(f"“{said[:40]}…”" if len(said) > 40 else f"“{said}”")
    return " · ".join(parts)


def flow_edges(definition: dict) -> list[tuple[str, str, str]]:
    """(from, to, label) for every link from one node to another, as the engine knows them
    (``bots.engine.node_links``); links to missing nodes are left out."""
    nodes = definition.get("nodes") or {}
    edges: list[tuple[str, str, str]] = []
    for node_id, node in nodes.items():
        if not isinstance(node, dict):
            continue
        for label, target in node_links(node):
            if isinstance(target, str) and target in nodes:
                edges.append((node_id, target, label))
    return edges


def _columns(definition: dict, edges) -> list[list[str]]:
    nodes = list((definition.get("nodes") or {}).keys())
    start = definition.get("start")
    depth: dict[str, int] = {}
    if start in nodes:
        depth[start] = 0
        queue = deque([start])
        while queue:
            current = queue.popleft()
            for source, target, _ in edges:
                if source == current and target not in depth:
                    depth[target] = depth[current] + 1
                    queue.append(target)
    last = max(depth.values(), default=-1) + 1
    for node in nodes:
        depth.setdefault(node, last)  # unreachable nodes in a last column
    columns: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for node in nodes:
        columns[depth[node]].append(node)
    return columns


def flow_svg(definition: dict) -> str:
    """An SVG picture of the flow: a box per node, an arrow per reference."""
    if not isinstance(definition, dict) or not isinstance(definition.get("nodes"), dict):
        return (
            '<svg xmlns="http://www.w3.org/2000/svg" width="300" height="40">'
            '<text x="10" y="25">No flow.</text></svg>'
        )
    nodes = definition["nodes"]
    edges = flow_edges(definition)
    columns = _columns(definition, edges)
    position: dict[str, tuple[int, int]] = {}
    for col, column in enumerate(columns):
        for row, node in enumerate(column):
            position[node] = (PAD + col * (BOX_W + GAP_X), PAD + row * (BOX_H + GAP_Y))
    width = PAD * 2 + max(1, len(columns)) * (BOX_W + GAP_X)
    height = PAD * 2 + max((len(c) for c in columns), default=1) * (BOX_H + GAP_Y)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="Flow diagram" font-family="system-ui, sans-serif" font-size="12">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#6b7280"/>'
        "</marker></defs>",
    ]
    for source, target, label in edges:
        x1, y1 = position[source]
        x2, y2 = position[target]
        sx, sy = x1 + BOX_W, y1 + BOX_H / 2
        tx, ty = (
            (x2, y2 + BOX_H / 2) if x2 > x1 else (x2 + BOX_W / 2, y2 + (BOX_H if y2 < y1 else 0))
        )
        mid = (sx + tx) / 2
        parts.append(
            f'<path d="M {sx} {sy} C {mid} {sy}, {mid} {ty}, {tx} {ty}" fill="none" '
            f'stroke="#9ca3af" stroke-width="1.3" marker-end="url(#arrow)">'
            f"<title>{escape(source)} → {escape(target)} "
            f"({escape(label)})</title></path>"
        )
    start = definition.get("start")
    for node_id, (x, y) in position.items():
        node = nodes.get(node_id) or {}
        kind = str(node.get("type", "?")) if isinstance(node, dict) else "?"
        stroke = "#111827" if node_id == start else "#9ca3af"
        parts.append(
            f'<g data-node="{escape(node_id)}"><rect x="{x}" y="{y}" width="{BOX_W}" '
            f'height="{BOX_H}" rx="8" fill="{COLORS.get(kind, "#f3f4f6")}" stroke="{stroke}" '
            f'stroke-width="{2 if node_id == start else 1}"/>'
            f'<text x="{x + 10}" y="{y + 21}" font-weight="600">{escape(node_id[:26])}</text>'
            f'<text x="{x + 10}" y="{y + 40}" fill="#4b5563">'
            f"{escape(NODE_LABELS.get(kind, kind))}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)
