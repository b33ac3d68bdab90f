"""The scorecard's Prometheus families: per KPI its target, thresholds, status, score, change and
weight (by dimension set, like the values), then the roll-ups' scores, coverage and KPI counts by
status. The names are made in crmmetrics.readers.families; the model and its reasoning are in
docs/operations.md."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.samples import Sample

from crmmetrics.core.definitions import EXPORT_UNITS
from crmmetrics.core.vocabulary import KpiStatus
from .families import GaugeFamilies, change_family, score_family, status_family, target_family, threshold_family, weight_family
from .scorecard import STATUS_VALUES, Kpi, Scorecard


STATUS_LABELS = tuple(KpiStatus)


def _kpi_samples(kpi: Kpi, names: dict[tuple[str, tuple[str, ...]], tuple[tuple[str, str], ...]]) -> list[tuple[str, str, Sample]]:
    """One KPI's samples (family name, help, sample); ``names``: the families' names and help by
    unit and dimension set, made once per render."""
    dims = tuple(kpi.dimensions)
    named = names.get((kpi.unit, dims))
    if named is None:
        suffix = EXPORT_UNITS[kpi.unit].suffix
        named = names[(kpi.unit, dims)] = (
            (target_family(kpi.unit, dims), f"Target in force for a KPI, in {suffix}"),
            (threshold_family("red", kpi.unit, dims), f"The red threshold of a KPI, in {suffix}"),
            (threshold_family("green", kpi.unit, dims), f"The green threshold of a KPI, in {suffix}"),
            (status_family(dims), "Status of a KPI: 0 red, 1 amber, 2 green (absent without a value)"),
            (score_family(dims), "Score of a KPI, 0-100, from its red and green thresholds"),
            (change_family(dims), "Change of a KPI against the previous period: (current - previous) / |previous|"),
            (weight_family(dims), "Weight of a KPI in the scorecard roll-ups"),
        )
    target, red, green, status, score, change, weight = named
    # one label dict for all of the KPI's samples (the exposition renders its text once)
    labels = {"metric": kpi.metric, "process": kpi.process, "perspective": kpi.perspective, **kpi.dimensions}
    base = EXPORT_UNITS[kpi.unit]
    spec = kpi.standard.spec
    values: list[tuple[tuple[str, str], float]] = []
    if kpi.target is not None:
        values.append((target, base.to_base(kpi.target)))
    values += [(red, base.to_base(spec.red)), (green, base.to_base(spec.green))]
    if kpi.status is not None:
        values += [(status, STATUS_VALUES[kpi.status]), (score, kpi.score)]
    if kpi.change is not None:
        values.append((change, kpi.change))
    values.append((weight, kpi.weight))
    return [(name, documentation, Sample(name, labels, value)) for (name, documentation), value in values]


def scorecard_families(scorecard: Scorecard, memo: dict[int, Any] | None = None) -> Iterator[Metric]:
    """The scorecard's Prometheus families (the model: crmmetrics.readers.families, docs/operations.md).

    Per KPI, families by dimension set like the values: a target and thresholds in the base
    unit of the KPI's metric, a status, a score, a change and a weight. Then the roll-ups and
    the number of KPIs by status per roll-up (``no_data``: KPIs without a current value).

    ``memo``: a dict a reader keeps between renders, with a scorecard evaluated with a memo too
    (crmmetrics.readers.scorecard.evaluate): a KPI that is the same object as last time keeps its samples.
    """
    kpi_families = GaugeFamilies()
    names: dict[tuple[str, tuple[str, ...]], tuple[tuple[str, str], ...]] = {}
    kept: dict[int, Any] = {}
    for kpi in scorecard.kpis:
        known = memo.get(id(kpi)) if memo is not None else None
        samples = known[1] if known is not None and known[0] is kpi else _kpi_samples(kpi, names)
        kept[id(kpi)] = (kpi, samples)  # the KPI kept alive with its samples: its id is not reused
        for name, documentation, sample in samples:
            kpi_families.append(name, documentation, sample)
    if memo is not None:
        memo.clear()
        memo.update(kept)
    yield from kpi_families

    cell = Metric("crmmetrics_scorecard_cell_score", "Weighted mean score of the KPIs of one process in one perspective, 0-100", "gauge")
    for (process, perspective), value in scorecard.cells.items():
        if value is not None:
            cell.samples.append(Sample(cell.name, {"process": process, "perspective": perspective}, value))
    process_score = Metric("crmmetrics_scorecard_process_score", "Weighted mean score of the KPIs of one CRM process, 0-100", "gauge")
    for process, value in scorecard.processes.items():
        if value is not None:
            process_score.samples.append(Sample(process_score.name, {"process": process}, value))
    perspective_score = Metric(
        "crmmetrics_scorecard_perspective_score", "Weighted mean score of the KPIs of one scorecard perspective, 0-100", "gauge"
    )
    for perspective, value in scorecard.perspectives.items():
        if value is not None:
            perspective_score.samples.append(Sample(perspective_score.name, {"perspective": perspective}, value))
    index = Metric("crmmetrics_scorecard_index", "Balanced scorecard index: mean of the perspective scores, 0-100", "gauge")
    if scorecard.index is not None:
        index.samples.append(Sample(index.name, {}, scorecard.index))
    attainment = Metric("crmmetrics_scorecard_target_attainment_ratio", "Share (0-1) of KPIs at or beyond their target", "gauge")
    if scorecard.attainment is not None:
        attainment.samples.append(Sample(attainment.name, {}, scorecard.attainment))
    yield from (cell, process_score, perspective_score, index, attainment)
    yield from _coverage(scorecard)
    yield from _kpi_counts(scorecard)


def _coverage(scorecard: Scorecard) -> Iterator[Metric]:
    """Coverage of each roll-up: the share (0-1) of its KPIs with a current value, which are the
    ones its score is computed over. A roll-up without KPIs has no coverage (no sample)."""
    levels = (
        ("crmmetrics_scorecard_coverage_ratio", "on the scorecard", {(): scorecard.coverage}),
        ("crmmetrics_scorecard_cell_coverage_ratio", "of one process in one perspective",
         {(("process", p), ("perspective", q)): c for (p, q), c in scorecard.cell_coverage.items()}),
        ("crmmetrics_scorecard_process_coverage_ratio", "of one CRM process",
         {(("process", p),): c for p, c in scorecard.process_coverage.items()}),
        ("crmmetrics_scorecard_perspective_coverage_ratio", "of one scorecard perspective",
         {(("perspective", q),): c for q, c in scorecard.perspective_coverage.items()}),
    )
    for name, what, coverages in levels:
        family = Metric(name, f"Share (0-1) of the KPIs {what} that have a current value (the ones scored)", "gauge")
        for labels, coverage in sorted(coverages.items()):
            if coverage.ratio is not None:
                family.samples.append(Sample(name, dict(labels), coverage.ratio))
        yield family


def _kpi_counts(scorecard: Scorecard) -> Iterator[Metric]:
    """KPIs by status (``no_data`` included), for the whole scorecard and per roll-up: summing a
    family over ``status`` gives the KPIs of the roll-up, so coverage is n (with data) of m."""
    levels = (
        ("crmmetrics_scorecard_kpis", "on the scorecard", ()),
        ("crmmetrics_scorecard_cell_kpis", "of one process in one perspective", ("process", "perspective")),
        ("crmmetrics_scorecard_process_kpis", "of one CRM process", ("process",)),
        ("crmmetrics_scorecard_perspective_kpis", "of one scorecard perspective", ("perspective",)),
    )
    for name, what, keys in levels:
        counts: dict[tuple[str, ...], dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATUS_LABELS, 0))
        for kpi in scorecard.kpis:
            counts[tuple(getattr(kpi, key) for key in keys)][kpi.status or KpiStatus.NO_DATA] += 1
        family = Metric(name, f"KPIs {what} by status (no_data: no current value)", "gauge")
        for group, by_status in sorted(counts.items()):
            for status, count in by_status.items():
                family.samples.append(Sample(name, {**dict(zip(keys, group)), "status": status}, count))
        yield family
