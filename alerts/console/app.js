// The crew console: sign in with a token, the unit's queue by level (live), one alert with its
// evidence and timeline, and the state-machine actions the API offers for it.
// Views by URL hash: "#/" the queue, "#/alerts/<id>" one alert.  Everything is built with DOM calls
// (textContent, never innerHTML), so nothing from the API is ever parsed as HTML.

import { api, clearToken, config as loadConfig, getToken, LiveStream, setToken } from "./api.js";
import { formatAge, formatLocal, formatNumber, formatOffset, parseTime } from "./fmt.js";
import { getLang, has, kindName, localName, setLang, t } from "./i18n.js";

const LEVELS = ["red", "orange", "yellow", "blue"];
const ROMAN = { red: "I", orange: "II", yellow: "III", blue: "IV" };
const TERMINAL = new Set(["closed", "false_alarm"]);
const COMMENTERS = new Set(["crew", "operator", "supervisor", "engineer", "admin"]);
// the fields each action asks for: [name, label key, required, element]
const FORMS = {
  acknowledge: [],
  dispatch: [
    ["crew", "form_crew", true, "input"],
    ["note", "form_note", false, "textarea"],
  ],
  resolve: [
    ["cause", "form_cause", true, "input"],
    ["action", "form_action", true, "textarea"],
    ["notes", "form_notes", false, "textarea"],
  ],
  close: [["note", "form_note", false, "textarea"]],
  reject: [["note", "form_note_required", true, "textarea"]],
  false_alarm: [["note", "form_note_required", true, "textarea"]],
};

const S = {
  cfg: { city: "", utc_offset_hours: 0, units: {}, districts: {}, assets: {}, lifelines: {} },
  me: null,
  view: "login",
  alerts: new Map(), // id -> alert (the queue)
  touched: new Map(), // id -> when the stream last changed it (performance.now())
  total: 0,
  shown: 0,
  detailId: null,
  detail: null,
  detailError: null,
  form: null, // {action, to, version, values}
  banner: null,
  stream: null,
  live: "off",
};

const $ = (id) => document.getElementById(id);

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// ---- names ---------------------------------------------------------------------------------------

const offset = () => S.cfg.utc_offset_hours || 0;
const local = (iso, opts) => formatLocal(iso, offset(), opts);
const stateName = (s) => (s ? t(`state_${s}`) : "");
const levelName = (l) => t(`level_${l}`);
const roleName = (r) => (has(`role_${r}`) ? t(`role_${r}`) : r);
const unitName = (id) => localName(S.cfg.units[id], id);
const districtName = (id) => localName(S.cfg.districts[id], id);
const lifelineName = (id) => localName(S.cfg.lifelines[id], id);
const assetName = (id) => (id ? localName(S.cfg.assets[id], id) : "");
const metricUnit = (a) => (a && a.metric && S.cfg.lifelines[a.lifeline]?.metrics?.[a.metric]) || "";

function actionFor(from, to) {
  if (to === "acknowledged") return "acknowledge";
  if (to === "dispatched") return from === "resolved" ? "reject" : "dispatch";
  if (to === "resolved") return "resolve";
  if (to === "closed") return "close";
  if (to === "false_alarm") return "false_alarm";
  return null;
}

function levelBadge(level) {
  return h(
    "span",
    { class: `badge level-${level}`, "aria-label": t("level_badge", { roman: ROMAN[level], name: levelName(level) }) },
    h("b", { "aria-hidden": "true" }, ROMAN[level]),
    h("span", { "aria-hidden": "true" }, levelName(level)),
  );
}

const stateChip = (state) => h("span", { class: `state state-${state}`, "data-state": state }, stateName(state));

function errorText(e) {
  const b = e.body || {};
  switch (e.status) {
    case 0:
      return t("err_network");
    case 403:
      return t("err_forbidden");
    case 404:
      return t("err_not_found");
    case 409:
      if (b.error === "version_conflict") return t("err_version_conflict", { state: stateName(b.state) });
      if (b.error === "illegal_transition")
        return t("err_illegal_transition", { from: stateName(b.from_state), to: stateName(b.to_state) });
      return t("err_conflict", { detail: e.message });
    case 422:
      return t("err_invalid", { detail: e.message });
    case 503:
      return t("err_unavailable");
    default:
      return t("err_other", { status: e.status, detail: e.message });
  }
}

