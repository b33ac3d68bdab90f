"""``crmmetrics models show``: the models behind the model-based KPIs, and whether to trust them."""

from __future__ import annotations

import json
from typing import Any

import click

from crmmetrics.store.store import ModelFit
from . import cli
from .core import _app, config_option


def fit_json(fit: ModelFit) -> dict[str, Any]:
    return {
        "metric": fit.metric_key,
        "run_id": fit.run_id,
        "period": fit.period_label,
        "model": fit.model,
        "calibration_end": fit.calibration_end.isoformat() + "Z",
        "parameters": json.loads(fit.parameters),
        "log_likelihood": fit.log_likelihood,
        "customers": fit.customers,
        "converged": fit.converged,
        "message": fit.message,
        "fitted_at": fit.fitted_at.isoformat() + "Z",
    }


@cli.group()
def models() -> None:
    """The fitted models (BG/NBD, Gamma-Gamma) behind the CLV KPIs."""


@models.command("show")
@click.option("--metric", metavar="KEY", help="Only the fits of this metric's latest run.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (for scripts).")
@config_option
def models_show(metric: str | None, as_json: bool, config_path: str | None) -> None:
    """Show each model fitted by the latest runs: parameters, log-likelihood, customers, convergence."""
    app = _app(config_path)
    fits = [fit for fit in app.store.latest_model_fits() if metric is None or fit.metric_key == metric]
    if as_json:
        click.echo(json.dumps([fit_json(fit) for fit in fits], indent=2))
        return
    if not fits:
        click.echo("No model fits yet: run a model-based metric (e.g. 'crmmetrics run --metric vc_clv_bgnbd_gg').")
        return
    # Metrics that share a fit show it once, naming every metric that uses it.
    shared: dict[tuple, list[ModelFit]] = {}
    for fit in fits:
        shared.setdefault((fit.model, fit.calibration_end, fit.parameters, fit.period_label), []).append(fit)
    for (model, end, parameters, label), group in sorted(shared.items(), key=lambda item: (item[0][3], item[0][1], item[0][0])):
        first = group[0]
        values = ", ".join(f"{name} {value:.4g}" for name, value in json.loads(parameters).items())
        status = "converged" if first.converged else f"NOT CONVERGED ({first.message})"
        ll = "–" if first.log_likelihood is None else f"{first.log_likelihood:.1f}"
        click.echo(
            f"{model:12} {label:8} data to {end:%Y-%m-%d %H:%M}  {values}  log-likelihood {ll}  "
            f"{first.customers:,} customers  {status}  used by {', '.join(sorted({f.metric_key for f in group}))}"
        )
