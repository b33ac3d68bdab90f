"""Where the parts crmmetrics is served with are by default: Prometheus, Grafana, the scrape
job, the Grafana folder and the runbook.

Plain constants in a module that imports nothing, so that the CLI shows them as defaults in
``--help`` without importing the dashboard and alert generators that use them.
"""

DEFAULT_PROMETHEUS_URL = "http://127.0.0.1:9090"
DEFAULT_GRAFANA_URL = "http://127.0.0.1:3000"
DEFAULT_RUNBOOK_URL = "docs/operations.md"  # the operations guide; point it at where you host the docs
DEFAULT_JOB = "crmmetrics"  # the scrape job of config/prometheus.yml
FOLDER = "crmmetrics"  # the Grafana folder of the dashboards