// ---- messages ------------------------------------------------------------------------------------

function flash(text, kind = "ok") {
  const el = $("flash");
  if (!text) {
    el.hidden = true;
    el.textContent = "";
    return;
  }
  el.textContent = text;
  el.className = `flash flash-${kind}`;
  el.setAttribute("role", kind === "error" ? "alert" : "status");
  el.hidden = false;
}

// ---- static texts, header ------------------------------------------------------------------------

function applyStatic() {
  document.documentElement.lang = getLang() === "zh" ? "zh-CN" : "en";
  document.title = t("app_title");
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  const lang = $("lang");
  lang.textContent = t("lang_switch");
  lang.setAttribute("lang", getLang() === "zh" ? "en" : "zh-CN");
  lang.setAttribute("aria-label", t("lang_switch_label"));
  $("tz-note").textContent = t("times_note", { city: S.cfg.city || "", offset: formatOffset(offset()) });
  const who = $("who");
  if (S.me) {
    const p = { name: S.me.name, role: roleName(S.me.role), unit: S.me.unit ? unitName(S.me.unit) : "" };
    who.textContent = S.me.unit ? t("who_unit", p) : t("who", p);
    who.hidden = false;
    $("logout").hidden = false;
  } else {
    who.hidden = true;
    $("logout").hidden = true;
  }
  renderLive();
}

function renderLive() {
  const el = $("live");
  if (!S.me || S.live === "off") {
    el.hidden = true;
    return;
  }
  el.hidden = false;
  el.className = `live live-${S.live}`;
  el.textContent = t(S.live);
}

// ---- sign in / out -------------------------------------------------------------------------------

async function onLogin(ev) {
  ev.preventDefault();
  const input = $("token");
  const button = $("login-button");
  const err = $("login-error");
  const token = input.value.trim();
  err.hidden = true;
  if (!token) {
    err.textContent = t("form_missing", { fields: t("token_label") });
    err.hidden = false;
    input.focus();
    return;
  }
  button.disabled = true;
  button.textContent = t("login_checking");
  try {
    const me = await api("api/me", { token });
    setToken(token);
    input.value = "";
    signedIn(me);
    route();
  } catch (e) {
    err.textContent = e.status === 401 ? t("login_bad") : errorText(e);
    err.hidden = false;
    input.focus();
  } finally {
    button.disabled = false;
    button.textContent = t("login_button");
  }
}

function signedIn(me) {
  S.me = me;
  flash(null);
  applyStatic();
  if (S.stream) S.stream.stop();
  S.stream = new LiveStream({
    onEvent: onStreamEvent,
    onOpen: onStreamOpen,
    onStatus: (st) => {
      S.live = st;
      renderLive();
    },
    onAuthError: () => signOut("session_ended"),
  });
  S.stream.start();
}

function signOut(reason = "signed_out") {
  if (S.stream) S.stream.stop();
  S.stream = null;
  S.live = "off";
  clearToken();
  S.me = null;
  S.alerts.clear();
  S.detail = null;
  S.detailId = null;
  S.form = null;
  applyStatic();
  if (location.hash && location.hash !== "#/") history.replaceState(null, "", "#/");
  showView("login");
  flash(t(reason), reason === "signed_out" ? "ok" : "error");
  $("token").focus();
}

// ---- routing -------------------------------------------------------------------------------------

function showView(name) {
  S.view = name;
  $("login-view").hidden = name !== "login";
  $("queue-view").hidden = name !== "queue";
  $("detail-view").hidden = name !== "detail";
}

