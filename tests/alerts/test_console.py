"""The crew console in Debian's headless Chromium against the real API (uvicorn, SQLite).

One server and one browser for the module; a fresh browser context (its own
sessionStorage and localStorage) per test.  The browser runs in New York time
on purpose: the console must show Shihezi time (UTC+6) whatever the phone's
zone.  Screenshots go to each test's tmp_path.

Each test works on its own alert of the seeded queue (orange: the crew's whole
workflow; red: the 409; yellow: the phone), so the order of the tests does not matter.
"""

from __future__ import annotations

import doctest
import time

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright  # browser: Debian's (make console-deps)
from sqlalchemy import select

import alerts.console
from alerts.api import create_app
from alerts.models import Alert
from alerts.states import OPEN_STATES
from lifewatch.levels import Level
from tests.alerts.console_support import LiveServer, launch_chromium, seed
from tests.alerts.helpers import UNIT_A, UNIT_B, det

pytestmark = pytest.mark.timeout(180)
NEW_YORK = "America/New_York"  # the browser's own zone, which the console must not use


@pytest.fixture(scope="module")
def site(tmp_path_factory):  # noqa: ANN201
    sd = seed(tmp_path_factory.mktemp("console"))
    app = create_app(sd.settings, clock=sd.clock, engine=sd.store.engine)
    with LiveServer(app) as url:
        sd.url = url
        yield sd
    sd.store.engine.dispose()


@pytest.fixture(scope="module")
def browser(site):  # noqa: ANN001, ANN201 - after site: the browser closes (ending its streams) before the server stops
    pw = sync_playwright().start()
    b = launch_chromium(pw)
    expect.set_options(timeout=10_000)
    yield b
    b.close()
    pw.stop()


def _context(browser, **kw):  # noqa: ANN001, ANN003, ANN202
    ctx = browser.new_context(timezone_id=NEW_YORK, locale="en-US", **kw)
    ctx.set_default_timeout(10_000)
    return ctx


def _login(page, site, who: str) -> None:  # noqa: ANN001
    page.goto(site.url + "/console")
    expect(page.locator("body[data-ready]")).to_have_count(1)
    page.get_by_label("Access token").fill(site.tokens[who])
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#queue-view")).to_be_visible()
    expect(page.locator("#live")).to_have_class("live live-live")


def _api(site, who: str, method: str, path: str, **kw) -> httpx.Response:  # noqa: ANN001, ANN003
    return httpx.request(method, site.url + path, headers={"Authorization": f"Bearer {site.tokens[who]}"}, timeout=10, **kw)


def _open_ids(site, unit: str) -> set[str]:  # noqa: ANN001
    with site.store.read() as s:
        return set(s.scalars(select(Alert.id).where(Alert.unit == unit, Alert.state.in_([x.value for x in OPEN_STATES]))))


def _queue_order(site, unit: str) -> list[str]:  # noqa: ANN001
    with site.store.read() as s:
        q = select(Alert.id).where(Alert.unit == unit, Alert.state.in_([x.value for x in OPEN_STATES]))
        return list(s.scalars(q.order_by(Alert.level, Alert.created_at, Alert.id)))


