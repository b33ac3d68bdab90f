"""``crmmetrics dashboards push`` against a recording stub of the Grafana HTTP API.

Grafana cannot be installed here. ``GrafanaContractStub`` answers the few endpoints the push
uses the way Grafana's HTTP API documentation describes them (status codes, bodies, the
``message`` of errors) and records every request, so the tests check what the real command sends:
methods, paths, payloads, the token, that a second push writes nothing, and each error case.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from crmmetrics import Process
from crmmetrics.compute.plugins import LOAD_ENV, get_plugin_manager
from crmmetrics.compute.registry import build_registry
from crmmetrics.compute.standard_defaults import collect_defaults
from crmmetrics.readers.dashboards import DATASOURCE_UID, build_dashboards, datasource, process_uid
from crmmetrics.readers.grafana import folder_uid

BUILT_IN = "strategy_development,value_creation,multichannel_integration,information_management,performance_assessment"
TOKEN = "glsa_test_token"


def _built_in_dashboards() -> dict[str, dict[str, Any]]:
    """What push must send: the dashboards of the built-in plugins and their default standards."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(LOAD_ENV, BUILT_IN)
        pm = get_plugin_manager()
    registry = build_registry(pm)
    built = build_dashboards(registry, {metric for metric, _ in collect_defaults(pm, registry)})
    return {dashboard["uid"]: dashboard for dashboard in built.values()}


EXPECTED = _built_in_dashboards()
UIDS = sorted(EXPECTED)


@dataclass
class Recorded:
    method: str
    path: str
    body: Any
    authorization: str | None


class GrafanaContractStub:
    """A stub, not Grafana: the endpoints ``dashboards push`` uses, answered as Grafana's HTTP API
    documentation records them (folders, datasources by uid, dashboards by uid and
    ``/api/dashboards/db``), over an in-memory state, with every request recorded.

    It accepts the Bearer token ``token`` or basic auth ``admin:s3cret``, else 401.
    ``reject[uid] = (status, message)`` makes saving that dashboard fail; ``read_only`` holds
    datasource uids that were provisioned from files (Grafana refuses to update them).
    """

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.requests: list[Recorded] = []
        self.folders: dict[str, dict[str, Any]] = {}
        self.datasources: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.reject: dict[str, tuple[int, str]] = {}
        self.read_only: set[str] = set()
        self._ids = iter(range(1, 10_000))
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                stub._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                stub._handle(self, "POST")

            def do_PUT(self) -> None:  # noqa: N802
                stub._handle(self, "PUT")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> GrafanaContractStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method != "GET"]

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = json.loads(handler.rfile.read(length)) if length else None
        auth = handler.headers.get("Authorization")
        self.requests.append(Recorded(method, handler.path, body, auth))
        if auth not in (f"Bearer {self.token}", "Basic " + base64.b64encode(b"admin:s3cret").decode()):
            status, answer = 401, {"message": "invalid API key"}
        else:
            status, answer = self._route(method, handler.path.split("?")[0].rstrip("/").split("/")[2:], body)
        data = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _route(self, method: str, parts: list[str], body: Any) -> tuple[int, dict[str, Any]]:
        match method, parts:
            case "GET", ["folders", uid]:
                return (200, self.folders[uid]) if uid in self.folders else (404, {"message": "folder not found"})
            case "POST", ["folders"]:
                if any(f["title"] == body["title"] for f in self.folders.values()):
                    return 409, {"message": "a folder with the same name already exists"}
                folder = {"id": next(self._ids), "uid": body["uid"], "title": body["title"], "version": 1,
                          "url": f"/dashboards/f/{body['uid']}/"}
                self.folders[body["uid"]] = folder
                return 200, folder
            case "PUT", ["folders", uid]:
                if uid not in self.folders:
                    return 404, {"message": "folder not found"}
                folder = self.folders[uid]
                folder.update(title=body["title"], version=folder["version"] + 1)
                return 200, folder
            case "GET", ["datasources", "uid", uid]:
                return (200, self.datasources[uid]) if uid in self.datasources else (404, {"message": "Data source not found"})
            case "POST", ["datasources"]:
                if any(d["name"] == body["name"] for d in self.datasources.values()):
                    return 409, {"message": "data source with the same name already exists"}
                source = {"id": next(self._ids), "orgId": 1, "basicAuth": False, "readOnly": False, **body,
                          "jsonData": {**body.get("jsonData", {})}, "version": 1}
                self.datasources[body["uid"]] = source
                return 200, {"datasource": source, "id": source["id"], "message": "Datasource added", "name": body["name"]}
            case "PUT", ["datasources", "uid", uid]:
                if uid not in self.datasources:
                    return 404, {"message": "Data source not found"}
                if uid in self.read_only:
                    return 403, {"message": "Cannot update read-only data source"}
                source = self.datasources[uid]
                source.update(body, version=source["version"] + 1)
                return 200, {"datasource": source, "id": source["id"], "message": "Datasource updated", "name": source["name"]}
            case "GET", ["dashboards", "uid", uid]:
                return (200, self.dashboards[uid]) if uid in self.dashboards else (404, {"message": "Dashboard not found"})
            case "POST", ["dashboards", "db"]:
                dashboard = body["dashboard"]
                uid = dashboard["uid"]
                if uid in self.reject:
                    status, message = self.reject[uid]
                    return status, {"message": message, "status": "version-mismatch" if status == 412 else "error"}
                if body.get("folderUid") not in self.folders:
                    return 400, {"message": "folder not found"}
                old = self.dashboards.get(uid)
                if old is not None and not body.get("overwrite"):
                    return 412, {"message": "A dashboard with the same uid already exists", "status": "name-exists"}
                stored = {**dashboard, "id": old["dashboard"]["id"] if old else next(self._ids),
                          "version": old["dashboard"]["version"] + 1 if old else 1}
                self.dashboards[uid] = {"dashboard": stored, "meta": {"folderUid": body["folderUid"], "provisioned": False,
                                                                      "url": f"/d/{uid}/", "slug": uid}}
                return 200, {"id": stored["id"], "uid": uid, "url": f"/d/{uid}/", "status": "success",
                             "version": stored["version"], "slug": uid}
        return 404, {"message": "Not found"}


