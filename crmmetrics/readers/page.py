"""The exporter's landing page (``/``): the balanced scorecard as a page for people.

Server-rendered HTML with inline CSS, no script and no build step: the 5 processes x 4
perspectives grid with each KPI's status, value and unit, target and change against the
previous period, the roll-up scores, the index, target attainment and when the values were
computed. Elements carry ``data-*`` attributes (process, perspective, metric, status) so that
tests and scrapers need not parse the text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from html import escape
from urllib.parse import quote

from crmmetrics.core.periods import Period, utcnow
from crmmetrics.core.vocabulary import Direction, KpiStatus, PeriodLabel, Perspective, Process
from crmmetrics.store.store import LatestObservation, Store
from .display import change_is_good, format_change, format_value
from .scorecard import Coverage, Kpi, Scorecard, build_scorecard

STATUS_TITLES = {KpiStatus.GREEN: "green", KpiStatus.AMBER: "amber", KpiStatus.RED: "red", None: "no data"}

_CSS = """
:root { --green:#1a7f37; --amber:#b07d00; --red:#c62a2f; --grey:#8a94a0; --ink:#1d2430;
  --muted:#5b6676; --line:#dfe3e8; --bg:#f4f6f8; --card:#fff; --accent:#2f5d8c; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  color:var(--ink); background:var(--bg); }
header { background:var(--ink); color:#fff; padding:18px 28px; display:flex; align-items:baseline;
  justify-content:space-between; flex-wrap:wrap; gap:8px; }
header h1 { margin:0; font-size:22px; font-weight:600; }
header p { margin:2px 0 0; color:#c6cdd6; font-size:13px; }
header nav a { color:#c6cdd6; margin-left:16px; }
main { padding:20px 28px 36px; }
.summary { display:flex; gap:14px; flex-wrap:wrap; margin-bottom:20px; }
.tile { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px 16px; min-width:150px; }
.tile .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.tile .big { font-size:30px; font-weight:650; margin-top:2px; }
.tile .big small { font-size:14px; color:var(--muted); font-weight:400; }
.tile.perspectives { display:flex; gap:22px; }
.tile.perspectives .big { font-size:22px; }
.counts span { display:inline-block; margin-right:12px; font-size:15px; }
.dot { display:inline-block; width:10px; height:10px; border-radius:50%; margin-right:5px; vertical-align:0; }
.dot.green { background:var(--green); } .dot.amber { background:var(--amber); }
.dot.red { background:var(--red); } .dot.none { background:#fff; border:2px solid var(--grey); }
.grid-wrap { overflow-x:auto; }
table.grid { border-collapse:separate; border-spacing:8px; width:100%; min-width:1100px; table-layout:fixed; }
.grid th { text-align:left; font-weight:600; padding:4px 6px; vertical-align:bottom; }
.grid th.process { vertical-align:top; background:var(--card); border:1px solid var(--line);
  border-radius:8px; padding:12px; }
.grid th .sub { display:block; color:var(--muted); font-weight:400; font-size:12px; }
td.cell, td.rollup { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:10px 12px;
  vertical-align:top; }
td.cell.empty { background:transparent; border-style:dashed; color:var(--grey); }
.score { display:flex; align-items:center; gap:8px; font-size:12px; color:var(--muted); margin-bottom:6px; }
.bar { flex:1; height:6px; background:#e9edf1; border-radius:3px; overflow:hidden; }
.bar i { display:block; height:100%; background:var(--accent); }
.score b { color:var(--ink); font-size:14px; min-width:28px; text-align:right; }
ul.kpis { list-style:none; margin:0; padding:0; }
li.kpi { border-left:4px solid var(--grey); padding:5px 8px; margin:6px 0; background:#fafbfc; border-radius:0 6px 6px 0; }
li.kpi.green { border-color:var(--green); } li.kpi.amber { border-color:var(--amber); } li.kpi.red { border-color:var(--red); }
.kpi .name { font-weight:600; }
.kpi .dims { color:var(--muted); font-weight:400; }
.kpi .name.dims { color:var(--ink); }
li.kpi-group { margin:8px 0 4px; }
li.kpi-group > .name { font-weight:600; margin-bottom:2px; }
li.kpi-group li.kpi { margin:4px 0; padding:3px 8px; }
.kpi .line { display:flex; justify-content:space-between; align-items:baseline; gap:8px; }
.kpi-value { font-size:17px; font-weight:650; white-space:nowrap; }
.kpi-status { font-size:11px; text-transform:uppercase; letter-spacing:.05em; font-weight:600; white-space:nowrap; }
.kpi-status.green { color:var(--green); } .kpi-status.amber { color:var(--amber); }
.kpi-status.red { color:var(--red); } .kpi-status.none { color:var(--grey); }
.meta { color:var(--muted); font-size:12px; display:flex; justify-content:space-between; gap:4px 8px; flex-wrap:wrap; }
.kpi-change { white-space:nowrap; margin-left:auto; }
.good { color:var(--green); } .bad { color:var(--red); }
.empty-note { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:14px 16px; margin-bottom:16px; }
.others { margin-top:28px; }
.others h2 { font-size:16px; margin:0 0 2px; }
.others p { color:var(--muted); margin:0 0 8px; font-size:12px; }
#other-metrics { border-collapse:collapse; background:var(--card); border:1px solid var(--line); min-width:760px; }
#other-metrics th, #other-metrics td { text-align:left; padding:5px 12px; border-bottom:1px solid var(--line); }
#other-metrics th { font-size:12px; color:var(--muted); font-weight:600; }
#other-metrics .num { text-align:right; white-space:nowrap; }
footer { color:var(--muted); font-size:12px; padding:0 28px 28px; }
.covers { color:var(--muted); font-size:11px; margin:-2px 0 6px; }
.kpi-period { white-space:nowrap; } .kpi-missing { color:var(--grey); font-style:italic; }
b.nodata, .big.nodata { color:var(--grey); font-weight:500; }
header p#reporting-period { color:#fff; }
code { background:#e9edf1; padding:1px 4px; border-radius:3px; }
.kpi-pacing { white-space:nowrap; } .kpi-pacing.on_track { color:var(--green); } .kpi-pacing.at_risk { color:var(--amber); }
.kpi-pacing.off_track { color:var(--red); font-weight:600; } .kpi-pacing.none { color:var(--grey); }
.kpi-anomaly.bad { color:var(--red); font-weight:600; } .kpi-anomaly.good { color:var(--green); font-weight:600; }
#value-chain svg.chain { width:100%; max-width:960px; height:auto; background:var(--card); border:1px solid var(--line); border-radius:8px; }
#value-chain svg.chain text { font:12px system-ui, "DejaVu Sans", sans-serif; }
#value-chain ul.chain-links { font-size:13px; padding-left:18px; } #value-chain li[data-linked='yes'] { font-weight:600; }
"""

_TREND_CSS = """
a.kpi-link { color:inherit; text-decoration:none; } a.kpi-link:hover .name { text-decoration:underline; }
svg.spark { display:block; width:100%; height:22px; margin-top:3px; }
"""


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


def _coverage(coverage: Coverage | None) -> str:
    """``3 of 4 KPIs with data``, with the counts as data attributes."""
    if coverage is None:
        return ""
    return (
        f"<span class='coverage' data-kpis-with-data='{coverage.with_data}' data-kpis='{coverage.total}'>"
        f"{escape(coverage.describe())}</span>"
    )


def _score_bar(score: float | None, label: str = "score", coverage: Coverage | None = None) -> str:
    covered = f"<div class='covers'>{_coverage(coverage)}</div>" if coverage is not None else ""
    if score is None:
        return f"<div class='score' data-score='none'><span>{label}</span><div class='bar'></div><b class='nodata'>no data</b></div>{covered}"
    return (
        f"<div class='score' data-score='{score:.1f}' title='{label} {score:.1f} of 100'><span>{label}</span>"
        f"<div class='bar'><i style='width:{score:.1f}%'></i></div><b>{score:.0f}</b></div>{covered}"
    )


def _period_text(start: datetime | None, end: datetime | None) -> str:
    """The period a value covers, as a ``<span class='kpi-period'>`` with ISO bounds."""
    if start is None or end is None:
        return ""
    period = Period(PeriodLabel.CURRENT, start, end)
    return (
        f"<span class='kpi-period' data-period-start='{start.isoformat()}Z' data-period-end='{end.isoformat()}Z' "
        f"title='from {start.isoformat()}Z (inclusive) to {end.isoformat()}Z (exclusive)'>{escape(period.describe())}</span>"
    )


def _target_text(kpi: Kpi) -> str:
    spec = kpi.standard.spec
    comparison = "≥" if kpi.direction == Direction.HIGHER_IS_BETTER else "≤"
    if kpi.target is None:
        return "target: none (no previous value)" if spec.target_rule == "previous" else "target: none"
    text = f"target {comparison} {format_value(kpi.target, kpi.unit)}"
    if spec.target_rule == "previous":
        text += f" (previous {spec.improvement * 100:+g}%)"
    elif spec.target_rule == "benchmark":
        text += " (benchmark)"
    return text


PACING_TITLES = {"on_track": "on track", "at_risk": "at risk", "off_track": "off track"}


def _outlook_line(kpi: Kpi, outlook: Any) -> str:
    """The pacing marker (where the period now running is heading) and the anomaly marker."""
    if outlook is None or kpi.value is None:  # no value: the card already says "no data"
        return ""
    if outlook.pacing is not None:
        pace = outlook.pacing
        forecast, p = pace.forecast, pace.probabilities
        period = outlook.forecast_period.describe() if outlook.forecast_period else ""
        title = (
            f"forecast for {period}: {format_value(forecast.value, kpi.unit)} (80% interval {format_value(forecast.lower, kpi.unit)} "
            f"to {format_value(forecast.upper, kpi.unit)}, {forecast.method}); P(green) {p['green']:.0%}, P(amber) {p['amber']:.0%}, "
            f"P(red) {p['red']:.0%}"
        )
        pacing = (
            f"<span class='kpi-pacing {pace.status}' data-pacing='{pace.status}' data-forecast='{forecast.value!r}' "
            f"data-p-green='{p['green']:.4f}' data-p-red='{p['red']:.4f}' title='{escape(title)}'>"
            f"{PACING_ICONS[pace.status]} {PACING_TITLES[pace.status]} {escape(period)}</span>"
        )
    else:
        pacing = f"<span class='kpi-pacing none' data-pacing='none' title='{escape(outlook.forecast_reason or '')}'>no forecast</span>"
    anomaly = ""
    scored = outlook.anomaly
    if scored is not None and scored.anomalous:
        period = outlook.anomaly_period.describe() if outlook.anomaly_period else ""
        anomaly = (
            f"<span class='kpi-anomaly {scored.surprise}' data-anomaly='{scored.surprise}' data-score='{scored.score:.2f}' "
            f"title='{escape(f'{period} is unusual: {format_value(scored.value, kpi.unit)} against {format_value(scored.expected, kpi.unit)} expected (score {scored.score:+.1f})')}'>"
            f"⚠ unusual {escape(period)} ({scored.surprise} surprise)</span>"
        )
    elif scored is not None:
        anomaly = f"<span class='kpi-anomaly none' data-anomaly='none' data-score='{scored.score:.2f}'></span>"
    return f"<div class='meta outlook'>{pacing}{anomaly}</div>"


PACING_ICONS = {"on_track": "➚", "at_risk": "➙", "off_track": "➘"}


def _kpi_item(kpi: Kpi, grouped: bool = False, trend: str = "", outlook: Any = None) -> str:
    """One KPI; ``grouped`` under its metric's name, it is named by its dimension values only."""
    status = kpi.status or "none"
    dims = " · ".join(v for _k, v in sorted(kpi.dimensions.items()))
    if grouped:
        name = f"<div class='name dims'>{escape(dims or 'total')}</div>"
    else:
        name = f"<div class='name'>{escape(kpi.name)}{f' <span class=dims>({escape(dims)})</span>' if dims else ''}</div>"
    # Every card leads to its KPI's own page (history, breakdown, standard, runs).
    name = f"<a class='kpi-link' href='/kpi/{quote(kpi.metric)}'>{name}</a>"
    good = change_is_good(kpi)
    if kpi.change is None:
        change = "<span class='kpi-change'>no previous value</span>"
    else:
        arrow = "▲ " if kpi.change > 0 else "▼ " if kpi.change < 0 else ""
        tone = "" if good is None else ("good" if good else "bad")
        change = f"<span class='kpi-change {tone}' title='against the previous period'>{arrow}{escape(format_change(kpi.change))}</span>"
    spec = kpi.standard.spec
    title = (
        f"{kpi.name}: red at {format_value(spec.red, kpi.unit)}, green at {format_value(spec.green, kpi.unit)}, "
        f"weight {kpi.weight:g}, score {'–' if kpi.score is None else f'{kpi.score:.1f}'}"
        + (f", owner {spec.owner}" if spec.owner else "")
    )
    return (
        f"<li class='kpi {status}' data-metric='{escape(kpi.metric)}' data-key='{escape(kpi.key)}' "
        f"data-status='{escape(kpi.status or 'no data')}' title='{escape(title)}'>{name}"
        f"<div class='line'><span class='kpi-value'>{escape(format_value(kpi.value, kpi.unit))}</span>"
        f"<span class='kpi-status {status}'><span class='dot {status}'></span>{escape(STATUS_TITLES[kpi.status])}</span></div>"
        f"<div class='meta'><span class='kpi-target'>{escape(_target_text(kpi))}</span>{change}</div>"
        f"<div class='meta'>{_period_text(kpi.period_start, kpi.period_end)}"
        + (f"<span class='kpi-missing'>{escape(kpi.missing_reason)}</span>" if kpi.value is None and kpi.missing_reason else "")
        + f"</div>{_outlook_line(kpi, outlook)}{trend}</li>"
    )


def _kpi_list(kpis: list[Kpi], trends: Mapping[tuple[str, str], str] | None = None, outlook: Any = None) -> str:
    """The KPIs of a cell; a metric judged per dimension value is one group under its name.

    ``trends``: (metric, dimensions key) -> a sparkline of its stored history; ``outlook``:
    the forecasts and anomalies (crmmetrics.readers.outlook.Outlook)."""
    trends = trends or {}

    def item(kpi: Kpi, grouped: bool = False) -> str:
        return _kpi_item(kpi, grouped, trends.get((kpi.metric, kpi.dimensions_key), ""),
                         outlook.of(kpi) if outlook is not None else None)

    items, by_metric = [], {}
    for kpi in kpis:
        by_metric.setdefault(kpi.metric, []).append(kpi)
    for metric_kpis in by_metric.values():
        if len(metric_kpis) == 1:
            items.append(item(metric_kpis[0]))
        else:
            inner = "".join(item(k, grouped=True) for k in metric_kpis)
            items.append(f"<li class='kpi-group'><div class='name'>{escape(metric_kpis[0].name)}</div><ul class='kpis'>{inner}</ul></li>")
    return "".join(items)


@dataclass(frozen=True)
class OtherMetric:
    """A metric without a standard: listed below the grid with its latest value."""

    key: str
    name: str
    process: str
    perspective: str
    value: str
    period: str = ""


def other_metrics(store: Store, scorecard: Scorecard) -> list[OtherMetric]:
    """The metrics that are not KPIs (no standard), with their current total or value count."""
    on_card = {kpi.metric for kpi in scorecard.kpis}
    current: dict[str, list[LatestObservation]] = {}
    periods: dict[str, str] = {}
    for observation in store.latest_observations():
        if observation.period_label == PeriodLabel.CURRENT:
            periods[observation.metric_key] = _period_text(observation.period_start, observation.period_end)
            if observation.value is not None:
                current.setdefault(observation.metric_key, []).append(observation)
    others = []
    for key, record in sorted(store.metric_records().items(), key=lambda item: (item[1].process, item[1].name)):
        if key in on_card:
            continue
        values = current.get(key, [])
        total = [o for o in values if not o.dimensions]
        if total:
            text = format_value(total[0].value, record.unit)
        elif values:
            text = f"{len(values)} values by {', '.join(sorted(values[0].dimensions))}"
        else:
            text = "no data"
        others.append(OtherMetric(key, record.name, record.process, record.perspective, text, periods.get(key, "")))
    return others


def _others_table(others: list[OtherMetric]) -> str:
    if not others:
        return ""
    rows = "".join(
        f"<tr data-metric='{escape(o.key)}'><td>{escape(o.name)} <code>{escape(o.key)}</code></td>"
        f"<td>{escape(Process(o.process).title)}</td><td>{escape(Perspective(o.perspective).title)}</td>"
        f"<td class='num'>{escape(o.value)}</td><td>{o.period}</td></tr>"
        for o in others
    )
    return (
        "<section class='others'><h2>Metrics without a standard</h2><p>Not on the scorecard until they have a standard "
        "(<code>crmmetrics standards set KEY ...</code>).</p><table id='other-metrics'><thead><tr><th>Metric</th>"
        f"<th>Process</th><th>Perspective</th><th class='num'>Current value</th><th>Period</th></tr></thead><tbody>{rows}</tbody></table></section>"
    )


def render_page(
    scorecard: Scorecard, now: datetime, others: list[OtherMetric] = (), trends: Mapping[tuple[str, str], str] | None = None,
    outlook: Any = None,
) -> str:
    """The scorecard page for ``scorecard``, rendered at ``now`` (naive UTC), with the metrics
    that are not on it (``others``) listed below, a sparkline per KPI (``trends``) and, with an
    ``outlook`` (crmmetrics.readers.outlook.Outlook), each KPI's pacing and anomaly and the value chain."""
    counts = scorecard.status_counts()
    index = "no data" if scorecard.index is None else f"{scorecard.index:.0f}"
    attainment = "–" if scorecard.attainment is None else f"{scorecard.attainment * 100:.0f}%"
    attained = sum(1 for k in scorecard.kpis if k.attained)
    judged = sum(1 for k in scorecard.kpis if k.attained is not None)
    perspective_tiles = "<div class='tile perspectives'>" + "".join(
        f"<div data-perspective='{p}'><div class='label'>{escape(p.title)}</div>"
        + (
            "<div class='big nodata'>no data</div>"
            if scorecard.perspectives.get(str(p)) is None
            else f"<div class='big'>{scorecard.perspectives[str(p)]:.0f}<small> / 100</small></div>"
        )
        + f"<div class='covers'>{_coverage(scorecard.perspective_coverage.get(str(p)))}</div></div>"
        for p in Perspective
    ) + "</div>"
    reporting_date = scorecard.reporting_date
    period_list = "; ".join(
        f"{_period_text(period.start, period.end)} ({count} KPI{'s' if count != 1 else ''})" for period, count in scorecard.periods
    )
    reporting = (
        f"<p id='reporting-period'>Reporting period{'s' if len(scorecard.periods) != 1 else ''}: {period_list} · data up to "
        f"<time id='reporting-date' datetime='{reporting_date.isoformat()}Z'>{_when(reporting_date)}</time> (exclusive)</p>"
        if reporting_date
        else "<p id='reporting-period'>Reporting period: none yet (no KPI has been computed)</p>"
    )
    head_cells = "".join(f"<th data-perspective='{q}'>{escape(q.title)}</th>" for q in Perspective)
    columns = "<colgroup><col style='width:180px'>" + "<col>" * len(Perspective) + "</colgroup>"
    rows = []
    for p in Process:
        cells = []
        for q in Perspective:
            kpis = scorecard.cell(str(p), str(q))
            if not kpis:
                cells.append(f"<td class='cell empty' data-process='{p}' data-perspective='{q}'>no KPI here</td>")
                continue
            cells.append(
                f"<td class='cell' data-process='{p}' data-perspective='{q}'>"
                f"{_score_bar(scorecard.cells.get((str(p), str(q))), coverage=scorecard.cell_coverage.get((str(p), str(q))))}"
                f"<ul class='kpis'>{_kpi_list(kpis, trends, outlook)}</ul></td>"
            )
        process_score = scorecard.processes.get(str(p))
        rows.append(
            f"<tr data-process='{p}'><th class='process' scope='row'>{escape(p.title)}"
            f"<span class='sub'>{len([k for k in scorecard.kpis if k.process == p])} KPIs</span>"
            f"{_score_bar(process_score, 'process', scorecard.process_coverage.get(str(p)))}</th>{''.join(cells)}</tr>"
        )
    perspective_row = "".join(
        f"<td class='rollup' data-perspective='{q}'>{_score_bar(scorecard.perspectives.get(str(q)), 'perspective', scorecard.perspective_coverage.get(str(q)))}</td>"
        for q in Perspective
    )
    note = ""
    if not scorecard.kpis:
        note = (
            "<div class='empty-note'>No KPIs yet: a metric becomes a KPI when it has a standard. Set one with "
            "<code>crmmetrics standards set KEY --target X --red R --green G</code> or import a standards file with "
            "<code>crmmetrics standards import config/standards.toml</code>.</div>"
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>CRM balanced scorecard · crmmetrics</title><style>{_CSS}{_TREND_CSS}</style></head>
<body>
<header><div><h1>CRM balanced scorecard</h1>
<p>Five CRM processes (Payne &amp; Frow) × four perspectives (Kaplan &amp; Norton) · values last computed
<time id="computed-at" datetime="{scorecard.computed_at.isoformat() + 'Z' if scorecard.computed_at else ''}">{_when(scorecard.computed_at)}</time></p>
{reporting}</div>
<nav><a href="/metrics">/metrics</a></nav></header>
<main>
{note}<section class="summary">
<div class="tile"><div class="label">Scorecard index</div><div class="big"><span id="index">{index}</span>{'<small> / 100</small>' if scorecard.index is not None else ''}</div>
<div class="covers" id="index-coverage">{_coverage(scorecard.coverage)}</div></div>
<div class="tile"><div class="label">Target attainment</div><div class="big"><span id="attainment">{attainment}</span>
<small> {attained} of {judged} KPIs</small></div></div>
<div class="tile counts"><div class="label">KPI status</div><div class="big" style="font-size:16px;margin-top:8px">
<span><span class="dot green"></span>{counts['green']} green</span><span><span class="dot amber"></span>{counts['amber']} amber</span>
<span><span class="dot red"></span>{counts['red']} red</span><span><span class="dot none"></span>{counts['no data']} no data</span></div></div>
{perspective_tiles}
</section>
<div class="grid-wrap"><table class="grid" id="scorecard-grid">
{columns}<thead><tr><th></th>{head_cells}</tr></thead>
<tbody>{''.join(rows)}
<tr class="rollups"><th scope="row">Perspective score</th>{perspective_row}</tr></tbody></table></div>
{chain_section(outlook) if outlook is not None else ''}
{_others_table(list(others))}
</main>
<footer>Score = clamp(100 × (value − red) / (green − red), 0, 100); green at or beyond the green threshold, red at or
beyond the red threshold, amber between. Cells, processes and perspectives are weighted means of their KPI scores; the
index is the mean of the perspective scores. Every score is over the KPIs with data only and says how many of its KPIs
those are; a KPI whose source has no rows for its period is "no data", never 0 or 100. Pacing: ➚ on track (P(green) ≥ 50%
and P(red) &lt; 20%), ➙ at risk, ➘ off track (P(red) ≥ 50%) for the period now running, from a forecast on the stored
history; ⚠ unusual: the latest period is an anomaly against the KPI's own history and season. Page rendered {_when(now)}.</footer>
</body></html>
"""


def kpi_trends(store: Store, scorecard: Scorecard, periods: int = 24, snapshots: list | None = None) -> dict[tuple[str, str], str]:
    """A sparkline of the last ``periods`` stored periods of every KPI on the scorecard
    (``snapshots``: the history, when already read)."""
    from .history import history_snapshots
    from .kpi_page import sparkline

    keys = {kpi.metric for kpi in scorecard.kpis}
    if snapshots is None:
        snapshots = history_snapshots(store, keys=keys) if keys else []
    by_metric: dict[str, list] = {}
    for snapshot in snapshots:
        if snapshot.metric_key in keys:
            by_metric.setdefault(snapshot.metric_key, []).append(snapshot)
    trends = {}
    for kpi in scorecard.kpis:
        recent = by_metric.get(kpi.metric, [])[-periods:]
        values = [s.current_values.get(kpi.dimensions_key) for s in recent]
        trends[(kpi.metric, kpi.dimensions_key)] = sparkline(
            values, f"{kpi.name}: {sum(v is not None for v in values)} stored periods, oldest to latest"
        )
    return trends


def landing_page(store: Store, outlook_cache: Any = None) -> str:
    """The page served at ``/`` (``outlook_cache``: a crmmetrics.readers.outlook.OutlookCache to share)."""
    from .outlook import OutlookCache

    scorecard = build_scorecard(store)
    cache = outlook_cache or OutlookCache()
    # one read of the history for the outlook and the sparklines (each metric's kept until it moves)
    snapshots = cache.history.snapshots(store, cache.history_keys(scorecard))
    outlook = cache.build(store, scorecard, snapshots)
    return render_page(scorecard, utcnow(), other_metrics(store, scorecard), kpi_trends(store, scorecard, snapshots=snapshots), outlook)


# --- the value chain ------------------------------------------------------------------------

_STAGES = (("employee_value", "Employee value"), ("customer_value", "Customer value"), ("shareholder_value", "Shareholder value"))


def _column(key: str) -> int:
    from .value_chain import _CUSTOMER, _EMPLOYEE

    return 0 if key in _EMPLOYEE else 1 if key in _CUSTOMER else 2


def chain_diagram(outlook: Any, names: Mapping[str, str] | None = None, width: int = 960) -> str:
    """An SVG of the service-profit chain: the KPIs analysed in three columns (employee,
    customer, shareholder value) and a line per analysis that found a link (solid, labelled
    with r and the lag) or none (dashed grey). Pairs with too little data get no line."""
    names = names or outlook.names
    keys = sorted({k for link in outlook.chain for k in (link.driver, link.outcome)}, key=lambda k: (_column(k), k))
    rows: dict[int, list[str]] = {0: [], 1: [], 2: []}
    for key in keys:
        rows[_column(key)].append(key)
    node_w, node_h, gap = 190, 34, 44
    height = 70 + max(len(r) for r in rows.values()) * (node_h + gap) if keys else 80
    xs = [20, (width - node_w) / 2, width - node_w - 20]
    where: dict[str, tuple[float, float]] = {}
    parts = [f"<svg class='chain' viewBox='0 0 {width} {height:.0f}' role='img' aria-label='The service-profit chain: links found between the KPIs'>",
             "<title>The service-profit chain: employee value to customer value to shareholder value</title>"]
    for column, (lens, title) in enumerate(_STAGES):
        parts.append(f"<text class='stage' x='{xs[column] + node_w / 2:.0f}' y='20' text-anchor='middle' font-weight='600'>{escape(title)}</text>")
        for row, key in enumerate(rows[column]):
            where[key] = (xs[column], 44 + row * (node_h + gap))
    for link in outlook.chain:
        if link.linked is None:
            continue
        (x1, y1), (x2, y2) = where[link.driver], where[link.outcome]
        if x1 == x2:  # two KPIs of one column (retention as a customer KPI): a bow on the right
            x1, x2, bow = x1 + node_w, x2 + node_w, 60.0
        else:
            x1, x2, bow = x1 + node_w, x2, 0.0
        y1, y2 = y1 + node_h / 2, y2 + node_h / 2
        # over periods bends up, across units down, so that both analyses of a pair show
        up = link.basis == "over_periods"
        mid_x, mid_y = (x1 + x2) / 2 + bow, (y1 + y2) / 2 + (-30 if up else 30)
        months = outlook.lag_months(link)
        lag = "same period" if not months else f"lag {months} mo"
        label = f"{'periods' if up else 'units'}: r {link.correlation:+.2f}, {lag}"
        colour = ("#1a7f37" if link.correlation > 0 else "#c62a2f") if link.linked else "#8a94a0"
        dash = "" if link.linked else " stroke-dasharray='5 4'"
        text_y = (y1 + y2) / 2 + (-19 if up else 27)
        parts.append(
            f"<g class='link' data-driver='{escape(link.driver)}' data-outcome='{escape(link.outcome)}' data-basis='{link.basis}' "
            f"data-linked='{'yes' if link.linked else 'no'}' data-correlation='{link.correlation:.4f}' data-lag-months='{months}' "
            f"data-observations='{link.observations}'><title>{escape(link.statement)}</title>"
            f"<path d='M{x1:.0f},{y1:.0f} Q{mid_x:.0f},{mid_y:.0f} {x2:.0f},{y2:.0f}' fill='none' stroke='{colour}' "
            f"stroke-width='{2.5 if link.linked else 1.2}'{dash}/>"
            f"<text x='{(x1 + x2) / 2 + bow / 2:.0f}' y='{text_y:.0f}' text-anchor='middle' font-size='11' fill='{colour}'>{escape(label)}</text>"
            "</g>"
        )
    for key, (x, y) in where.items():
        name = names.get(key, key)
        short = name if len(name) <= 27 else name[:26].rstrip() + "…"  # the full name is the node's title
        parts.append(
            f"<g class='node' data-metric='{escape(key)}'><title>{escape(name)} ({escape(key)})</title>"
            f"<rect x='{x:.0f}' y='{y:.0f}' width='{node_w}' height='{node_h}' rx='6' "
            f"fill='#fff' stroke='#2f5d8c'/><text x='{x + node_w / 2:.0f}' y='{y + 21:.0f}' text-anchor='middle'>{escape(short)}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def chain_section(outlook: Any, names: Mapping[str, str] | None = None) -> str:
    """The value-chain section of the page: the diagram and every analysis in words."""
    statement = escape(outlook.chain_statement())
    if not any(link.linked is not None for link in outlook.chain):
        body = f"<p class='chain-statement' data-linked='none'>{statement}</p>"
    else:
        def item(link: Any) -> str:
            linked = {True: "yes", False: "no", None: "not enough data"}[link.linked]
            return (f"<li data-driver='{escape(link.driver)}' data-outcome='{escape(link.outcome)}' data-basis='{link.basis}' "
                    f"data-linked='{linked}'>{escape(link.statement)}</li>")

        ordered = sorted(outlook.chain, key=lambda l: ({True: 0, False: 1, None: 2}[l.linked], l.driver, l.outcome, l.basis))
        judged = "".join(item(link) for link in ordered if link.linked is not None)
        unjudged = [link for link in ordered if link.linked is None]
        more = (
            f"<details><summary>{len(unjudged)} with too little data</summary><ul class='chain-links'>"
            + "".join(item(link) for link in unjudged) + "</ul></details>"
            if unjudged else ""
        )
        body = (
            f"<p class='chain-statement'>{statement}</p><div class='chain-wrap'>{chain_diagram(outlook, names)}</div>"
            f"<ul class='chain-links'>{judged}</ul>{more}"
        )
    pairs = "" if outlook.unit_pairs is not None else (
        "<p class='covers'>Across units: not analysed (which department serves which channels is read from the source, "
        "which this reader has not got).</p>"
    )
    return (
        "<section class='others' id='value-chain'><h2>The value chain</h2><p>Does employee value feed customer value, and customer "
        "value shareholder value (Heskett et al. 1994)? Changes over periods, and team against channel after what all units share; "
        f"a link is stated only when its 95% interval excludes 0 (<code>crmmetrics chain</code>).</p>{body}{pairs}</section>"
    )
