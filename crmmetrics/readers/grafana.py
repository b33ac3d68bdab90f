"""Push the generated dashboards to a Grafana through its HTTP API (with grafana-client).

``push`` upserts, in this order: a folder, the Prometheus datasource the dashboards default to
(by its fixed uid), and every dashboard into that folder. It is idempotent: a second push with
nothing changed writes nothing (each object is read first and compared). Every failure becomes
one ``GrafanaError`` line naming the Grafana, the object and Grafana's own message.

Use either this push or file provisioning (dashboards/provisioning) for a given Grafana, not
both: Grafana refuses to overwrite a dashboard provisioned from files through the API.

Endpoints used (Grafana HTTP API): ``GET/POST /api/folders``, ``PUT /api/folders/:uid``,
``GET/PUT /api/datasources/uid/:uid``, ``POST /api/datasources``, ``GET /api/dashboards/uid/:uid``,
``POST /api/dashboards/db``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import niquests
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException, GrafanaServerError, GrafanaTimeoutError

from crmmetrics.core.errors import CrmmetricsError

T = TypeVar("T")

# Datasource fields push sets; Grafana adds others (id, orgId, readOnly, ...) that are left alone.
_DATASOURCE_FIELDS = ("name", "type", "access", "url", "isDefault", "jsonData")


class GrafanaError(CrmmetricsError):
    """Grafana could not be reached, or refused what was sent."""


class GrafanaAuthError(GrafanaError):
    """Grafana rejected the credentials (401) or denied them something (403): fix the token."""

    exit_code = 2


@dataclass
class PushReport:
    """What a push did to each object: ``created``, ``updated`` or ``unchanged``."""

    folder: tuple[str, str] = ("", "")
    datasource: tuple[str, str] = ("", "")
    dashboards: list[tuple[str, str, str]] = field(default_factory=list)  # (uid, title, outcome)


def folder_uid(name: str) -> str:
    """A Grafana folder uid from its name (letters, digits, - and _; at most 40 characters)."""
    uid = re.sub(r"[^A-Za-z0-9_-]+", "-", name.strip()).strip("-").lower()[:40]
    return uid or "crmmetrics"


class GrafanaPusher:
    """One Grafana, reached at ``url`` with an optional token (basic auth may be in the URL)."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 10.0) -> None:
        self.api = GrafanaApi.from_url(url.rstrip("/"), credential=token, timeout=timeout)
        self.url = _without_password(url.rstrip("/"))  # for messages

    def _call(self, what: str, request: Callable[[], T], missing_ok: bool = False) -> T | None:
        """Run one API request; None for a 404 when ``missing_ok``; any other failure: one line."""
        try:
            return request()
        except GrafanaTimeoutError as exc:
            raise GrafanaError(f"Grafana at {self.url} is unreachable: timed out ({exc.message})") from None
        except ValueError as exc:  # an answer that is not JSON (before RequestException: it is both)
            raise GrafanaError(f"{self.url} did not answer like a Grafana HTTP API ({what}): {_first_line(exc)}") from None
        except niquests.exceptions.RequestException as exc:
            raise GrafanaError(f"Grafana at {self.url} is unreachable: {_first_line(exc)}") from None
        except (GrafanaClientError, GrafanaServerError) as exc:
            if exc.status_code == 404 and missing_ok:
                return None
            message = _message(exc)
            if exc.status_code == 401:
                raise GrafanaAuthError(f"Grafana at {self.url} rejected the credentials (HTTP 401: {message})") from None
            if exc.status_code == 403:
                raise GrafanaAuthError(
                    # Not always the token: Grafana also answers 403 for a provisioned, read-only object.
                    f"Grafana at {self.url} forbade {what} (HTTP 403: {message})"
                ) from None
            raise GrafanaError(f"Grafana at {self.url} rejected {what}: HTTP {exc.status_code}: {message}") from None
        except GrafanaException as exc:  # a transport error grafana-client wrapped
            raise GrafanaError(f"Grafana at {self.url} is unreachable: {_first_line(exc)}") from None

    def upsert_folder(self, name: str) -> tuple[str, str]:
        """Create the folder (uid from its name) or give it this title; returns (uid, outcome)."""
        uid = folder_uid(name)
        folders = self.api.folder
        existing = self._call(f"folder {uid}", lambda: folders.get_folder(uid), missing_ok=True)
        if existing is None:
            self._call(f"folder {uid}", lambda: folders.create_folder(name, uid=uid))
            return uid, "created"
        if existing.get("title") == name:
            return uid, "unchanged"
        self._call(f"folder {uid}", lambda: folders.update_folder(uid, title=name, overwrite=True))
        return uid, "updated"

    def upsert_datasource(self, datasource: Mapping[str, Any]) -> str:
        """Create the datasource, or update it by uid when it differs; returns the outcome."""
        uid = datasource["uid"]
        sources = self.api.datasource
        existing = self._call(f"datasource {uid}", lambda: sources.get_datasource_by_uid(uid), missing_ok=True)
        if existing is None:
            self._call(f"datasource {uid}", lambda: sources.create_datasource(dict(datasource)))
            return "created"
        if all(_contains(existing.get(key), datasource.get(key)) for key in _DATASOURCE_FIELDS):
            return "unchanged"
        self._call(f"datasource {uid}", lambda: sources.update_datasource_by_uid(uid, dict(datasource)))
        return "updated"

    def upsert_dashboard(self, dashboard: Mapping[str, Any], folder: str) -> str:
        """Save the dashboard into ``folder`` (overwriting by uid) unless it is there already."""
        uid = dashboard["uid"]
        what = f"dashboard {uid} ({dashboard.get('title', '')})"
        boards = self.api.dashboard
        existing = self._call(what, lambda: boards.get_dashboard(uid), missing_ok=True)
        if existing is not None and existing.get("meta", {}).get("folderUid") == folder and _same_dashboard(
            existing.get("dashboard", {}), dashboard
        ):
            return "unchanged"
        payload = {
            "dashboard": {**dashboard, "id": None},
            "folderUid": folder,
            "overwrite": True,
            "message": "crmmetrics dashboards push",
        }
        self._call(what, lambda: boards.update_dashboard(payload))
        return "created" if existing is None else "updated"