@pytest.fixture
def grafana():
    with GrafanaContractStub() as stub:
        yield stub


@pytest.fixture
def push(crmmetrics_cli):
    """Run ``crmmetrics dashboards push`` with the built-in plugins and the token in GRAFANA_TOKEN."""

    def run(*args: str, token: str | None = TOKEN, **env: str):
        variables = {LOAD_ENV: BUILT_IN, "CRMMETRICS_CONFIG": "", **env}
        if token is not None:
            variables["GRAFANA_TOKEN"] = token
        return crmmetrics_cli("dashboards", "push", *args, env=variables)

    return run


def test_stub_is_not_grafana_and_says_so():
    assert "not Grafana" in GrafanaContractStub.__doc__


def test_first_push_creates_the_folder_the_datasource_and_every_dashboard(grafana, push):
    done = push("--url", grafana.url, "--prometheus-url", "http://prometheus:9090")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "folder crmmetrics: created",
        f"datasource {DATASOURCE_UID}: created",
        *(f"dashboard {uid} ({EXPECTED[uid]['title']}): created" for uid in _order()),
    ]
    calls = [(r.method, r.path) for r in grafana.requests]
    assert calls[:4] == [
        ("GET", "/api/folders/crmmetrics"),
        ("POST", "/api/folders"),
        ("GET", f"/api/datasources/uid/{DATASOURCE_UID}"),
        ("POST", "/api/datasources"),
    ]
    assert calls[4:] == [c for uid in _order() for c in (("GET", f"/api/dashboards/uid/{uid}"), ("POST", "/api/dashboards/db"))]
    assert {r.authorization for r in grafana.requests} == {f"Bearer {TOKEN}"}
    writes = grafana.writes()
    assert writes[0].body == {"title": "crmmetrics", "uid": "crmmetrics"}
    assert writes[1].body == datasource("http://prometheus:9090")
    assert writes[1].body["url"] == "http://prometheus:9090" and writes[1].body["uid"] == "crmmetrics-prometheus"
    for recorded in writes[2:]:
        uid = recorded.body["dashboard"]["uid"]
        # Exactly the dashboard built from the same plugins and standards, id left to Grafana.
        assert recorded.body == {
            "dashboard": {**EXPECTED[uid], "id": None},
            "folderUid": "crmmetrics",
            "overwrite": True,
            "message": "crmmetrics dashboards push",
        }
    assert sorted(grafana.dashboards) == UIDS


