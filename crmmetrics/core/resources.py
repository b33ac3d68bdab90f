"""Where the shipped config templates and dashboards are, installed or in a checkout.

In a wheel they are package data under ``crmmetrics/bundled/``; in a source checkout (and an
editable install) they are the repository's top-level ``config/`` and ``dashboards/``.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent  # crmmetrics/ (this module is in crmmetrics/core/)


def _find(name: str) -> Path:
    bundled = _PACKAGE / "bundled" / name
    if bundled.is_dir():
        return bundled
    return _PACKAGE.parent / name


def config_dir() -> Path:
    return _find("config")


def dashboards_dir() -> Path:
    return _find("dashboards")
