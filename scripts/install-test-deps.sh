#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine: the real servers the tests
# start on loopback (Prometheus, PostgreSQL), amtool (Alertmanager's config checker), headless
# Chromium for the page test, openssl for the TLS tests' certificates, and the project with its
# test extras.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v amtool >/dev/null 2>&1 || need+=(prometheus-alertmanager)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)   # checks deploy/systemd/crmmetrics.service
command -v openssl >/dev/null 2>&1 || need+=(openssl)  # certificates for the TLS tests
if [ "${#need[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The test extras and the optional ones: the tests use PostgreSQL, DuckDB and Grafana's client.
python3 -m pip install -q -e '.[test,postgres,duckdb,grafana]'