def _no_horizontal_scroll(page) -> bool:  # noqa: ANN001
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def test_console_routes_config_and_headers(site) -> None:  # noqa: ANN001
    r = httpx.get(site.url + "/console", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (307, "console/")
    page = httpx.get(site.url + "/console/")  # no token needed for the page
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"] and 'type="module"' in page.text
    for name in alerts.console.FILES:
        assert httpx.get(f"{site.url}/console/{name}").status_code == 200, name
    assert httpx.get(site.url + "/console/app.js").headers["content-type"].startswith("text/javascript")
    for bad in ("/console/nothing.js", "/console/__init__.py", "/console/%2e%2e%2fapp.py", "/console/..%2f..%2fpyproject.toml"):
        assert httpx.get(site.url + bad).status_code == 404, bad
    cfg = httpx.get(site.url + "/console/config.json").json()
    assert (cfg["city"], cfg["utc_offset_hours"]) == ("Shihezi", 6.0)
    assert [(x["label"], x["roman"], x["colour"]) for x in cfg["levels"]] == [(lv.label, lv.roman, lv.colour) for lv in Level]
    assert cfg["units"][UNIT_A]["name_zh"] == "石河子供水公司" and cfg["lifelines"]["water"]["metrics"]["pressure"] == "MPa"
    assert "/console/" not in httpx.get(site.url + "/openapi.json").json()["paths"]
    assert doctest.testmod(alerts.console).failed == 0


def test_the_browser_modules(site, browser) -> None:  # noqa: ANN001
    """sse.js, fmt.js and i18n.js as the page loads them: SSE split anywhere, city-local times, both languages complete."""
    ctx = _context(browser)
    page = ctx.new_page()
    page.goto(site.url + "/console/")
    expect(page.locator("body[data-ready]")).to_have_count(1)
    got = page.evaluate(
        """async () => {
          const { SSEParser } = await import("./sse.js");
          const text = "retry: 3000\\r\\n\\r\\n: keepalive\\n\\nid: 7\\nevent: raised\\ndata: {\\"a\\":1,\\r\\ndata:  \\"b\\":2}\\r\\n\\r\\n"
                     + "data:x\\rid: 8\\r\\rdata\\n\\n";
          const runs = [];
          for (const size of [1, 2, 3, 5, 8, 1000]) {
            const events = [], retries = [];
            const p = new SSEParser((e) => events.push(e), (ms) => retries.push(ms));
            for (let i = 0; i < text.length; i += size) p.push(text.slice(i, i + size));
            runs.push(JSON.stringify({ events, retries }));
          }
          const fmt = await import("./fmt.js");
          const i18n = await import("./i18n.js");
          const en = Object.keys(i18n.STRINGS.en).sort(), zh = Object.keys(i18n.STRINGS.zh).sort();
          return {
            runs,
            times: [fmt.formatLocal("2026-01-01T20:30:00.123456789Z", 6), fmt.formatLocal("2026-01-01T08:00:05", 6, { seconds: false }),
                    fmt.formatLocal("2026-03-08T07:30:00+00:00", 6), fmt.formatLocal(null, 6)],
            offsets: [6, 5.5, -3, 0].map(fmt.formatOffset),
            numbers: [0.12100000001, 412.5123, 7, 12345.67].map(fmt.formatNumber),
            missingZh: en.filter((k) => !zh.includes(k)), missingEn: zh.filter((k) => !en.includes(k)),
            empty: en.filter((k) => !i18n.STRINGS.en[k] || !i18n.STRINGS.zh[k]),
          };
        }"""
    )
    expected = '{"events":[{"id":"7","type":"raised","data":"{\\"a\\":1,\\n \\"b\\":2}"},{"id":"8","type":"message","data":"x"},' \
               '{"id":"8","type":"message","data":""}],"retries":[3000]}'
    assert got["runs"] == [expected] * 6
    assert got["times"] == ["2026-01-02 02:30:00", "2026-01-01 14:00", "2026-03-08 13:30:00", ""]  # New York's DST change is no matter
    assert got["offsets"] == ["UTC+6", "UTC+5:30", "UTC-3", "UTC"]
    assert got["numbers"] == ["0.121", "412.5", "7", "12346"]
    assert (got["missingZh"], got["missingEn"], got["empty"]) == ([], [], [])
    ctx.close()


def test_a_crew_works_an_alert_from_the_queue(site, browser, tmp_path) -> None:  # noqa: ANN001
    t0 = time.monotonic()
    ctx = _context(browser, viewport={"width": 1000, "height": 900})
    requests = []
    ctx.on("request", lambda r: requests.append((r.url, r.headers.get("authorization"))))
    errors = []
    page = ctx.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    _login(page, site, "crew-a")
    expect(page.locator("#who")).to_have_text("crew-a · crew · Shihezi Water Supply Company")

    # the unit's queue, most severe first, nothing of unit B
    cards = page.locator("#queue .card")
    expected = _queue_order(site, UNIT_A)
    expect(cards).to_have_count(len(expected))
    assert cards.evaluate_all("els => els.map(e => e.dataset.id)") == expected  # the API's order: level, then age
    assert cards.evaluate_all("els => els.map(e => e.dataset.level)")[:3] == ["red", "orange", "yellow"]
    assert site.ids["power"] not in expected
    red_badge = page.locator(f".card[data-id='{site.ids['red']}'] .badge")
    expect(red_badge).to_have_text("IRed")
    assert red_badge.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(224, 47, 68)"  # #E02F44
    assert page.locator(".card[data-level=orange] .badge").first.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(255, 120, 10)"
    expect(page.locator("#tz-note")).to_have_text("Times: Shihezi local time (UTC+6)")

    # live: a new blue alert of unit A appears without a reload, unit B's new alert does not
    n = cards.count()
    site.intake.emit([
        det("sensor_offline", t=90, level=Level.BLUE, sensors=("w-d03-001",), district="d03", asset="dma-d03-1", detector="offline"),
        det("voltage_low", t=95, lifeline="power", sensors=("p-d02-001",), district="d02", asset="fdr-d02-1", level=Level.RED),
    ])
    expect(cards).to_have_count(n + 1)
    expect(cards.last).to_have_attribute("data-level", "blue")
    expect(cards.last.locator(".kind")).to_have_text("Sensor offline")
    assert cards.evaluate_all("els => els.map(e => e.dataset.id)") == _queue_order(site, UNIT_A)

    # one alert: evidence and timeline
    page.locator(f".card[data-id='{site.ids['orange']}']").click()
    article = page.locator("article.alert")
    expect(article).to_have_attribute("data-state", "new")
    expect(page.locator("#detail-title")).to_have_text("End pressure low")
    ev = page.locator(".evidence")
    expect(ev.locator("[data-group=values] dd[data-key=value]")).to_have_text("0.121 MPa")
    expect(ev.locator("[data-group=thresholds] dd[data-key=crossed]")).to_have_text("III Yellow: 0.14 MPa")
    expect(ev.locator("[data-group=related] dd[data-key=alert_sensors]")).to_have_text("w-d01-002")
    expect(ev.locator("[data-group=source] dd[data-key=source]")).to_contain_text("CJJ 58-2007 §3.1.3")
    expect(page.locator(".facts dd").filter(has_text="Xincheng DMA 1 (dma-d01-1)")).to_have_count(1)
    timeline = page.locator(".tl-list > li")
    expect(timeline.first).to_have_attribute("data-kind", "raised")
    expect(timeline.first.locator("time")).to_have_text("2026-01-01 14:00:05")  # 08:00:05Z in UTC+6
    expect(timeline.first.locator(".tl-who")).to_have_text("intake (system)")
    steps = [timeline.count()]
    buttons = page.locator(".actions button.act")
    expect(buttons).to_have_count(1)
    expect(buttons).to_have_text("Acknowledge")

    # acknowledge (one tap); the time of the action is shown in city time
    site.clock.advance(600)  # 08:10:05Z = 14:10:05 in Shihezi
    buttons.click()
    expect(article).to_have_attribute("data-state", "acknowledged")
    expect(page.locator("#flash")).to_have_text("Acknowledged.")
    expect(timeline).to_have_count(steps[-1] + 1)
    steps.append(timeline.count())
    last = timeline.last
    expect(last.locator(".tl-what")).to_have_text("New → Acknowledged")
    expect(last.locator(".tl-who")).to_have_text("crew-a (crew)")
    expect(last.locator("time")).to_have_text("2026-01-01 14:10:05")
    expect(last.locator("time")).to_have_attribute("datetime", "2026-01-01T08:10:05Z")
    expect(buttons).to_have_text(["Dispatch crew", "Resolve"])

    # dispatch with the crew's names
    site.clock.advance(300)
    page.get_by_role("button", name="Dispatch crew").click()
    page.get_by_label("Crew members (comma-separated)").fill("Li Wei, Ma Lin")
    page.locator("form.form-dispatch").get_by_label("Note (optional)").fill("two of us, with the pump")
    page.get_by_role("button", name="Submit").click()
    expect(article).to_have_attribute("data-state", "dispatched")
    expect(timeline).to_have_count(steps[-1] + 1)
    steps.append(timeline.count())
    expect(timeline.last.locator(".tl-data")).to_have_text("Crew: Li Wei, Ma Lin")
    expect(timeline.last.locator(".tl-note")).to_have_text("two of us, with the pump")
    expect(buttons).to_have_text(["Resolve"])

    # resolve: the form insists on cause and action before anything is sent
    page.get_by_role("button", name="Resolve").click()
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#flash")).to_have_text("Please fill in: Cause, Action taken.")
    expect(article).to_have_attribute("data-state", "dispatched")
    page.get_by_label("Cause").fill("main break at the valve chamber")
    page.get_by_label("Action taken").fill("section replaced, flushed")
    page.get_by_label("Notes (optional)").fill("DN300, 2 m")
    page.get_by_role("button", name="Submit").click()
    expect(article).to_have_attribute("data-state", "resolved")
    expect(page.locator("#flash")).to_have_text("Resolved: thank you for the report.")
    expect(timeline).to_have_count(steps[-1] + 1)
    steps.append(timeline.count())
    expect(page.locator(".actions")).to_contain_text("Nothing for you to do on this alert now.")
    expect(page.locator(".resolution li")).to_have_text(
        ["Cause: main break at the valve chamber", "Action taken: section replaced, flushed", "Notes: DN300, 2 m"])
    doc = _api(site, "operator", "GET", f"/api/alerts/{site.ids['orange']}").json()
    assert (doc["state"], doc["version"], doc["crew"]) == ("resolved", 4, ["Li Wei", "Ma Lin"])
    assert doc["resolution"] == {"cause": "main break at the valve chamber", "action": "section replaced, flushed", "notes": "DN300, 2 m"}
    assert [(e["from_state"], e["to_state"], e["actor"]) for e in doc["timeline"] if e["kind"] == "transition"] == [
        ("new", "acknowledged", "crew-a"), ("acknowledged", "dispatched", "crew-a"), ("dispatched", "resolved", "crew-a")]

    # a comment joins the timeline
    page.get_by_label("Add a comment").fill("valve chamber pumped dry")
    page.get_by_role("button", name="Send comment").click()
    expect(timeline).to_have_count(steps[-1] + 1)
    steps.append(timeline.count())
    expect(timeline.last).to_have_attribute("data-kind", "comment")
    expect(timeline.last.locator(".tl-note")).to_have_text("valve chamber pumped dry")
    assert steps == sorted(set(steps)), steps  # the timeline grew at every step
    page.screenshot(path=str(tmp_path / "console-detail-en.png"), full_page=True)

    # 中文
    page.get_by_role("button", name="切换到中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("#timeline-title")).to_have_text("处置记录")
    expect(page.locator("#evidence-title")).to_have_text("证据")
    expect(article.locator(".detail-head .state")).to_have_text("已处置")
    expect(timeline.nth(steps[0])).to_contain_text("新告警 → 已确认")
    expect(page.locator("#tz-note")).to_have_text("时间：Shihezi当地时间（UTC+6）")
    page.get_by_role("link", name="← 返回队列").click()
    expect(page.locator("#queue-title")).to_have_text("告警队列 · 石河子供水公司")
    expect(page.locator(f".card[data-id='{site.ids['red']}'] .badge")).to_have_text("I红色")
    expect(page.locator(f".card[data-id='{site.ids['orange']}'] .state")).to_have_text("已处置")
    expect(page.locator("#who")).to_have_text("crew-a · 抢修班组 · 石河子供水公司")
    page.screenshot(path=str(tmp_path / "console-queue-zh.png"), full_page=True)
    page.get_by_role("button", name="Switch to English").click()
    expect(page.locator("#queue-title")).to_have_text("Alert queue · Shihezi Water Supply Company")

    # the token went in the Authorization header of every API call, including the stream, never in a URL
    api_calls = [(u, a) for u, a in requests if "/api/" in u]
    assert any(u.endswith("/api/stream") for u, _ in api_calls)
    assert all(a == f"Bearer {site.tokens['crew-a']}" for _, a in api_calls)
    assert not any(site.tokens["crew-a"] in u for u, _ in requests)
    assert errors == []
    ctx.close()
    print(f"crew workflow in the browser: {time.monotonic() - t0:.1f} s")


def test_another_unit_sees_nothing_of_it(site, browser) -> None:  # noqa: ANN001
    ctx = _context(browser)
    page = ctx.new_page()
    page.goto(site.url + "/console/")
    page.get_by_label("Access token").fill("lw_not_a_token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#login-error")).to_contain_text("This token was not accepted")
    _login(page, site, "crew-b")
    cards = page.locator("#queue .card")
    expect(cards.first).to_be_visible()
    ids = set(cards.evaluate_all("els => els.map(e => e.dataset.id)"))
    assert ids == _open_ids(site, UNIT_B) and site.ids["power"] in ids
    assert not ids & {site.ids["orange"], site.ids["red"], site.ids["yellow"]}
    page.goto(f"{site.url}/console/#/alerts/{site.ids['red']}")  # a link to unit A's alert
    expect(page.locator("#detail .error")).to_have_text("Alert not found, or it is not your unit's.")
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#login-view")).to_be_visible()
    assert page.evaluate("Object.keys(sessionStorage).length") == 0
    page.reload()
    expect(page.locator("#login-view")).to_be_visible()
    ctx.close()


def test_a_claim_lost_to_another_crew_says_so_and_reloads(site, browser) -> None:  # noqa: ANN001
    ctx = _context(browser)
    ctx.route("**/api/stream", lambda route: route.abort())  # no live updates: the page still shows the old state
    page = ctx.new_page()
    page.goto(site.url + "/console/")
    page.get_by_label("Access token").fill(site.tokens["crew-a"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#live")).to_have_class("live live-reconnecting")
    page.locator(f".card[data-id='{site.ids['red']}']").click()
    article = page.locator("article.alert")
    expect(article).to_have_attribute("data-state", "new")

    r = _api(site, "crew-a2", "POST", f"/api/alerts/{site.ids['red']}/transitions", json={"to": "acknowledged", "expected_version": 1})
    assert r.status_code == 200
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("#flash")).to_have_text(
        "Someone else changed this alert first (it is now Acknowledged). The alert has been reloaded: check it before acting.")
    expect(page.locator("#flash")).to_have_attribute("role", "alert")
    expect(article).to_have_attribute("data-state", "acknowledged")
    expect(page.locator(".tl-list > li").last.locator(".tl-who")).to_have_text("crew-a2 (crew)")

    # a resolve form open while the other crew resolves: the 409, then nothing left to do
    page.get_by_role("button", name="Resolve").click()
    page.get_by_label("Cause").fill("x")
    page.get_by_label("Action taken").fill("y")
    r = _api(site, "crew-a2", "POST", f"/api/alerts/{site.ids['red']}/transitions",
             json={"to": "resolved", "cause": "burst", "action": "clamped", "expected_version": 2})
    assert r.status_code == 200
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#flash")).to_contain_text("(it is now Resolved)")
    expect(article).to_have_attribute("data-state", "resolved")
    expect(page.locator("form.action-form")).to_have_count(0)
    expect(page.locator(".actions")).to_contain_text("Nothing for you to do")
    assert _api(site, "operator", "GET", f"/api/alerts/{site.ids['red']}").json()["resolution"]["cause"] == "burst"
    ctx.close()


def test_on_a_phone_at_360_px(site, browser, tmp_path) -> None:  # noqa: ANN001
    ctx = _context(browser, viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True, device_scale_factor=2)
    page = ctx.new_page()
    page.goto(site.url + "/console")
    expect(page.locator("body[data-ready]")).to_have_count(1)
    assert _no_horizontal_scroll(page)
    page.screenshot(path=str(tmp_path / "phone-login.png"))
    _login(page, site, "crew-a")
    expect(page.locator("#queue .card").first).to_be_visible()
    assert _no_horizontal_scroll(page)
    page.screenshot(path=str(tmp_path / "phone-queue.png"), full_page=True)
    page.locator(f".card[data-id='{site.ids['yellow']}']").click()
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("article.alert")).to_have_attribute("data-state", "acknowledged")
    page.get_by_role("button", name="Resolve").click()
    expect(page.get_by_label("Cause")).to_be_visible()
    assert _no_horizontal_scroll(page)
    for loc in page.locator("button:visible, a:visible, input:visible, textarea:visible").all():
        box = loc.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360 + 0.5, loc.evaluate("e => e.outerHTML")
    # accessible basics: every field has a label, every button a text
    unlabelled = page.evaluate("[...document.querySelectorAll('input, textarea')].filter(e => !e.labels || !e.labels.length).map(e => e.id)")
    assert unlabelled == []
    blank = page.evaluate("[...document.querySelectorAll('button')].filter(b => !b.textContent.trim()).map(b => b.outerHTML)")
    assert blank == []
    page.screenshot(path=str(tmp_path / "phone-detail.png"), full_page=True)
    ctx.close()