def _order() -> list[str]:
    """The order push saves dashboards in: scorecard, service health, then the five processes."""
    return ["crmmetrics-scorecard", "crmmetrics-service-health", *(process_uid(p) for p in Process)]


def test_a_second_push_writes_nothing(grafana, push):
    assert push("--url", grafana.url).returncode == 0
    first = len(grafana.requests)
    again = push("--url", grafana.url)
    assert again.returncode == 0, again.stderr
    assert all(line.endswith(": unchanged") for line in again.stdout.splitlines())
    second = grafana.requests[first:]
    assert [r.method for r in second] == ["GET"] * (2 + len(UIDS))
    assert {d["dashboard"]["version"] for d in grafana.dashboards.values()} == {1}


def test_push_updates_what_differs_and_leaves_the_rest(grafana, push):
    assert push("--url", grafana.url).returncode == 0
    grafana.dashboards["crmmetrics-scorecard"]["dashboard"]["title"] = "Edited in the UI"
    grafana.datasources[DATASOURCE_UID]["url"] = "http://elsewhere:9090"
    first = len(grafana.requests)
    done = push("--url", grafana.url)
    assert done.returncode == 0, done.stderr
    assert f"datasource {DATASOURCE_UID}: updated" in done.stdout
    assert "dashboard crmmetrics-scorecard (CRM balanced scorecard): updated" in done.stdout
    assert done.stdout.count(": unchanged") == 1 + len(UIDS) - 1  # the folder and the other dashboards
    writes = [(r.method, r.path) for r in grafana.requests[first:] if r.method != "GET"]
    assert writes == [("PUT", f"/api/datasources/uid/{DATASOURCE_UID}"), ("POST", "/api/dashboards/db")]
    assert grafana.datasources[DATASOURCE_UID]["url"] == "http://127.0.0.1:9090"
    assert grafana.dashboards["crmmetrics-scorecard"]["dashboard"]["version"] == 2


def test_folder_name_gives_the_uid_and_a_renamed_folder_is_retitled(grafana, push):
    assert folder_uid("CRM KPIs / Q3") == "crm-kpis-q3"
    done = push("--url", grafana.url, "--folder", "CRM KPIs")
    assert done.returncode == 0, done.stderr
    assert grafana.writes()[0].body == {"title": "CRM KPIs", "uid": "crm-kpis"}
    assert {d["meta"]["folderUid"] for d in grafana.dashboards.values()} == {"crm-kpis"}
    grafana.folders["crm-kpis"]["title"] = "crm kpis"
    again = push("--url", grafana.url, "--folder", "CRM KPIs")
    assert "folder crm-kpis: updated" in again.stdout
    assert [r.body for r in grafana.writes() if r.method == "PUT"] == [{"title": "CRM KPIs", "overwrite": True}]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_grafana_is_one_line_exit_1(push):
    url = f"http://127.0.0.1:{_closed_port()}"
    done = push("--url", url, "--timeout", "5")
    assert done.returncode == 1
    assert done.stderr.startswith(f"Error: Grafana at {url} is unreachable: ")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_a_bad_token_is_one_line_exit_2(grafana, push):
    done = push("--url", grafana.url, token="wrong")
    assert done.returncode == 2
    assert done.stderr == f"Error: Grafana at {grafana.url} rejected the credentials (HTTP 401: invalid API key)\n"
    assert grafana.writes() == []


