"""``crmmetrics metrics explain KEY``: a metric's definition, inputs, period, standard and SQL."""

from __future__ import annotations

import json

import click

from crmmetrics.core.errors import ConfigError
from .core import _app, config_option, metrics, parse_as_of


@metrics.command("explain")
@click.argument("key")
@click.option("--as-of", "as_of", metavar="DATE", help="Explain the periods as seen at DATE (ISO 8601) instead of now.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@config_option
def metrics_explain(key: str, as_of: str | None, as_json: bool, config_path: str | None) -> None:
    """Explain metric KEY: its definition and formula, the source tables and columns it needs,
    its parameters, period (with the current bounds) and standard, and the SQL it runs.

    The SQL is captured from one computation of the current period on the read-only source,
    as the driver receives it (the source's dialect); the transaction is rolled back and nothing
    is stored.
    """
    from datetime import datetime, timezone

    from crmmetrics.core.periods import to_naive_utc
    from crmmetrics.readers.explain import explain, explanation_text
    from .standards import in_force_without_writing

    app = _app(config_path)
    if key not in app.registry:
        raise ConfigError(f"metrics explain: unknown metric {key!r} (see 'crmmetrics metrics list')")
    moment = parse_as_of(as_of) if as_of else to_naive_utc(app.config.service.as_of or datetime.now(timezone.utc))
    specs = [s.spec for s in in_force_without_writing(app).values() if s.spec.metric == key]
    explanation = explain(app, key, moment, sorted(specs, key=lambda s: s.label))
    if as_json:
        click.echo(json.dumps(explanation.to_json(), indent=2))
    else:
        click.echo(explanation_text(explanation))