def push(url: str, dashboards: Mapping[str, Mapping[str, Any]], datasource: Mapping[str, Any], folder: str = "crmmetrics",
         token: str | None = None, timeout: float = 10.0) -> PushReport:
    """Upsert the folder, the datasource and every dashboard on the Grafana at ``url``."""
    pusher = GrafanaPusher(url, token, timeout)
    report = PushReport()
    uid, outcome = pusher.upsert_folder(folder)
    report.folder = (uid, outcome)
    report.datasource = (datasource["uid"], pusher.upsert_datasource(datasource))
    for dashboard in dashboards.values():
        report.dashboards.append((dashboard["uid"], dashboard["title"], pusher.upsert_dashboard(dashboard, uid)))
    return report


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")))


def _contains(actual: Any, wanted: Any) -> bool:
    """Does Grafana's stored value hold everything we set (Grafana may add keys of its own)?"""
    if isinstance(wanted, Mapping):
        return isinstance(actual, Mapping) and all(_contains(actual.get(k), v) for k, v in wanted.items())
    return actual == wanted


def _same_dashboard(stored: Mapping[str, Any], ours: Mapping[str, Any]) -> bool:
    # Grafana owns id and version; everything else is ours.
    ignore = ("id", "version")
    return {k: v for k, v in stored.items() if k not in ignore} == {k: v for k, v in ours.items() if k not in ignore}


def _message(exc: GrafanaException) -> str:
    response = exc.response
    if isinstance(response, Mapping) and response.get("message"):
        return _first_line(response["message"])
    return _first_line(response) if response else "no message"


def _first_line(value: Any) -> str:
    lines = str(value).strip().splitlines()
    return lines[0] if lines else type(value).__name__