def test_basic_auth_from_the_url_works_and_a_wrong_password_is_not_printed(grafana, push):
    host = grafana.url.removeprefix("http://")
    assert push("--url", f"http://admin:s3cret@{host}", token=None).returncode == 0
    assert grafana.requests[0].authorization == "Basic " + base64.b64encode(b"admin:s3cret").decode()
    done = push("--url", f"http://admin:wrong-pass@{host}", token=None)
    assert done.returncode == 2
    assert done.stderr == f"Error: Grafana at http://admin:***@{host} rejected the credentials (HTTP 401: invalid API key)\n"


def test_a_missing_token_variable_named_on_the_command_line_is_exit_2(grafana, push):
    done = push("--url", grafana.url, "--token-env", "CRMMETRICS_NO_SUCH_TOKEN")
    assert done.returncode == 2
    assert done.stderr == "Error: --token-env: environment variable CRMMETRICS_NO_SUCH_TOKEN is not set\n"
    assert grafana.requests == []


def test_a_token_from_another_variable_is_sent(grafana, push):
    done = push("--url", grafana.url, "--token-env", "MY_GRAFANA_TOKEN", token=None, MY_GRAFANA_TOKEN=TOKEN)
    assert done.returncode == 0, done.stderr
    assert {r.authorization for r in grafana.requests} == {f"Bearer {TOKEN}"}


def test_a_rejected_dashboard_is_one_line_exit_1(grafana, push):
    grafana.reject["crmmetrics-service-health"] = (412, "The dashboard has been changed by someone else")
    done = push("--url", grafana.url)
    assert done.returncode == 1
    assert done.stderr == (
        f"Error: Grafana at {grafana.url} rejected dashboard crmmetrics-service-health (crmmetrics service health): "
        "HTTP 412: The dashboard has been changed by someone else\n"
    )
    # What came before was saved; nothing after the rejected one was attempted.
    assert sorted(grafana.dashboards) == ["crmmetrics-scorecard"]


def test_an_invalid_dashboard_answer_400_is_one_line_exit_1(grafana, push):
    grafana.reject["crmmetrics-scorecard"] = (400, "Dashboard title cannot be empty")
    done = push("--url", grafana.url)
    assert done.returncode == 1
    assert done.stderr.endswith("rejected dashboard crmmetrics-scorecard (CRM balanced scorecard): HTTP 400: Dashboard title cannot be empty\n")


def test_a_read_only_datasource_that_differs_is_reported(grafana, push):
    assert push("--url", grafana.url).returncode == 0
    grafana.read_only.add(DATASOURCE_UID)
    done = push("--url", grafana.url, "--prometheus-url", "http://other:9090")
    assert done.returncode == 2
    assert done.stderr == (
        f"Error: Grafana at {grafana.url} forbade datasource {DATASOURCE_UID} "
        "(HTTP 403: Cannot update read-only data source)\n"
    )


def test_a_datasource_name_taken_by_another_uid_is_reported(grafana, push):
    grafana.datasources["other"] = {**datasource(), "uid": "other", "id": 99}
    done = push("--url", grafana.url)
    assert done.returncode == 1
    assert done.stderr.endswith(f"rejected datasource {DATASOURCE_UID}: HTTP 409: data source with the same name already exists\n")


def test_a_server_that_is_not_grafana_is_reported(push, tmp_path):
    class Html(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = b"<html>hello</html>"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Html)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        done = push("--url", url)
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 1
    assert done.stderr.startswith(f"Error: {url} did not answer like a Grafana HTTP API (folder crmmetrics): ")
    assert done.stderr.count("\n") == 1


def test_a_url_without_scheme_is_exit_2(push):
    done = push("--url", "grafana:3000")
    assert done.returncode == 2
    assert done.stderr == "Error: --url: 'grafana:3000' is not an http:// or https:// URL\n"
