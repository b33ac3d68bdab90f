"""The KPI catalogue as Markdown, generated from the loaded plugins (docs/kpis.md).

One source of truth: each metric's definition, and each plugin module's docstring (its
conventions and its "Changes from the catalogue"), become the page; a test fails when the
committed page differs from what this produces for the built-in plugins.
"""

from __future__ import annotations

import inspect
import re

import pluggy

from crmmetrics.compute.registry import Registry
from crmmetrics.core.vocabulary import Process

HEADER = """\
# The KPI catalogue

Every metric the built-in plugins compute, by CRM process, with its definition, formula and
published source. This page is generated: `crmmetrics metrics docs > docs/kpis.md` (with only
the built-in plugins loaded; see the test `tests/test_catalogue_docs.py`). Percentages are 0-100
(`percent`: a share of a whole; `percent_unbounded`: a margin, uplift or return that may be below
0 or above 100); Prometheus gets them as 0-1 ratios and every unit in its base unit
([operations.md](operations.md#the-metric-model)).
The scorecard perspective, value lens, unit, direction (higher or lower is better), dimensions and
reporting period are those of each definition; `crmmetrics metrics list` shows the same with the
schedule in force.

## Coverage of the design catalogue

The design catalogue lists 58 KPIs. 52 are built in under their own key. Four were split or
renamed where one key mixed two things or the name was unclear:

| design catalogue | built in |
|---|---|
| `vc_retention_rate`, `vc_churn_rate` | `vc_active_retention_rate`, `vc_active_churn_rate` (non-contractual) and `vc_contract_retention_rate`, `vc_contract_churn_rate` (contractual), never mixed |
| `mci_multichannel_spend_index` | `mci_multichannel_spend_uplift` |
| `im_clv_forecast_accuracy` | `im_clv_forecast_correlation` and `im_clv_forecast_error` (one unit each) |

Two more split off a second number: `im_source_data_age` (from `im_data_freshness`) and
`pa_whale_curve_peak` (from `pa_unprofitable_customer_share`). The last two,
`pa_kpi_target_attainment` and `pa_scorecard_index`, are computed by the scorecard from the
standards rather than from CRM data: Prometheus `crmmetrics_scorecard_target_attainment_ratio`
and `crmmetrics_scorecard_index` (see [scorecard.md](scorecard.md)).

Column names follow the canonical data model ([data-model.md](data-model.md)) where the design
catalogue used others: `ordered_at` (catalogue `order_ts`), `acquired_at` (`acquisition_date`),
`churned_at` (`churn_date`), `hired_at`/`left_at`/`leave_type` (`hire_date`/`termination_date`/
`termination_type`); an assisted channel is one that is not `is_self_service`.

## Inputs: no data is no data

Each metric names the source tables (and columns) it needs ("Needs" below). When one has no
rows for the period, the value is missing with that reason ("no rows in interactions for
2026-11") and the scorecard shows "no data", never 0 or 100. `crmmetrics source check` says
which metrics your source can feed before you run anything.

## Variants

Where a published definition has a common variant, it is a typed parameter with the catalogue's
definition as default (`crmmetrics metrics set KEY PARAM=VALUE`):

| metric | parameter | variants |
|---|---|---|
| `vc_aov` | `basis` | `order` (default: net revenue per order) or `occasion` (per purchase occasion: a customer's orders on one day) |
| `sd_revenue_concentration_top20` | `top_share` | share of customers in the top group, 0.2 by default (the "top 20%"); e.g. 0.1 for the top decile |
| `mci_fcr` | `method` | `operational` (cases resolved at the first contact) or `survey` (FCR survey answers) |
| `vc_complaint_rate` | `active_window_days` | the customer base complaints are counted against (active in the last 365 days by default) |
| `vc_clv_simple`, `vc_clv_bgnbd_gg` and the KPIs sharing its fit | `margin_share`, `annual_discount_rate`, `horizon_months` (BG/NBD) | margin, discounting and horizon of the CLV |
| `pa_cost_to_serve`, `pa_crm_cost_per_active_customer` and the profitability KPIs | `cost_types` | which cost types count as serving (or CRM) costs |
| `mci_fcr`, `mci_channel_switch_rate`, `mci_self_service_containment` | `window_days` | how long after a contact a follow-up counts as the same issue |
| `pa_employee_engagement` | `engaged_threshold` | where on an answer's scale an employee counts as engaged |

Periods are a setting of every metric (`crmmetrics metrics set KEY --period quarter`): calendar
month, quarter or year, to-date, or a trailing window.
"""


def _rst_to_markdown(text: str) -> str:
    """The few reStructuredText habits of the plugin docstrings, in Markdown."""
    text = re.sub(r"^(.+)\n-{3,}\n", r"#### \1\n\n", text, flags=re.M)
    text = re.sub(r":(?:mod|func|class):`([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def catalogue_markdown(pm: pluggy.PluginManager, registry: Registry) -> str:
    lines = [HEADER]
    by_plugin = {}
    for definition in registry:
        by_plugin.setdefault(registry.plugin_of[definition.key], []).append(definition)
    for process in Process:
        lines.append(f"\n## {process.title}\n")
        for plugin_name in sorted(by_plugin):
            definitions = sorted((d for d in by_plugin[plugin_name] if d.process == process), key=lambda d: d.key)
            if not definitions:
                continue
            module = pm.get_plugin(plugin_name)
            doc = inspect.getdoc(module) or ""
            if doc and plugin_name == process.value:
                lines.append(_rst_to_markdown(doc).strip() + "\n")
            elif plugin_name != process.value:
                lines.append(f"From the plugin `{plugin_name}`.\n")
            lines.append("| key | name | perspective | lens | unit | better | dimensions | period |")
            lines.append("|---|---|---|---|---|---|---|---|")
            for d in definitions:
                better = "higher" if d.direction == "higher_is_better" else "lower"
                lines.append(
                    f"| `{d.key}` | {_cell(d.name)} | {d.perspective} | {d.value_lens} | {d.unit} | {better} "
                    f"| {', '.join(d.dimensions) or '-'} | {d.period} |"
                )
            lines.append("")
            for d in definitions:
                lines.append(f"**`{d.key}`: {_cell(d.name)}.** {_cell(d.description)}  ")
                lines.append(f"Formula: {_cell(d.formula) or '-'}  ")
                if d.parameters:
                    params = "; ".join(f"`{p.name}` = {p.default!r} ({_cell(p.description)})" for p in d.parameters)
                    lines.append(f"Parameters: {params}  ")
                if d.needs:
                    needs = d.needs if not callable(d.needs) else d.needs(d.default_params())
                    note = " (with the default parameters)" if callable(d.needs) else ""
                    lines.append(f"Needs: {', '.join(f'`{n}`' for n in needs)}{note}  ")
                lines.append(f"Source: {_cell(d.source) or '-'}\n")
    return "\n".join(lines).rstrip() + "\n"
