"""The exporter's landing page in a real headless Chromium: the grid, a KPI's value and status in
the DOM, and a screenshot kept in test-artifacts/scorecard.png."""

from __future__ import annotations

import shutil
import struct
import subprocess
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

from crmmetrics.compute.plugins import get_plugin_manager
from crmmetrics.compute.registry import build_registry
from crmmetrics.serve.server import make_server
from crmmetrics.store.store import Store
from crmmetrics.testing import CrmDatabase
from support.scorecard_scenario import build_scenario

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
VOID = {"meta", "link", "col", "br", "img", "input", "hr", "source", "wbr"}


class Element:
    def __init__(self, tag: str, attrs: dict[str, str]) -> None:
        self.tag, self.attrs, self.children, self.parts = tag, attrs, [], []

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    @property
    def text(self) -> str:
        return "".join(part if isinstance(part, str) else part.text for part in self.parts).strip()

    def iter(self):
        yield self
        for child in self.children:
            yield from child.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Element]:
        return [
            e
            for e in self.iter()
            if (tag is None or e.tag == tag)
            and (cls is None or cls in e.classes)
            and all(e.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def find(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> Element:
        found = self.find_all(tag, cls, **attrs)
        assert len(found) == 1, f"{len(found)} elements match {tag} .{cls} {attrs}"
        return found[0]


class DomParser(HTMLParser):
    """The DOM Chromium dumped, as a tree of Elements."""

    def __init__(self) -> None:
        super().__init__()
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        self.stack[-1].parts.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_endtag(self, tag):
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data):
        self.stack[-1].parts.append(data)


def chromium(*args: str, user_data_dir: Path) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium")
    assert binary, "Chromium is not installed: run scripts/install-test-deps.sh (Debian package chromium)"
    return subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", *args],
        capture_output=True, text=True, timeout=120,
    )


@pytest.fixture(scope="module")
def page_url(tmp_path_factory):
    """The exporter over the scenario's store, on a free loopback port."""
    directory = tmp_path_factory.mktemp("page")
    source = CrmDatabase(f"sqlite:///{directory / 'crm.sqlite'}")
    source.dispose()
    scenario = build_scenario(directory, source.url)
    store = Store(scenario.store_url)
    server = make_server(store, "127.0.0.1", 0).start()
    yield f"{server.url}/"
    server.stop()
    store.engine.dispose()


@pytest.fixture(scope="module")
def dom(page_url, tmp_path_factory):
    done = chromium("--dump-dom", page_url, user_data_dir=tmp_path_factory.mktemp("chromium-profile"))
    assert done.returncode == 0 and "</html>" in done.stdout, done.stderr[-2000:]
    parser = DomParser()
    parser.feed(done.stdout)
    return parser.root


def test_the_page_shows_the_grid(dom):
    assert dom.find("title").text == "CRM balanced scorecard · crmmetrics"
    grid = dom.find("table", id="scorecard-grid")
    cells = grid.find_all("td", cls="cell")
    assert len(cells) == 20
    assert {(c.attrs["data-process"], c.attrs["data-perspective"]) for c in cells} == {
        (p, q)
        for p in ("strategy_development", "value_creation", "multichannel_integration", "information_management", "performance_assessment")
        for q in ("financial", "customer", "internal_process", "learning_growth")
    }
    headings = [th.text for th in grid.find("thead").find_all("th")]
    assert headings == ["", "Financial", "Customer", "Internal process", "Learning & growth"]
    assert dom.find(id="index").text == "74"  # 73.96
    assert dom.find(id="attainment").text == "43%"  # 3 of 7
    assert dom.find("time", id="computed-at").text not in ("", "never")
    empty = grid.find("td", data_process="information_management", data_perspective="financial")
    assert "empty" in empty.classes and empty.text == "no KPI here"


def test_a_kpi_shows_value_status_target_and_change(dom):
    cell = dom.find("td", data_process="value_creation", data_perspective="customer")
    assert "score" in cell.find("div", cls="score").text and cell.find("div", cls="score").find("b").text == "50"
    complaints = cell.find("li", cls="kpi", data_key="sc_complaints")
    assert complaints.attrs["data-status"] == "amber" and "amber" in complaints.classes
    assert complaints.find(cls="kpi-value").text == "16.0%"
    assert complaints.find(cls="kpi-status").text == "amber"
    assert complaints.find(cls="kpi-target").text == "target ≤ 10.0%"  # lower is better
    change = complaints.find(cls="kpi-change")
    assert change.text == "▼ -20.0%" and "good" in change.classes  # down is good for complaints
    missing = cell.find("li", cls="kpi", data_key="sc_missing")
    assert missing.attrs["data-status"] == "no data" and missing.find(cls="kpi-value").text == "no data"
    engagement = dom.find("li", cls="kpi", data_key="sc_engagement")
    assert engagement.find(cls="kpi-target").text == "target ≥ 55.0% (previous +10%)"
    red = dom.find("li", cls="kpi", data_key="sc_new_customers")
    assert red.attrs["data-status"] == "red" and red.find(cls="kpi-value").text == "8"
    assert red.find(cls="kpi-target").text == "target ≥ 40"


def test_a_metric_judged_per_dimension_value_is_grouped_under_its_name(dom):
    cell = dom.find("td", data_process="multichannel_integration", data_perspective="internal_process")
    group = cell.find("li", cls="kpi-group")
    assert group.children[0].text == "First-contact resolution"
    rows = {li.attrs["data-key"]: (li.find(cls="name").text, li.attrs["data-status"]) for li in group.find_all("li", cls="kpi")}
    assert rows == {
        "sc_fcr_by_channel{channel_category=e_commerce}": ("e_commerce", "green"),
        "sc_fcr_by_channel{channel_category=telephony}": ("telephony", "amber"),
        "sc_fcr_by_channel{channel_category=outlets}": ("outlets", "green"),
    }


def test_the_page_shows_the_reporting_period_and_coverage(dom):
    # The header names the period the values cover and the reporting date.
    header = dom.find(id="reporting-period")
    period = header.find(cls="kpi-period")
    assert period.text == "2026-05"
    assert (period.attrs["data-period-start"], period.attrs["data-period-end"]) == ("2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z")
    assert "(8 KPIs)" in header.text
    assert dom.find("time", id="reporting-date").attrs["datetime"] == "2026-06-01T00:00:00Z"
    # Every KPI card carries its period.
    cards = dom.find_all("li", cls="kpi")
    assert len(cards) == 8 and all(card.find(cls="kpi-period").text == "2026-05" for card in cards)
    # The index and every roll-up state their coverage; a missing KPI states why.
    coverage = dom.find(id="index-coverage").find(cls="coverage")
    assert coverage.text == "7 of 8 KPIs with data"
    assert (coverage.attrs["data-kpis-with-data"], coverage.attrs["data-kpis"]) == ("7", "8")
    customer = dom.find("div", data_perspective="customer")
    assert customer.find(cls="coverage").text == "2 of 3 KPIs with data"
    cell = dom.find("td", data_process="value_creation", data_perspective="customer")
    assert cell.find(cls="coverage").text == "1 of 2 KPIs with data"
    missing = cell.find("li", cls="kpi", data_key="sc_missing")
    assert missing.find(cls="kpi-missing").text == "no rows in orders for 2026-05"
    # A process without KPIs has no score: "no data", not 0 or 100.
    information = dom.find("tr", data_process="information_management")
    assert information.find("th").find(cls="score").attrs["data-score"] == "none"
    assert information.find("th").find(cls="score").find("b").text == "no data"


def test_without_history_there_is_no_forecast_and_the_chain_says_so(dom):
    """The scenario stores one period per KPI: no forecast, no anomaly score, no chain; each
    says why in words, and nothing is drawn as if it were known."""
    cards = [card for card in dom.find_all("li", cls="kpi") if card.attrs["data-status"] != "no data"]
    pacing = [card.find("span", cls="kpi-pacing") for card in cards]
    assert {p.attrs["data-pacing"] for p in pacing} == {"none"} and {p.text for p in pacing} == {"no forecast"}
    complaints = dom.find("li", cls="kpi", data_key="sc_complaints").find("span", cls="kpi-pacing")
    assert complaints.attrs["title"] == "no forecast: a forecast needs at least 3 periods of history, it has 1"
    assert not dom.find("li", cls="kpi", data_key="sc_missing").find_all("span", cls="kpi-pacing")  # "no data" says it
    assert not dom.find_all("span", cls="kpi-anomaly")
    chain = dom.find("section", id="value-chain")
    assert chain.find("p", cls="chain-statement").text.startswith("Not enough data to say anything about the value chain")
    assert not chain.find_all("svg", cls="chain")


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


def test_screenshot(page_url, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "scorecard.png"
    shot.unlink(missing_ok=True)
    done = chromium("--window-size=1500,1500", f"--screenshot={shot}", page_url, user_data_dir=tmp_path / "profile")
    assert done.returncode == 0, done.stderr[-2000:]
    assert png_size(shot) == (1500, 1500)
    assert shot.stat().st_size > 50_000  # a rendered page, not a blank one


def test_the_page_without_standards_says_how_to_set_one(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    registry = build_registry(get_plugin_manager())
    store.record_definitions(registry, registry.plugin_of)
    server = make_server(store, "127.0.0.1", 0).start()
    try:
        with urllib.request.urlopen(f"{server.url}/", timeout=10) as response:
            assert response.headers["Content-Type"] == "text/html; charset=utf-8"
            body = response.read().decode()
    finally:
        server.stop()
        store.engine.dispose()
    assert "No KPIs yet" in body and "crmmetrics standards set KEY --target X --red R --green G" in body
    assert body.count("class='cell empty'") == 20
    # Metrics without a standard are listed below the grid.
    assert "<h2>Metrics without a standard</h2>" in body
    assert body.count("<tr data-metric=") == len(registry)
    assert "<tr data-metric='vc_aov'><td>Average order value <code>vc_aov</code></td><td>Value creation</td>" in body
