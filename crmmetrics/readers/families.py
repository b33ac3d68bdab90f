"""The names of the Prometheus families crmmetrics exports: one place for the metric model.

Every family has one unit (named at the end, in base units: see
``crmmetrics.core.definitions.EXPORT_UNITS``) and one label set. A metric's total and its breakdown
by a set of dimensions go into different families, the breakdown family naming its dimensions
(sorted, joined by ``_and_``) after ``_by_``::

    crmmetrics_metric_ratio{metric, process, perspective, period}
    crmmetrics_metric_by_segment_ratio{metric, process, perspective, period, segment}
    crmmetrics_kpi_by_channel_and_channel_category_status{metric, process, perspective, channel, channel_category}

so that ``sum by (segment) (crmmetrics_metric_by_segment_customers{metric="sd_active_customers",
period="current"})`` adds customers to customers and never counts the total twice. The
exporter, the scorecard, the dashboards and the alert rules all build names here; the list of
families, the reasoning and the stability policy are in docs/operations.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import Metric
from prometheus_client.samples import Sample

from crmmetrics.core.definitions import EXPORT_UNITS

PREFIX = "crmmetrics"


def family(subject: str, quantity: str = "", dimensions: Iterable[str] = ()) -> str:
    """``crmmetrics_<subject>[_by_<dimensions>][_<quantity>]``."""
    parts = [PREFIX, subject]
    dims = sorted(dimensions)
    if dims:
        parts.append("by_" + "_and_".join(dims))
    if quantity:
        parts.append(quantity)
    return "_".join(parts)


def unit_suffix(unit: str) -> str:
    """The family suffix of a crmmetrics unit (``percent`` -> ``ratio``, ``hours`` -> ``seconds``)."""
    return EXPORT_UNITS[unit].suffix


def value_family(unit: str, dimensions: Iterable[str] = ()) -> str:
    """Values of metrics in ``unit`` (total, or broken down by ``dimensions``)."""
    return family("metric", unit_suffix(unit), dimensions)


def target_family(unit: str, dimensions: Iterable[str] = ()) -> str:
    return family("kpi", f"target_{unit_suffix(unit)}", dimensions)


def threshold_family(threshold: str, unit: str, dimensions: Iterable[str] = ()) -> str:
    """``threshold``: ``red`` or ``green``."""
    return family("kpi", f"{threshold}_threshold_{unit_suffix(unit)}", dimensions)


def status_family(dimensions: Iterable[str] = ()) -> str:
    return family("kpi", "status", dimensions)


def score_family(dimensions: Iterable[str] = ()) -> str:
    return family("kpi", "score", dimensions)


def change_family(dimensions: Iterable[str] = ()) -> str:
    return family("kpi", "change_ratio", dimensions)


def weight_family(dimensions: Iterable[str] = ()) -> str:
    return family("kpi", "weight", dimensions)


# --- building families ----------------------------------------------------------------------


class GaugeFamilies:
    """Gauge families created on first use, so that each dimension set and unit gets its own
    (the scorecard's and the outlook's)."""

    def __init__(self) -> None:
        self.families: dict[str, Metric] = {}

    def add(self, name: str, documentation: str, labels: dict[str, str], value: float) -> None:
        """A sample with ``labels``, not copied: the samples of one KPI share one dict (and the
        exposition renders its label text once), so it must not change afterwards."""
        self.append(name, documentation, Sample(name, labels, value))

    def append(self, name: str, documentation: str, sample: Sample) -> None:
        family = self.families.get(name)
        if family is None:
            family = self.families[name] = Metric(name, documentation, "gauge")
        family.samples.append(sample)

    def __iter__(self) -> Iterator[Metric]:
        return iter(self.families[name] for name in sorted(self.families))


PERIOD_START = family("metric", "period_start_timestamp_seconds")
PERIOD_END = family("metric", "period_end_timestamp_seconds")
COMPUTED = family("metric", "computed_timestamp_seconds")
INFO = family("metric", "info")


# --- the outlook (crmmetrics.readers.outlook): forecasts, pacing, anomalies, the value chain ---------


def forecast_family(unit: str, dimensions: Iterable[str] = (), bound: str = "") -> str:
    """``crmmetrics_kpi[_by_<dims>]_forecast[_lower|_upper]_<unit>``: the forecast of the period
    now running (``bound``: ``lower``/``upper`` of its prediction interval), in the KPI's unit."""
    return family("kpi", f"forecast_{bound + '_' if bound else ''}{unit_suffix(unit)}", dimensions)


def pacing_family(dimensions: Iterable[str] = ()) -> str:
    return family("kpi", "pacing_status", dimensions)


def pacing_probability_family(dimensions: Iterable[str] = ()) -> str:
    return family("kpi", "pacing_probability_ratio", dimensions)


def anomaly_family(quantity: str, dimensions: Iterable[str] = ()) -> str:
    """``quantity``: ``score``, ``flagged`` or ``surprise``."""
    return family("kpi", f"anomaly_{quantity}", dimensions)


FORECAST_PERIOD_START = family("kpi", "forecast_period_start_timestamp_seconds")
FORECAST_PERIOD_END = family("kpi", "forecast_period_end_timestamp_seconds")
CHAIN_CORRELATION = family("value_chain", "correlation_ratio")
CHAIN_LOWER = family("value_chain", "correlation_lower_ratio")
CHAIN_UPPER = family("value_chain", "correlation_upper_ratio")
CHAIN_LAG = family("value_chain", "lag_seconds")
CHAIN_LINKED = family("value_chain", "linked")
CHAIN_OBSERVATIONS = family("value_chain", "observations")