function route() {
  if (!S.me || !getToken()) {
    showView("login");
    return;
  }
  flash(null);
  const m = location.hash.match(/^#\/alerts\/([^/?#]+)$/);
  if (m) {
    const id = decodeURIComponent(m[1]);
    if (id !== S.detailId) {
      S.detail = null;
      S.form = null;
      S.banner = null;
    }
    S.detailId = id;
    showView("detail");
    renderDetail();
    loadDetail();
  } else {
    S.detailId = null;
    S.detail = null;
    S.form = null;
    showView("queue");
    renderQueue();
    loadQueue();
  }
}

// ---- the queue -----------------------------------------------------------------------------------

function queueOrder(a, b) {
  return (
    LEVELS.indexOf(a.level) - LEVELS.indexOf(b.level) ||
    parseTime(a.created_at) - parseTime(b.created_at) ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  );
}

function upsert(alert) {
  const old = S.alerts.get(alert.id);
  if (old && old.version > alert.version) return;
  S.alerts.set(alert.id, alert);
}

async function loadQueue() {
  const started = performance.now();
  try {
    const page = await api("api/alerts?limit=200");
    const fresh = new Map();
    for (const a of page.items) {
      const old = S.alerts.get(a.id);
      fresh.set(a.id, old && old.version > a.version ? old : a);
    }
    for (const [id, a] of S.alerts) {
      if (!fresh.has(id) && (S.touched.get(id) || 0) > started) fresh.set(id, a); // arrived while we asked
    }
    S.alerts = fresh;
    S.total = page.total;
    S.shown = page.items.length;
    if (S.view === "queue") renderQueue();
  } catch (e) {
    if (e.status === 401) return signOut("session_ended");
    if (S.view === "queue") flash(errorText(e), "error");
  }
}

function renderQueue() {
  if (S.view !== "queue") return;
  const title = S.me && S.me.unit ? t("queue_title_unit", { unit: unitName(S.me.unit) }) : t("queue_title");
  $("queue-title").textContent = title;
  const items = [...S.alerts.values()].filter((a) => !TERMINAL.has(a.state)).sort(queueOrder);
  $("queue-count").textContent = t("queue_count", { n: items.length });
  const now = Date.now();
  const list = $("queue");
  list.replaceChildren(
    ...items.map((a) => {
      const overdue = a.state === "new" && parseTime(a.ack_due) < now;
      const where = [assetName(a.asset), districtName(a.district)].filter(Boolean).join(" · ");
      return h(
        "li",
        { class: "queue-item" },
        h(
          "a",
          {
            class: `card level-${a.level}`,
            href: `#/alerts/${encodeURIComponent(a.id)}`,
            "data-id": a.id,
            "data-level": a.level,
            "data-state": a.state,
          },
          levelBadge(a.level),
          h(
            "span",
            { class: "card-main" },
            h("span", { class: "kind" }, kindName(a.kind)),
            h("span", { class: "where" }, where),
            h("span", { class: "sensors" }, a.sensors.join(", ")),
          ),
          h(
            "span",
            { class: "card-meta" },
            stateChip(a.state),
            overdue ? h("span", { class: "overdue" }, t("overdue")) : null,
            h("time", { datetime: a.created_at, class: "at" }, local(a.created_at, { seconds: false })),
            h("span", { class: "age" }, formatAge(a.created_at, now)),
          ),
        ),
      );
    }),
  );
  $("queue-empty").hidden = items.length > 0;
  const more = $("queue-more");
  more.hidden = !(S.total > S.shown);
  more.textContent = t("queue_more", { shown: S.shown, total: S.total });
}

// ---- one alert -----------------------------------------------------------------------------------

async function loadDetail() {
  const id = S.detailId;
  if (!id) return;
  try {
    const d = await api(`api/alerts/${encodeURIComponent(id)}`);
    if (S.detailId !== id) return;
    S.detail = d;
    S.detailError = null;
    upsert(d);
  } catch (e) {
    if (e.status === 401) return signOut("session_ended");
    if (S.detailId !== id) return;
    S.detail = null;
    S.detailError = errorText(e);
  }
  renderDetail();
}

function captureForm() {
  const form = document.querySelector("#detail form.action-form");
  if (!form || !S.form || form.dataset.action !== S.form.action) return;
  for (const el of form.querySelectorAll("input, textarea")) S.form.values[el.name] = el.value;
}

function renderDetail() {
  if (S.view !== "detail") return;
  captureForm();
  const box = $("detail");
  const d = S.detail;
  if (!d) {
    box.replaceChildren(h("p", { class: S.detailError ? "error" : "empty" }, S.detailError || t("loading")));
    return;
  }
  if (S.form && !d.actions.includes(S.form.to)) S.form = null; // no longer possible: drop the form
  box.replaceChildren(
    h(
      "article",
      { class: `alert level-${d.level}`, "data-id": d.id, "data-state": d.state, "data-version": d.version },
      h(
        "header",
        { class: "detail-head" },
        levelBadge(d.level),
        h("h2", { id: "detail-title" }, kindName(d.kind)),
        stateChip(d.state),
        h("code", { class: "kind-id" }, d.kind),
      ),
      S.banner ? h("p", { class: "banner", role: "status" }, S.banner) : null,
      renderActions(d),
      renderFacts(d),
      renderEvidence(d),
      renderTimeline(d),
    ),
  );
}

function renderActions(d) {
  const buttons = d.actions
    .map((to) => [to, actionFor(d.state, to)])
    .filter(([, action]) => action)
    .map(([to, action]) =>
      h(
        "button",
        {
          type: "button",
          class: `act act-${action}${action === "acknowledge" ? " primary" : ""}`,
          "data-action": action,
          "aria-expanded": FORMS[action].length ? String(S.form?.action === action) : null,
          onclick: () => onAction(d, to, action),
        },
        t(`action_${action}`),
      ),
    );
  return h(
    "section",
    { class: "actions", "aria-labelledby": "actions-title" },
    h("h3", { id: "actions-title" }, t("actions_title")),
    buttons.length ? h("div", { class: "buttons" }, buttons) : h("p", { class: "help" }, t("no_actions")),
    S.form ? renderForm(d) : null,
  );
}

function onAction(d, to, action) {
  flash(null);
  if (!FORMS[action].length) {
    submitTransition(d.id, { action, to, version: d.version, values: {} });
    return;
  }
  captureForm();
  S.form = S.form && S.form.action === action ? null : { action, to, version: d.version, values: {} };
  renderDetail();
  const first = document.querySelector("#detail form.action-form input, #detail form.action-form textarea");
  if (first) first.focus();
}

function renderForm(d) {
  const f = S.form;
  const fields = FORMS[f.action].map(([name, label, required, tag]) => {
    const id = `f-${f.action}-${name}`;
    return h(
      "div",
      { class: "field" },
      h("label", { for: id }, t(label)),
      h(tag, {
        id,
        name,
        required,
        "aria-required": required ? "true" : null,
        maxlength: 4000,
        rows: tag === "textarea" ? 3 : null,
        autocomplete: "off",
        value: tag === "input" ? f.values[name] || "" : null,
      }),
    );
  });
  for (const fld of fields) {
    const ta = fld.querySelector("textarea");
    if (ta) ta.value = f.values[ta.name] || "";
  }
  return h(
    "form",
    {
      class: `action-form form-${f.action}`,
      "data-action": f.action,
      novalidate: true,
      onsubmit: (ev) => {
        ev.preventDefault();
        captureForm();
        const missing = FORMS[f.action].filter(([name, , req]) => req && !(f.values[name] || "").trim());
        if (missing.length) {
          flash(t("form_missing", { fields: missing.map(([, label]) => t(label)).join(", ") }), "error");
          return;
        }
        submitTransition(d.id, f);
      },
    },
    h("h4", {}, t(`action_${f.action}`)),
    fields,
    h(
      "div",
      { class: "buttons" },
      h("button", { type: "submit", class: "primary", "data-submit": f.action }, t("form_submit")),
      h(
        "button",
        {
          type: "button",
          class: "ghost",
          onclick: () => {
            S.form = null;
            renderDetail();
          },
        },
        t("form_cancel"),
      ),
    ),
  );
}

async function submitTransition(id, f) {
  const body = { to: f.to, expected_version: f.version };
  for (const [k, v] of Object.entries(f.values)) {
    if (k === "crew") {
      const crew = v.split(/[,，、;；\n]/).map((s) => s.trim()).filter(Boolean);
      if (crew.length) body.crew = crew;
    } else if (v && v.trim()) body[k] = v.trim();
  }
  for (const b of document.querySelectorAll("#detail button")) b.disabled = true;
  try {
    await api(`api/alerts/${encodeURIComponent(id)}/transitions`, { method: "POST", body });
    S.form = null;
    S.banner = null;
    flash(t(`done_${f.action}`), "ok");
  } catch (e) {
    if (e.status === 401) return signOut("session_ended");
    flash(errorText(e), "error");
    if (e.status === 409 && S.form) S.form.version = null; // take the version of the reloaded alert below
  }
  await loadDetail();
  if (S.form && S.form.version === null && S.detail) S.form.version = S.detail.version;
  renderDetail();
}

function fact(label, ...value) {
  const v = value.flat().filter((x) => x !== null && x !== undefined && x !== "");
  if (!v.length) return null;
  return [h("dt", {}, t(label)), h("dd", {}, v)];
}

function timeWithAge(iso) {
  if (!iso) return null;
  return [h("time", { datetime: iso }, local(iso)), " ", h("span", { class: "age" }, `(${formatAge(iso)})`)];
}

function renderFacts(d) {
  const unit = metricUnit(d);
  const now = Date.now();
  const due = (iso, late) =>
    iso ? [h("time", { datetime: iso }, local(iso)), late ? h("span", { class: "overdue" }, t("overdue")) : null] : null;
  return h(
    "dl",
    { class: "facts" },
    fact("f_lifeline", lifelineName(d.lifeline)),
    fact("f_district", `${districtName(d.district)} (${d.district})`),
    fact("f_asset", d.asset ? `${assetName(d.asset)} (${d.asset})` : null),
    fact("f_unit", unitName(d.unit)),
    fact("f_sensors", d.sensors.join(", ")),
    fact("f_metric", d.metric ? `${d.metric}${unit ? ` [${unit}]` : ""}` : null),
    fact("f_first_seen", timeWithAge(d.first_seen)),
    fact("f_last_seen", d.last_seen !== d.first_seen ? timeWithAge(d.last_seen) : null),
    fact("f_ended", d.ended ? local(d.ended) : null),
    fact("f_created_at", local(d.created_at)),
    fact("f_ack_due", d.state === "new" ? due(d.ack_due, parseTime(d.ack_due) < now) : null),
    fact(
      "f_resolve_due",
      ["new", "acknowledged", "dispatched"].includes(d.state) ? due(d.resolve_due, parseTime(d.resolve_due) < now) : null,
    ),
    fact("f_acknowledged", d.acknowledged_by ? `${d.acknowledged_by}, ${local(d.acknowledged_at)}` : null),
    fact("f_crew", d.crew && d.crew.length ? d.crew.join(", ") : null),
    fact(
      "f_resolution",
      d.resolution
        ? h(
            "ul",
            { class: "plain resolution" },
            d.resolution.cause ? h("li", {}, t("tl_cause", { cause: d.resolution.cause })) : null,
            d.resolution.action ? h("li", {}, t("tl_resolution_action", { action: d.resolution.action })) : null,
            d.resolution.notes ? h("li", {}, t("tl_notes", { notes: d.resolution.notes })) : null,
          )
        : null,
    ),
    fact("f_incident", d.incident_id),
    fact("f_count", d.count > 1 ? String(d.count) : null),
    fact("f_silenced", d.silenced ? t("yes") : null),
  );
}

// ---- evidence ------------------------------------------------------------------------------------

const THRESHOLD_KEY =
  /^(crossed.*|limits?|levels|threshold.*|thresholds.*|op|nominal|design.*|shares|baseline.*|.*_reference|reference.*|expected.*|typical.*|learned.*|rule_set|overrides|model|scorer|envelope.*)$/;
const SOURCE_KEY = /^(source|level_source|sources?_.*|standard)$/;
const RELATED_KEY = /^(related.*|sensors.*|.*_sensors)$/;
const UNIT_KEYS = new Set(["value", "peak", "baseline", "nominal", "design", "crossed", "limits"]);

function evLabel(key) {
  return has(`ek_${key}`) ? t(`ek_${key}`) : key.replace(/_/g, " ");
}

function evValue(v, unit) {
  const u = unit ? ` ${unit}` : "";
  if (v === null || v === undefined) return "—";
  if (typeof v === "number") return formatNumber(v) + u;
  if (typeof v === "boolean") return v ? "✓" : "✗";
  if (Array.isArray(v)) return v.map((x) => (typeof x === "object" ? JSON.stringify(x) : evValue(x))).join(", ");
  if (typeof v === "object") {
    const entries = Object.entries(v);
    if (!entries.length) return "—";
    return entries
      .map(([k, x]) => `${LEVELS.includes(k) ? `${ROMAN[k]} ${levelName(k)}` : k}: ${evValue(x, unit)}`)
      .join("; ");
  }
  return String(v);
}

function renderEvidence(d) {
  const ev = d.evidence || {};
  const unit = d.detector === "threshold" ? metricUnit(d) : ""; // other detectors' numbers need not be in the metric's unit
  const groups = { values: [], thresholds: [], related: [], source: [], other: [] };
  if (d.peak_value !== null && d.peak_value !== undefined && !("peak" in ev) && !("value" in ev))
    groups.values.push(["peak_value", d.peak_value]);
  for (const [k, v] of Object.entries(ev)) {
    if (SOURCE_KEY.test(k)) groups.source.push([k, v]);
    else if (RELATED_KEY.test(k)) groups.related.push([k, v]);
    else if (THRESHOLD_KEY.test(k)) groups.thresholds.push([k, v]);
    else if (typeof v === "number" || typeof v === "boolean" || v === null || k === "value" || k === "peak" || k === "peak_is")
      groups.values.push([k, v]);
    else groups.other.push([k, v]);
  }
  const related = new Set();
  for (const [, v] of groups.related) for (const s of Array.isArray(v) ? v : [v]) related.add(String(s));
  groups.related = [["alert_sensors", d.sensors.join(", ")]].concat(
    related.size ? [["related_sensors", [...related].filter((s) => !d.sensors.includes(s)).join(", ") || "—"]] : [],
  );
  const section = (key, rows) =>
    rows.length
      ? h(
          "div",
          { class: `ev-group ev-${key}`, "data-group": key },
          h("h4", {}, t(`ev_${key}`)),
          h(
            "dl",
            { class: "facts" },
            rows.map(([k, v]) => [
              h("dt", {}, evLabel(k)),
              h("dd", { "data-key": k }, typeof v === "string" ? v : evValue(v, UNIT_KEYS.has(k) ? unit : "")),
            ]),
          ),
        )
      : null;
  const empty = !Object.keys(ev).length;
  return h(
    "section",
    { class: "evidence", "aria-labelledby": "evidence-title" },
    h("h3", { id: "evidence-title" }, t("evidence_title")),
    empty ? h("p", { class: "help" }, t("ev_none")) : null,
    section("values", groups.values),
    section("thresholds", groups.thresholds),
    section("related", groups.related),
    section("source", groups.source),
    section("other", groups.other),
  );
}

// ---- timeline ------------------------------------------------------------------------------------

function timelineText(e) {
  if (e.kind === "transition") return t("tl_transition", { from: stateName(e.from_state), to: stateName(e.to_state) });
  if (has(`tl_${e.kind}`)) return t(`tl_${e.kind}`);
  return e.kind.replace(/_/g, " ");
}

function renderTimeline(d) {
  const items = d.timeline.map((e) => {
    const data = e.data || {};
    const extra = [];
    if (e.kind === "raised" && data.level) extra.push(`${ROMAN[data.level] || ""} ${levelName(data.level)}`);
    if (e.kind === "level_raised" && data.to_level) extra.push(`→ ${levelName(data.to_level)}`);
    if (data.crew && data.crew.length) extra.push(t("tl_crew", { crew: data.crew.join(", ") }));
    if (data.cause) extra.push(t("tl_cause", { cause: data.cause }));
    if (data.resolution_action) extra.push(t("tl_resolution_action", { action: data.resolution_action }));
    if (data.notes) extra.push(t("tl_notes", { notes: data.notes }));
    return h(
      "li",
      { class: `tl tl-${e.kind}`, "data-kind": e.kind, "data-id": e.id },
      h("time", { datetime: e.at }, local(e.at)),
      h("span", { class: "tl-what" }, timelineText(e)),
      h("span", { class: "tl-who" }, t("tl_actor", { actor: e.actor, role: roleName(e.role) })),
      e.note ? h("p", { class: "tl-note" }, e.note) : null,
      extra.length ? h("p", { class: "tl-data" }, extra.join(" · ")) : null,
    );
  });
  const canComment = S.me && COMMENTERS.has(S.me.role);
  return h(
    "section",
    { class: "timeline", "aria-labelledby": "timeline-title" },
    h("h3", { id: "timeline-title" }, t("timeline_title")),
    items.length ? h("ol", { class: "tl-list" }, items) : h("p", { class: "help" }, t("timeline_empty")),
    canComment ? renderCommentForm(d) : null,
  );
}

function renderCommentForm(d) {
  return h(
    "form",
    {
      class: "comment-form",
      novalidate: true,
      onsubmit: async (ev) => {
        ev.preventDefault();
        const ta = ev.target.querySelector("textarea");
        const text = ta.value.trim();
        if (!text) {
          flash(t("form_missing", { fields: t("comment_label") }), "error");
          return;
        }
        try {
          await api(`api/alerts/${encodeURIComponent(d.id)}/comments`, { method: "POST", body: { text } });
          ta.value = "";
          flash(t("comment_sent"), "ok");
        } catch (e) {
          if (e.status === 401) return signOut("session_ended");
          flash(errorText(e), "error");
        }
        await loadDetail();
      },
    },
    h("label", { for: "comment-text" }, t("comment_label")),
    h("textarea", { id: "comment-text", name: "text", rows: 2, maxlength: 4000 }),
    h("div", { class: "buttons" }, h("button", { type: "submit" }, t("comment_send"))),
  );
}

// ---- live updates --------------------------------------------------------------------------------

let queueTimer = null;

function onStreamOpen() {
  // events between our last look and this connection are not replayed without an event id: look again
  if (S.view === "queue") loadQueue();
  else if (S.view === "detail") loadDetail();
}

function onStreamEvent(type, ev) {
  if (ev.alert) {
    upsert(ev.alert);
    S.touched.set(ev.alert.id, performance.now());
  }
  if (S.view === "queue" && !queueTimer) {
    queueTimer = setTimeout(() => {
      queueTimer = null;
      renderQueue();
    }, 50);
  }
  if (S.view === "detail" && ev.alert_id === S.detailId) {
    const mine = S.me && ev.actor === S.me.name;
    if (!mine && S.form) {
      const what = ev.from || ev.to ? t("tl_transition", { from: stateName(ev.from), to: stateName(ev.to) }) : timelineText(ev);
      S.banner = t("changed_by", { actor: ev.actor, what });
    }
    loadDetail();
  }
}

// ---- start ---------------------------------------------------------------------------------------

function toggleLang() {
  captureForm();
  setLang(getLang() === "zh" ? "en" : "zh");
  applyStatic();
  if (S.view === "queue") renderQueue();
  if (S.view === "detail") renderDetail();
}

async function boot() {
  setLang(getLang());
  $("login-form").addEventListener("submit", onLogin);
  $("lang").addEventListener("click", toggleLang);
  $("logout").addEventListener("click", () => signOut("signed_out"));
  window.addEventListener("hashchange", route);
  setInterval(() => {
    if (S.view === "queue") renderQueue(); // ages and overdue marks
  }, 30000);
  applyStatic();
  try {
    S.cfg = { ...S.cfg, ...(await loadConfig()) };
  } catch {
    /* times stay in UTC, names stay ids */
  }
  applyStatic();
  if (getToken()) {
    try {
      signedIn(await api("api/me"));
    } catch (e) {
      if (e.status === 401) {
        clearToken();
        flash(t("session_ended"), "error");
      } else flash(errorText(e), "error");
    }
  }
  route();
  document.body.dataset.ready = "1";
}

boot();
