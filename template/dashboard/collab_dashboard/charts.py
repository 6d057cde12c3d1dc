"""Chart geometry, pure: the API's points in, coordinates out; templates draw them as SVG.

No figure is computed here that the API did not give: records, exclusions and the Pareto frontier
come with the points. This module only places them (scales, ticks, the record line's steps, the
lineage graph's columns), so the charts need no script and no library.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

WIDTH, HEIGHT = 720, 260
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 64, 16, 12, 36


@dataclass(frozen=True)
class Scale:
    """A linear map from data to pixels."""

    lo: float
    hi: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        span = self.hi - self.lo or 1.0
        return round(self.start + (value - self.lo) / span * (self.end - self.start), 1)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About `count` round tick values covering lo..hi."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(lo / step) * step
    ticks = [round(first, 10)]
    while ticks[-1] < hi - step * 1e-9:
        ticks.append(round(first + len(ticks) * step, 10))
    return ticks


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


@dataclass
class SeriesChart:
    """One track's score over time: points, the record line, axes."""

    points: list[dict[str, Any]] = field(default_factory=list)  # each with x, y and the API's fields
    record_path: str = ""
    y_ticks: list[tuple[float, float]] = field(default_factory=list)  # (value, pixel)
    x_ticks: list[tuple[str, float]] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT


def series_chart(series: dict[str, Any]) -> SeriesChart:
    """Place a track's points (`/v1/series`) and draw its record line as steps up to the last point."""
    chart = SeriesChart()
    points, records = series["points"], series["records"]
    every = points + records
    if not every:
        return chart
    times = [_seconds(p["at"]) for p in every]
    scores = [float(p["score"]) for p in every]
    ticks = nice_ticks(min(scores), max(scores))
    x = Scale(min(times), max(times) if max(times) > min(times) else min(times) + 1, PAD_LEFT, WIDTH - PAD_RIGHT)
    y = Scale(ticks[0], ticks[-1], HEIGHT - PAD_BOTTOM, PAD_TOP)
    chart.points = [{**p, "x": x(_seconds(p["at"])), "y": y(float(p["score"]))} for p in points]
    steps: list[str] = []
    for i, r in enumerate(records):
        px, py = x(_seconds(r["at"])), y(float(r["score"]))
        steps.append(f"M{px},{py}" if i == 0 else f"H{px}V{py}")
    if steps:
        steps.append(f"H{x(max(times))}")
    chart.record_path = "".join(steps)
    chart.y_ticks = [(t, y(t)) for t in ticks]
    lo, hi = min(times), max(times)
    chart.x_ticks = [
        (datetime.fromtimestamp(lo + (hi - lo) * f, UTC).strftime("%m-%d %H:%M"), x(lo + (hi - lo) * f))
        for f in ((0.0, 0.5, 1.0) if hi > lo else (0.0,))
    ]
    return chart


@dataclass
class Graph:
    """The lineage graph of one page of results: nodes in columns by generation, edges to parents."""

    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[tuple[float, float, float, float, bool]] = field(default_factory=list)  # x1 y1 x2 y2 struck
    width: int = WIDTH
    height: int = HEIGHT


COLUMN, ROW = 150, 34


def lineage_graph(items: list[dict[str, Any]]) -> Graph:
    """Columns by depth (a node sits right of its parents on this page), rows by score within a column."""
    by_id = {n["id"]: n for n in items}
    depth: dict[str, int] = {}
    for node in sorted(items, key=lambda n: n["submitted_at"]):  # parents are always older
        parents = [depth[p] for p in node["parents"] if p in depth]
        depth[node["id"]] = 1 + max(parents) if parents else 0
    columns: dict[int, list[dict[str, Any]]] = {}
    for node in items:
        columns.setdefault(depth[node["id"]], []).append(node)
    graph = Graph()
    placed: dict[str, tuple[float, float]] = {}
    for column, nodes in sorted(columns.items()):
        for row, node in enumerate(sorted(nodes, key=lambda n: -float(n["score"]))):
            px, py = 20 + column * COLUMN, 24 + row * ROW
            placed[node["id"]] = (px, py)
            graph.nodes.append({**node, "x": px, "y": py, "struck": node["excluded"] in _STRUCK})
    for node in items:
        for parent in node["parents"]:
            if parent in placed:
                x1, y1 = placed[parent]
                x2, y2 = placed[node["id"]]
                graph.edges.append(
                    (x1 + 8, y1, x2 - 8, y2, node["excluded"] in _STRUCK or by_id[parent]["excluded"] in _STRUCK)
                )
    graph.width = max(WIDTH, 20 + (max(columns) + 1) * COLUMN + 40) if columns else WIDTH
    graph.height = max(80, 24 + max((len(c) for c in columns.values()), default=1) * ROW)
    return graph


_STRUCK = ("invalid", "descends from an invalid result")


@dataclass
class Scatter:
    """Score against the guarded metric, with the Pareto frontier drawn through its points."""

    points: list[dict[str, Any]] = field(default_factory=list)
    frontier_paths: list[str] = field(default_factory=list)  # one line per track
    x_ticks: list[tuple[float, float]] = field(default_factory=list)
    y_ticks: list[tuple[float, float]] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT


def pareto_scatter(items: list[dict[str, Any]], metric: str) -> Scatter:
    """Place the page's measured results; the frontier line joins those the API marked `pareto`."""
    chart = Scatter()
    measured = [n for n in items if metric in n["metrics"] and n["status"] != "negative"]
    if not measured:
        return chart
    xs = [float(n["metrics"][metric]) for n in measured]
    ys = [float(n["score"]) for n in measured]
    xt, yt = nice_ticks(min(xs), max(xs)), nice_ticks(min(ys), max(ys))
    x = Scale(xt[0], xt[-1], PAD_LEFT, WIDTH - PAD_RIGHT)
    y = Scale(yt[0], yt[-1], HEIGHT - PAD_BOTTOM, PAD_TOP)
    chart.points = [{**n, "x": x(float(n["metrics"][metric])), "y": y(float(n["score"]))} for n in measured]
    for track in dict.fromkeys(p["track"] for p in chart.points):
        frontier = sorted((p for p in chart.points if p["pareto"] and p["track"] == track), key=lambda p: p["x"])
        path = "".join(f"{'M' if i == 0 else 'L'}{p['x']},{p['y']}" for i, p in enumerate(frontier))
        if path:
            chart.frontier_paths.append(path)
    chart.x_ticks, chart.y_ticks = [(t, x(t)) for t in xt], [(t, y(t)) for t in yt]
    return chart
