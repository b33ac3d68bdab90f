"""A page per KPI (``/kpi/KEY``): its definition, its history as a chart, its breakdown, the
history of its standard and its last runs.

Server-rendered HTML and SVG, no script: readable in a screenshot and in a terminal browser.
Every chart point carries its stored value (``data-value``, in the metric's own unit) and its
period (``data-period-start``/``data-period-end``) and has a ``<title>``; the bands carry the
thresholds they are drawn from (``data-red``, ``data-green``, ``data-target``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from html import escape
from typing import Any

from crmmetrics.core.periods import Period, utcnow
from crmmetrics.core.vocabulary import KpiStatus, PeriodLabel, Perspective, Process
from crmmetrics.store.standards import standard_history, standards_in_force
from crmmetrics.store.store import Store
from .history import Snapshot, history_snapshots
from .page import _CSS, _when
from .display import format_value
from .scorecard import Kpi, build_scorecard

_KPI_CSS = """
main.kpi-page { max-width:1100px; }
.kpi-page section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:14px 18px; margin-bottom:16px; }
.kpi-page h2 { font-size:16px; margin:0 0 8px; }
.kpi-page dl { display:grid; grid-template-columns:max-content 1fr; gap:4px 14px; margin:0; }
.kpi-page dt { color:var(--muted); } .kpi-page dd { margin:0; }
svg.chart { width:100%; height:auto; display:block; }
svg.chart text { font:12px system-ui, "DejaVu Sans", sans-serif; fill:#5b6676; }
.kpi-page table { border-collapse:collapse; width:100%; }
.kpi-page th, .kpi-page td { text-align:left; padding:4px 8px; border-bottom:1px solid var(--line); font-size:13px; }
.table-wrap { overflow-x:auto; }
.legend span { margin-right:14px; font-size:12px; color:var(--muted); }
.legend i { display:inline-block; width:12px; height:12px; vertical-align:-1px; margin-right:4px; border-radius:2px; }
a.kpi-link { color:inherit; text-decoration:none; } a.kpi-link:hover .name { text-decoration:underline; }
.narrow { display:none; }
@media (max-width:600px) { .wide { display:none; } .narrow { display:block; } }
.kpi-page td { white-space:nowrap; }
.kpi-page h3 { font-size:14px; margin:12px 0 6px; }
.pacing-status.on_track b { color:var(--green); } .pacing-status.at_risk b { color:var(--amber); } .pacing-status.off_track b { color:var(--red); }
tr.anomaly[data-surprise='bad'] td:last-child { color:var(--red); font-weight:600; } tr.anomaly[data-surprise='good'] td:last-child { color:var(--green); }
svg.spark { display:block; width:100%; height:22px; margin-top:3px; }
@media (max-width:600px) { main { padding:12px; } header { padding:12px; } .kpi-page section { padding:10px; } }
"""

BAND_COLOURS = {KpiStatus.RED: "#fbe3e4", KpiStatus.AMBER: "#fdf1d3", KpiStatus.GREEN: "#dcf1e1"}


def _segments(values: Sequence[float | None], point: Callable[[int, float], str]) -> list[str]:
    """The polyline point lists of a series, broken where a period has no value (a gap, not 0)."""
    segments, line = [], []
    for index, value in enumerate(values):
        if value is None:
            if line:
                segments.append(" ".join(line))
            line = []
        else:
            line.append(point(index, value))
    if line:
        segments.append(" ".join(line))
    return segments


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    step = (high - low) / (count - 1) if high > low else 1.0
    return [low + i * step for i in range(count)]


LINE_COLOURS = ("#1d2430", "#2f5d8c", "#b5472b", "#6b4c9a", "#2e7d6b", "#a0681c", "#5b6676", "#c2185b")


def history_chart(periods: Sequence[Period], lines: Sequence[tuple[str, Sequence[float | None]]], unit: str, title: str,
                  red: float | None = None, green: float | None = None, target: float | None = None,
                  width: int = 960, height: int = 300, labels: int = 8) -> str:
    """A line chart of values per period with the red/amber/green bands of a standard.

    ``lines``: (series label, one value per period, oldest first); the total is labelled
    ``total``. A missing value is a gap with a hollow mark on the axis ("no data"), never 0.
    """
    left, right, top, bottom = 70, 16, 16, 52
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _label, vals in lines for v in vals if v is not None]
    bounds = values + [x for x in (red, green, target) if x is not None]
    low, high = (min(bounds), max(bounds)) if bounds else (0.0, 1.0)
    pad = (high - low) * 0.1 or abs(high) * 0.1 or 1.0
    # No negative axis for values that cannot be negative (none below 0 is stored or drawn).
    low, high = (low - pad if low - pad >= 0 or low < 0 else 0.0), high + pad

    def y(value: float) -> float:
        return top + plot_h * (1 - (value - low) / (high - low))

    def x(index: int) -> float:
        return left + (plot_w * (index + 0.5) / max(len(periods), 1))

    total = len(periods) * len(lines)
    parts = [
        f"<svg class='chart history' viewBox='0 0 {width} {height}' role='img' aria-label='{escape(title)}' data-unit='{escape(unit)}'>",
        f"<title>{escape(title)}</title>",
        f"<desc>{len(values)} of {total} values stored, in {escape(unit)}"
        + (f"; red at {_fmt(red)}, green at {_fmt(green)}" if red is not None and green is not None else "") + "</desc>",
    ]
    if red is not None and green is not None:
        higher_better = green >= red
        bands = (
            [(KpiStatus.GREEN, green, high), (KpiStatus.AMBER, red, green), (KpiStatus.RED, low, red)] if higher_better
            else [(KpiStatus.RED, red, high), (KpiStatus.AMBER, green, red), (KpiStatus.GREEN, low, green)]
        )
        parts.append(f"<g class='bands' data-red='{_fmt(red)}' data-green='{_fmt(green)}'>")
        for name, a, b in bands:
            a, b = max(a, low), min(b, high)
            if b > a:
                parts.append(
                    f"<rect class='band {name}' data-band='{name}' x='{left}' y='{y(b):.1f}' "
                    f"width='{plot_w}' height='{y(a) - y(b):.1f}' fill='{BAND_COLOURS[name]}'><title>{name}</title></rect>"
                )
        parts.append("</g>")
    for tick in _ticks(low, high):
        parts.append(
            f"<line x1='{left}' x2='{left + plot_w}' y1='{y(tick):.1f}' y2='{y(tick):.1f}' stroke='#dfe3e8'/>"
            f"<text x='{left - 6}' y='{y(tick) + 4:.1f}' text-anchor='end'>{escape(format_value(tick, unit))}</text>"
        )
    if target is not None:
        parts.append(
            f"<line class='target' data-target='{_fmt(target)}' x1='{left}' x2='{left + plot_w}' y1='{y(target):.1f}' y2='{y(target):.1f}' "
            f"stroke='#2f5d8c' stroke-dasharray='6 4' stroke-width='1.5'><title>target {escape(format_value(target, unit))}</title></line>"
        )
    for number, (label, vals) in enumerate(lines):
        colour = LINE_COLOURS[number % len(LINE_COLOURS)]
        segments = _segments(vals, lambda index, value: f"{x(index):.1f},{y(value):.1f}")
        parts.append(f"<g class='series' data-series='{escape(label)}'>")
        parts.extend(f"<polyline points='{seg}' fill='none' stroke='{colour}' stroke-width='2'/>" for seg in segments)
        for index, (period, value) in enumerate(zip(periods, vals)):
            when = period.describe()
            name = "" if label == "total" else f"{label}, "
            attrs = f"data-period-start='{period.start.isoformat()}Z' data-period-end='{period.end.isoformat()}Z'"
            if value is None:
                parts.append(
                    f"<circle class='point nodata' {attrs} data-value='' cx='{x(index):.1f}' cy='{top + plot_h:.1f}' r='4' fill='#fff' "
                    f"stroke='#8a94a0' stroke-width='1.5'><title>{escape(name + when)}: no data</title></circle>"
                )
            else:
                parts.append(
                    f"<circle class='point' {attrs} data-value='{value!r}' cx='{x(index):.1f}' cy='{y(value):.1f}' r='3.5' fill='{colour}'>"
                    f"<title>{escape(name + when)}: {escape(format_value(value, unit))}</title></circle>"
                )
        parts.append("</g>")
    label_every = max(1, -(-len(periods) // labels))
    for index, period in enumerate(periods):
        if index % label_every == 0:
            parts.append(f"<text x='{x(index):.1f}' y='{top + plot_h + 18}' text-anchor='middle'>{escape(period.describe())}</text>")
    parts.append(
        f"<line x1='{left}' x2='{left}' y1='{top}' y2='{top + plot_h}' stroke='#5b6676'/>"
        f"<line x1='{left}' x2='{left + plot_w}' y1='{top + plot_h}' y2='{top + plot_h}' stroke='#5b6676'/>"
        f"<text x='14' y='{top + plot_h / 2:.0f}' transform='rotate(-90 14 {top + plot_h / 2:.0f})' text-anchor='middle'>value ({escape(unit)})</text>"
        f"<text x='{left + plot_w / 2:.0f}' y='{height - 6}' text-anchor='middle'>reporting period</text>"
    )
    if not periods:
        parts.append(f"<text x='{left + plot_w / 2:.0f}' y='{top + plot_h / 2:.0f}' text-anchor='middle'>no history stored yet</text>")
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(rows: Sequence[tuple[str, float | None]], unit: str, title: str, width: int = 960) -> str:
    """Horizontal bars, one per dimension value; a missing value is labelled "no data", no bar."""
    label_w, right = (220, 110) if width > 600 else (150, 70)
    bar_h, gap = 20, 8
    height = 10 + len(rows) * (bar_h + gap)
    values = [v for _l, v in rows if v is not None]
    low = min(0.0, min(values, default=0.0))
    high = max(0.0, max(values, default=1.0)) or 1.0
    span = (high - low) or 1.0
    plot_w = width - label_w - right

    def x(value: float) -> float:
        return label_w + plot_w * (value - low) / span

    parts = [f"<svg class='chart bars' viewBox='0 0 {width} {height}' role='img' aria-label='{escape(title)}' data-unit='{escape(unit)}'>",
             f"<title>{escape(title)}</title>"]
    for index, (label, value) in enumerate(rows):
        top = 5 + index * (bar_h + gap)
        parts.append(f"<text x='{label_w - 8}' y='{top + 14}' text-anchor='end'>{escape(label)}</text>")
        if value is None:
            parts.append(f"<g class='bar nodata' data-label='{escape(label)}' data-value=''><title>{escape(label)}: no data</title>"
                         f"<text x='{label_w + 4}' y='{top + 14}'>no data</text></g>")
            continue
        a, b = sorted((x(0.0), x(value)))
        parts.append(
            f"<g class='bar' data-label='{escape(label)}' data-value='{value!r}'><title>{escape(label)}: {escape(format_value(value, unit))}</title>"
            f"<rect x='{a:.1f}' y='{top}' width='{max(b - a, 1):.1f}' height='{bar_h}' fill='#2f5d8c'/>"
            f"<text x='{b + 6:.1f}' y='{top + 14}'>{escape(format_value(value, unit))}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def sparkline(values: Sequence[float | None], title: str, width: int = 120, height: int = 22) -> str:
    """A small trend line for a scorecard card (values oldest first; gaps where missing)."""
    present = [v for v in values if v is not None]
    if len(present) < 2:
        return ""
    low, high = min(present), max(present)
    span = (high - low) or 1.0
    step = width / max(len(values) - 1, 1)
    segments = _segments(values, lambda index, value: f"{index * step:.1f},{height - 2 - (height - 4) * (value - low) / span:.1f}")
    lines = "".join(f"<polyline points='{s}' fill='none' stroke='#2f5d8c' stroke-width='1.5'/>" for s in segments)
    data = escape(json.dumps(list(values)))
    return (f"<svg class='spark' viewBox='0 0 {width} {height}' preserveAspectRatio='none' role='img' data-values='{data}'>"
            f"<title>{escape(title)}</title>{lines}</svg>")


def chart_lines(snapshots: Sequence[Snapshot], max_lines: int = 8) -> list[tuple[str, list[float | None]]]:
    """The total per period; a metric reported only by dimension values gets one line per value."""
    if any(o.period_label == PeriodLabel.CURRENT and not o.dimensions for s in snapshots for o in s.observations):
        return [("total", [s.current() for s in snapshots])]
    combos = sorted({json.dumps(o.dimensions, sort_keys=True) for s in snapshots for o in s.observations if o.period_label == PeriodLabel.CURRENT})
    lines = []
    for combo in combos[:max_lines]:
        dims = json.loads(combo)
        lines.append((" · ".join(v for _k, v in sorted(dims.items())), [s.current(**dims) for s in snapshots]))
    return lines


def _pct(probability: float) -> str:
    return f"{probability * 100:.0f}%" if probability >= 0.005 or probability == 0 else "<1%"


def _basis(result: Any, forecast: Any) -> str:
    """How the forecast's method was chosen, in words."""
    if result.elapsed is not None:  # a to-date KPI: the end of the period now running
        return (f"from the value so far at {result.elapsed:.0%} of the period and {forecast.observations} earlier periods at "
                "the same point, chosen by leaving each out")
    return f"chosen by back-test on {forecast.observations} periods"


def outlook_section(kpis: Sequence[Kpi], outlook: Any, unit: str) -> str:
    """Forecast, pacing and anomalies of each KPI of the metric (the total first)."""
    from .anomaly import MIN_CHANGES, THRESHOLD
    from .forecast import OFF_TRACK_MIN_RED, ON_TRACK_MAX_RED, ON_TRACK_MIN_GREEN
    from .page import PACING_TITLES

    if not kpis:
        return ("<section id='outlook'><h2>Forecast and anomalies</h2><p>No standard: a forecast is judged against a standard's "
                "thresholds (<code>crmmetrics standards set</code>).</p></section>")
    parts = []
    for kpi in kpis:
        result = outlook.of(kpi)
        dims = " · ".join(v for _k, v in sorted(kpi.dimensions.items()))
        heading = f"<h3>{escape(dims)}</h3>" if dims else ""
        spec = kpi.standard.spec
        thresholds = f"red at {escape(format_value(spec.red, unit))}, green at {escape(format_value(spec.green, unit))}"
        if result is not None and result.pacing is not None:
            pace, forecast = result.pacing, result.pacing.forecast
            p = pace.probabilities
            period = result.forecast_period.describe() if result.forecast_period else ""
            pacing = (
                f"<div class='pacing' data-key='{escape(kpi.key)}' data-pacing='{pace.status}' data-forecast='{forecast.value!r}' "
                f"data-lower='{forecast.lower!r}' data-upper='{forecast.upper!r}' data-method='{forecast.method}' "
                f"data-p-green='{p['green']!r}' data-p-amber='{p['amber']!r}' data-p-red='{p['red']!r}' "
                f"data-red='{spec.red!r}' data-green='{spec.green!r}'><dl>"
                f"<dt>Forecast for {escape(period)}</dt><dd class='forecast'>{escape(format_value(forecast.value, unit))} "
                f"(80% interval {escape(format_value(forecast.lower, unit))} to {escape(format_value(forecast.upper, unit))}; "
                f"method {forecast.method}, {_basis(result, forecast)})</dd>"
                f"<dt>Thresholds</dt><dd>{thresholds}</dd>"
                f"<dt>Chance of ending</dt><dd class='probabilities'>green {_pct(p['green'])} · amber {_pct(p['amber'])} · red {_pct(p['red'])}</dd>"
                f"<dt>Pacing</dt><dd class='pacing-status {pace.status}'><b>{PACING_TITLES[pace.status]}</b> (off track: P(red) ≥ "
                f"{OFF_TRACK_MIN_RED:.0%}; on track: P(green) ≥ {ON_TRACK_MIN_GREEN:.0%} and P(red) &lt; {ON_TRACK_MAX_RED:.0%}; else at risk)</dd>"
                "</dl></div>"
            )
        else:
            reason = result.forecast_reason if result is not None else "no forecast"
            pacing = f"<div class='pacing' data-key='{escape(kpi.key)}' data-pacing='none'><p>{escape(reason or '')} (thresholds: {thresholds}).</p></div>"
        if result is not None and result.anomaly is not None:
            scored = result.anomaly
            verdict = f"unusual ({scored.surprise} surprise)" if scored.anomalous else "not unusual"
            latest = (
                f"<p class='anomaly-latest' data-score='{scored.score!r}' data-flagged='{'yes' if scored.anomalous else 'no'}'>"
                f"{escape(result.anomaly_period.describe() if result.anomaly_period else '')}: {escape(format_value(scored.value, unit))} "
                f"against {escape(format_value(scored.expected, unit))} expected, score {scored.score:+.1f}: <b>{verdict}</b> "
                f"(flagged at |score| ≥ {THRESHOLD:g})</p>"
            )
        else:
            reason = result.anomaly_reason if result is not None else ""
            latest = f"<p class='anomaly-latest' data-flagged='none'>{escape(reason or '')}</p>"
        flagged = result.flagged if result is not None else ()
        rows = "".join(
            f"<tr class='anomaly' data-period-start='{period.start.isoformat()}Z' data-score='{s.score!r}' data-direction='{s.direction}' "
            f"data-surprise='{s.surprise}'><td>{escape(period.describe())}</td><td>{escape(format_value(s.value, unit))}</td>"
            f"<td>{escape(format_value(s.expected, unit))}</td><td>{s.score:+.1f}</td><td>{s.direction}</td><td>{s.surprise} surprise</td></tr>"
            for period, s in flagged
        )
        table = (
            "<div class='table-wrap'><table class='anomalies'><thead><tr><th>Period</th><th>Value</th><th>Expected</th><th>Score</th>"
            f"<th>Moved</th><th>For the KPI</th></tr></thead><tbody>{rows}</tbody></table></div>"
            if rows else f"<p class='no-anomalies'>No anomaly in the stored history (a period is scored from the {MIN_CHANGES}th change over its lag on).</p>"
        )
        parts.append(f"{heading}{pacing}<h3>Anomalies</h3>{latest}{table}")
    return (
        "<section id='outlook'><h2>Forecast, pacing and anomalies</h2><p class='legend'>The period now running, forecast from the "
        "stored history; the probabilities are those of the forecast's distribution on each side of the thresholds "
        "(docs/scorecard.md).</p>" + "".join(parts) + "</section>"
    )


def kpi_page(store: Store, key: str, outlook_cache: Any = None) -> str | None:
    """The page of metric ``key``; None if no plugin defines it (``outlook_cache``: a
    crmmetrics.readers.outlook.OutlookCache to share with the other readers)."""
    from .outlook import OutlookCache

    records = store.metric_records()
    record = records.get(key)
    if record is None:
        return None
    snapshots = history_snapshots(store, keys=[key])
    standards = [s for s in standards_in_force(store) if s.metric == key and not s.dimensions]
    standard = standards[0] if standards else None
    scorecard = build_scorecard(store)
    metric_kpis = sorted((k for k in scorecard.kpis if k.metric == key), key=lambda k: (bool(k.dimensions), k.key))
    # this metric's KPIs only, from the history already read: a request computes no other KPI
    outlook = (outlook_cache or OutlookCache()).build(store, replace(scorecard, kpis=metric_kpis), snapshots, chain=False, partial=True)
    kpis = [k for k in metric_kpis if not k.dimensions]
    target = kpis[0].target if kpis else (standard.spec.target if standard else None)
    periods = [Period(PeriodLabel.CURRENT, s.period_start, s.period_end) for s in snapshots]
    lines = chart_lines(snapshots)
    bands = (standard.spec.red if standard else None, standard.spec.green if standard else None, target)
    title = f"{record.name} per reporting period, in {record.unit}"
    # Two renderings, one shown by width (no script): text stays legible on a phone.
    chart = (
        f"<div class='wide'>{history_chart(periods, lines, record.unit, title, *bands)}</div>"
        f"<div class='narrow' aria-hidden='true'>{history_chart(periods, lines, record.unit, title, *bands, width=420, height=260, labels=3)}</div>"
    )
    if len(lines) > 1:
        chart += "<p class='legend'>" + "".join(
            f"<span><i style='background:{LINE_COLOURS[i % len(LINE_COLOURS)]}'></i>{escape(label)}</span>" for i, (label, _v) in enumerate(lines)
        ) + "</p>"
    legend = (
        "<p class='legend'><span><i style='background:#dcf1e1'></i>green</span><span><i style='background:#fdf1d3'></i>amber</span>"
        "<span><i style='background:#fbe3e4'></i>red</span><span><i style='background:none;border-top:2px dashed #2f5d8c;border-radius:0'></i>target</span></p>"
        if standard else "<p class='legend'>No standard: no target or thresholds to draw (<code>crmmetrics standards set</code>).</p>"
    )
    # The breakdown of the latest period: one chart per dimension.
    latest = [o for o in store.latest_observations() if o.metric_key == key and o.period_label == PeriodLabel.CURRENT]
    breakdown_parts = []
    period_text = ""
    if latest:
        period_text = Period(PeriodLabel.CURRENT, latest[0].period_start, latest[0].period_end).describe()
    for dimension in json.loads(record.dimensions):
        grouped: dict[str, list[float | None]] = defaultdict(list)
        for o in latest:
            if dimension in o.dimensions:
                label = " · ".join(f"{v}" for k, v in sorted(o.dimensions.items()) if k == dimension or len(o.dimensions) > 1)
                grouped[label].append(o.value)
        rows = [(label, vals[0]) for label, vals in sorted(grouped.items())]
        if rows:
            breakdown_parts.append(
                f"<h3 data-dimension='{escape(dimension)}'>By {escape(dimension.replace('_', ' '))}</h3>"
                + f"<div class='wide'>{bar_chart(rows, record.unit, f'{record.name} by {dimension}, {period_text}, in {record.unit}')}</div>"
                + f"<div class='narrow' aria-hidden='true'>{bar_chart(rows, record.unit, f'{record.name} by {dimension}, {period_text}, in {record.unit}', width=420)}</div>"
            )
    breakdown = "".join(breakdown_parts) or "<p>No breakdown: this metric has no dimensions, or no values for the latest period.</p>"
    changes = standard_history(store, key, {})
    change_rows = "".join(
        f"<tr data-change-id='{c.id}'><td>{_when(c.changed_at)}</td><td>{escape(c.changed_by)}</td><td>{escape(c.origin)}{' (' + escape(c.via) + ')' if c.via else ''}</td>"
        f"<td>{'' if c.target is None else escape(format_value(c.target, record.unit))}{' (' + escape(c.target_rule) + ')' if c.target_rule != 'fixed' else ''}</td>"
        f"<td>{escape(format_value(c.red, record.unit))}</td><td>{escape(format_value(c.green, record.unit))}</td><td>{c.weight:g}</td>"
        f"<td>{_when(c.valid_from)}</td><td>{'retired' if c.retired else ''}</td></tr>"
        for c in reversed(changes)
    ) or "<tr><td colspan='9'>No standard has been recorded for this metric.</td></tr>"
    runs = store.runs(key, limit=15)
    backfilled = store.backfilled_run_ids(r.id for r in runs)
    run_rows = "".join(
        f"<tr data-run-id='{r.id}' data-status='{escape(r.status)}'><td>{r.id}</td><td>{_when(r.started_at)}</td><td>{escape(r.status)}</td>"
        f"<td>{r.duration_seconds:.3f} s</td><td>{r.rows}</td><td>{'backfill' if r.id in backfilled else 'live'}</td><td>{escape(r.error or '')}</td></tr>"
        for r in runs
    ) or "<tr><td colspan='7'>No runs yet.</td></tr>"
    process = Process(record.process).title if record.process in {str(p) for p in Process} else record.process
    perspective = Perspective(record.perspective).title if record.perspective in {str(p) for p in Perspective} else record.perspective
    standard_text = (
        f"red at {escape(format_value(standard.spec.red, record.unit))}, green at {escape(format_value(standard.spec.green, record.unit))}"
        + (f", target {escape(format_value(target, record.unit))}" if target is not None else "")
        if standard else "none"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(record.name)} · crmmetrics</title><style>{_CSS}{_KPI_CSS}</style></head>
<body>
<header><div><h1>{escape(record.name)}</h1><p><code style="background:#3a4556">{escape(key)}</code> · {escape(process)} · {escape(perspective)}
{(' · latest period ' + escape(period_text)) if period_text else ''}</p></div><nav><a href="/">scorecard</a><a href="/metrics">/metrics</a></nav></header>
<main class="kpi-page" data-metric="{escape(key)}">
<section id="definition"><h2>Definition</h2><dl>
<dt>What it measures</dt><dd>{escape(record.description)}</dd>
<dt>Formula</dt><dd>{escape(record.formula) or '–'}</dd>
<dt>Source</dt><dd>{escape(record.source) or '–'}</dd>
<dt>Unit</dt><dd>{escape(record.unit)} ({escape(record.direction.replace('_', ' '))})</dd>
<dt>Standard</dt><dd id="standard">{standard_text}</dd>
</dl></section>
<section id="history"><h2>Value per reporting period</h2>{legend}{chart}</section>
{outlook_section(metric_kpis, outlook, record.unit)}
<section id="breakdown"><h2>Breakdown{(' for ' + escape(period_text)) if period_text else ''}</h2>{breakdown}</section>
<section id="standard-history"><h2>History of its standard</h2><div class="table-wrap"><table><thead><tr><th>Changed</th><th>By</th><th>How</th>
<th>Target</th><th>Red</th><th>Green</th><th>Weight</th><th>Valid from</th><th></th></tr></thead><tbody>{change_rows}</tbody></table></div></section>
<section id="runs"><h2>Last runs</h2><div class="table-wrap"><table><thead><tr><th>Run</th><th>Started</th><th>Status</th><th>Duration</th><th>Rows</th>
<th>Kind</th><th>Error</th></tr></thead><tbody>{run_rows}</tbody></table></div></section>
</main><footer>Page rendered {_when(utcnow())}.</footer></body></html>
"""
