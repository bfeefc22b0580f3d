// The report page: controls → one API request → summary, chart, table, CSV download.

import {
  REPORTS, NUMERIC, TIME_ZONES, columnsFor, formatCell, loadReports, sortKey, totalsFor,
} from "/static/reports.js";
import { drawHBars, drawTimeBars, wallClock } from "/static/charts.js";

const TOKEN_KEY = "streamagg.token";          // sessionStorage: this tab only, never the URL
const CHOICES_KEY = "streamagg.page.choices"; // localStorage: last choices, never the token
const HOUR_MS = 3600 * 1000;
const DAY_MS = 24 * HOUR_MS;
const LIVE_EVERY_MS = 5000; // the live refresh asks at most this often

const $ = (id) => document.getElementById(id);
const page = {
  last: null,       // {reportId, customer, params, body, elapsed}
  sort: null,       // {key, dir: 1 | -1}
  inFlight: null,   // AbortController of the running request
  customersTimer: null,
  live: null,       // {timer, ticker, checkedAt} while the shown range includes the present
};

// ---------- remembered choices and the token ----------

function loadChoices() {
  try {
    return JSON.parse(localStorage.getItem(CHOICES_KEY) || "{}");
  } catch {
    return {};
  }
}

function saveChoices() {
  const choices = {
    report: currentReport(), customer: $("customer").value.trim(), mode: currentMode(),
    month: $("month").value,
    fromDate: $("from-date").value, fromHour: $("from-hour").value,
    toDate: $("to-date").value, toHour: $("to-hour").value,
    granularity: $("granularity").value,
    tz: $("tz").value,
  };
  localStorage.setItem(CHOICES_KEY, JSON.stringify(choices));
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function setTokenState(state, text) {
  const badge = $("token-state");
  badge.dataset.state = state;
  badge.textContent = text;
}

function onTokenInput() {
  const value = $("token").value.trim();
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
  setTokenState(value ? "set" : "missing", value ? "set for this tab" : "not set");
  clearTimeout(page.customersTimer);
  page.customersTimer = setTimeout(loadCustomers, 300); // (once the typing stopped)
}

/** The customers the token may read, offered as the customer field's suggestions (the
 * browser filters them as one types); the last choice stays in the field. */
async function loadCustomers() {
  const list = $("customer-list");
  if (!token()) {
    list.replaceChildren();
    return;
  }
  try {
    // (partial: one stopped partition must not take the suggestions from every customer)
    const body = await (await apiGet("/api/v1/customers?partial=true", "application/json")).json();
    list.replaceChildren(...body.customers.map((c) => {
      const option = document.createElement("option");
      option.value = c.customer_id;
      option.label = `${c.customer_id} · latest call ${c.latest_call.replace("T", " ").slice(0, 16)} UTC`;
      return option;
    }));
    list.dataset.count = String(body.customers.length);
    list.dataset.missingPartitions = (body.unavailable_partitions || []).map((u) => u.partition).join(",");
  } catch { /* no list (token refused, worker not ready): the field still takes any id */ }
}

// ---------- controls ----------

function currentReport() {
  const checked = document.querySelector('input[name="report"]:checked');
  return checked ? checked.value : Object.keys(REPORTS)[0];
}

function currentMode() {
  return $("mode-range").checked ? "range" : "month";
}

function buildReportTabs(selected) {
  const tabs = $("report-tabs");
  for (const [id, report] of Object.entries(REPORTS)) {
    const label = document.createElement("label");
    label.className = "tab";
    const input = document.createElement("input");
    Object.assign(input, { type: "radio", name: "report", value: id, id: `report-${id}` });
    input.checked = id === selected;
    const text = document.createElement("span");
    text.textContent = report.short;
    label.title = report.title;
    label.append(input, text);
    tabs.appendChild(label);
  }
}

// Dates and hours of the range inputs are wall-clock times of the chosen zone: ms here are
// "pseudo-UTC" (the zone's wall clock read as UTC, charts.js wallClock).
const nowWall = () => wallClock($("tz").value)(Date.now());
const isoHour = (ms) => new Date(ms).toISOString().slice(0, 16);
const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);
const isoMonth = (ms) => new Date(ms).toISOString().slice(0, 7);

/** Hour pickers for hourly reports; whole days only for did-cli. */
function applyGrain() {
  const days = REPORTS[currentReport()].whole_days;
  for (const id of ["from-hour", "to-hour"]) $(id).hidden = days;
  const periods = REPORTS[currentReport()].granularities;
  const select = $("granularity");
  const kept = select.value;
  select.replaceChildren(...periods.map((p) => new Option(p, p)));
  if (periods.includes(kept)) select.value = kept;
  $("granularity-field").hidden = periods.length === 0;
  $("report-hint").textContent = REPORTS[currentReport()].hint;
  document.querySelector('[data-preset="24h"]').disabled = days;
}

function buildHourPickers() {
  for (const id of ["from-hour", "to-hour"]) {
    for (let hour = 0; hour < 24; hour++) {
      const text = String(hour).padStart(2, "0");
      $(id).add(new Option(`${text}:00`, text));
    }
  }
}

/** The API's time zones; the browser's own chosen unless another was last time. */
function buildZones(remembered) {
  const names = new Set(TIME_ZONES);
  const own = Intl.DateTimeFormat().resolvedOptions().timeZone;
  $("tz").replaceChildren(...TIME_ZONES.map((name) => new Option(name.replaceAll("_", " "), name)));
  $("tz").value = [remembered, own, "UTC"].find((name) => names.has(name));
}

function applyMode() {
  const range = currentMode() === "range";
  $("range-inputs").hidden = !range;
  $("month-inputs").hidden = range;
}

function setRange(fromMs, toMs) {
  $("mode-range").checked = true;
  for (const [id, ms] of [["from", fromMs], ["to", toMs]]) {
    $(`${id}-date`).value = isoDay(ms);
    $(`${id}-hour`).value = isoHour(ms).slice(11, 13);
  }
  applyMode();
}

function setMonth(ms) {
  $("mode-month").checked = true;
  $("month").value = isoMonth(ms);
  applyMode();
}

const PRESETS = [
  ["24h", "Last 24 h", () => {
    const end = Math.floor(nowWall() / HOUR_MS) * HOUR_MS + HOUR_MS;
    setRange(end - DAY_MS, end);
  }],
  ["today", "Today", () => {
    const today = Math.floor(nowWall() / DAY_MS) * DAY_MS;
    setRange(today, today + DAY_MS);
  }],
  ["yesterday", "Yesterday", () => {
    const today = Math.floor(nowWall() / DAY_MS) * DAY_MS;
    setRange(today - DAY_MS, today);
  }],
  ["7d", "Last 7 days", () => {
    const tomorrow = Math.floor(nowWall() / DAY_MS) * DAY_MS + DAY_MS;
    setRange(tomorrow - 7 * DAY_MS, tomorrow);
  }],
  ["month", "This month", () => setMonth(nowWall())],
  ["prev-month", "Last month", () => {
    const now = new Date(nowWall());
    setMonth(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
  }],
];

function buildPresets() {
  for (const [key, label, apply] of PRESETS) {
    const button = document.createElement("button");
    Object.assign(button, { type: "button", className: "chip", textContent: label });
    button.dataset.preset = key;
    button.addEventListener("click", () => {
      apply();
      saveChoices();
      if ($("customer").value.trim()) generate();
    });
    $("presets").appendChild(button);
  }
}

/** The query parameters of the chosen range, or an error string naming what to fix. */
function rangeParams() {
  if (currentMode() === "month") {
    const month = $("month").value;
    return /^\d{4}-\d{2}$/.test(month) ? { month, tz: $("tz").value } : "Choose a month.";
  }
  const days = REPORTS[currentReport()].whole_days;
  const params = {};
  for (const id of ["from", "to"]) {
    const date = $(`${id}-date`).value;
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) return `Choose the ${id} day.`;
    const hour = days ? "00" : $(`${id}-hour`).value;
    params[id] = `${date}T${hour}:00:00`; // (a wall time of the zone: the API reads it so)
  }
  params.tz = $("tz").value;
  if (params.to <= params.from) return "To must be after from.";
  return params;
}

// ---------- talking to the API ----------

function reportUrl(reportId, customer, params) {
  const query = new URLSearchParams(params).toString();
  return `/api/v1/customers/${encodeURIComponent(customer)}/reports/${reportId}?${query}`;
}

// The page shows at most this many pages of 10,000 rows; the CSV download has every row.
const MAX_PAGES = 20;

/** GET with the bearer token; resolves to the Response or throws {status, code, message}. */
async function apiGet(url, accept, signal) {
  let response;
  try {
    response = await fetch(url, {
      headers: { Authorization: `Bearer ${token()}`, Accept: accept }, signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw { status: 0, code: "network", message: `cannot reach the worker (${error.message})` };
  }
  if (response.ok) return response;
  let detail = { code: "http_error", message: response.statusText || "request failed" };
  try {
    const body = await response.json();
    if (body && body.error) detail = body.error;
  } catch { /* not the API's JSON error: keep the status text */ }
  throw { status: response.status, code: detail.code, message: detail.message };
}

/** Every page of a JSON answer: the first body with the rows of all pages (MAX_PAGES at most),
 * and the first page's ETag (what the live refresh sends back). */
async function allPages(url, signal, firstResponse = null) {
  const response = firstResponse || await apiGet(url, "application/json", signal);
  const first = await response.json();
  first.etag = response.headers.get("ETag") || "";
  let next = first.next;
  for (let pages = 1; next && pages < MAX_PAGES; pages += 1) {
    const body = await (await apiGet(next, "application/json", signal)).json();
    first.rows.push(...body.rows);
    next = body.next;
  }
  first.truncated = Boolean(next);
  delete first.next;
  return first;
}

function hideResult() {
  $("result").hidden = true;
  $("placeholder").hidden = false;
}

function requestContext() {
  if (!token()) {
    showMessage("warn", "API token needed",
      "Enter your API token at the top right. It is kept for this browser tab only.");
    $("token").focus();
    return null;
  }
  const customer = $("customer").value.trim();
  if (!customer) {
    showMessage("warn", "Customer needed", "Enter the customer (account id) to report on.");
    $("customer").focus();
    return null;
  }
  const params = rangeParams();
  if (typeof params === "string") {
    showMessage("warn", "Check the range", params);
    return null;
  }
  const periods = REPORTS[currentReport()].granularities;
  if (periods.length && $("granularity").value !== periods[0]) {
    params.granularity = $("granularity").value;
  }
  return { reportId: currentReport(), customer, params };
}

async function generate() {
  stopLive();
  saveChoices();
  const context = requestContext();
  if (!context) {
    hideResult();
    return;
  }
  if (page.inFlight) page.inFlight.abort();
  const controller = new AbortController();
  page.inFlight = controller;
  setBusy(true);
  const started = performance.now();
  try {
    const url = reportUrl(context.reportId, context.customer, context.params);
    const body = await allPages(url, controller.signal);
    page.last = { ...context, body, elapsed: performance.now() - started };
    page.sort = null;
    setTokenState("set", "accepted");
    renderResult();
    startLive();
  } catch (error) {
    if (error.name !== "AbortError") showApiError(error, context);
  } finally {
    if (page.inFlight === controller) {
      page.inFlight = null;
      setBusy(false);
    }
  }
}

// ---------- live refresh: while the range includes the present ----------

function includesNow(body) {
  const now = Date.now();
  return Date.parse(body.from) <= now && now < Date.parse(body.to);
}

function stopLive() {
  if (page.live) {
    clearTimeout(page.live.timer);
    clearInterval(page.live.ticker);
    page.live = null;
  }
  $("live").hidden = true;
}

function startLive() {
  stopLive();
  if (!page.last || !includesNow(page.last.body)) return;
  page.live = { checkedAt: Date.now(), timer: null, ticker: setInterval(showLive, 1000) };
  showLive();
  page.live.timer = setTimeout(refreshLive, LIVE_EVERY_MS);
}

function showLive() {
  if (!page.live) return;
  const seconds = Math.max(0, Math.round((Date.now() - page.live.checkedAt) / 1000));
  $("live").textContent = `live · updated ${seconds} s ago`;
  $("live").hidden = false;
}

/** Ask again with the answer's ETag: a 304 means nothing changed (no body is sent); a 200
 * brings the new answer, shown in place (sort order kept). At most every LIVE_EVERY_MS. */
async function refreshLive() {
  const live = page.live;
  const last = page.last;
  if (!live || !last) return;
  if (!document.hidden && !page.inFlight) {
    try {
      const url = reportUrl(last.reportId, last.customer, last.params);
      const response = await fetch(url, {
        headers: {
          Authorization: `Bearer ${token()}`,
          Accept: "application/json",
          "If-None-Match": last.body.etag,
        },
      });
      if (page.live !== live) return; // a new request replaced this one meanwhile
      if (response.status === 200) {
        const body = await allPages(url, undefined, response);
        if (page.live !== live) return;
        page.last = { ...last, body };
        renderResult();
      }
      if (response.status === 200 || response.status === 304) live.checkedAt = Date.now();
      showLive();
    } catch { /* the worker is away for a moment: the next round asks again */ }
  }
  if (page.live !== live) return;
  if (includesNow(page.last.body)) live.timer = setTimeout(refreshLive, LIVE_EVERY_MS);
  else stopLive();
}

async function downloadCsv() {
  const last = page.last;
  if (!last) return;
  const button = $("download-csv");
  button.disabled = true;
  try {
    const url = reportUrl(last.reportId, last.customer, { ...last.params, format: "csv" });
    const response = await apiGet(url, "text/csv");
    const blob = await response.blob();
    const disposition = response.headers.get("Content-Disposition") || "";
    const match = /filename="([^"]+)"/.exec(disposition);
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = match ? match[1] : `${last.reportId}_${last.customer}.csv`;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  } catch (error) {
    showApiError(error, last);
  } finally {
    button.disabled = false;
  }
}

function setBusy(busy) {
  const button = $("generate");
  button.disabled = busy;
  button.textContent = busy ? "Generating…" : "Generate Report";
  document.body.classList.toggle("busy", busy);
}

// ---------- messages ----------

function showMessage(kind, title, text) {
  const box = $("message");
  box.className = `message message-${kind}`;
  const strong = document.createElement("strong");
  strong.textContent = title;
  const span = document.createElement("span");
  span.className = "message-text";
  span.textContent = text;
  box.replaceChildren(strong, span);
  box.hidden = false;
}

function clearMessage() {
  $("message").hidden = true;
}

function showApiError(error, context) {
  const { status, message } = error;
  hideResult(); // never leave an older answer on screen under a new error
  if (status === 401) {
    setTokenState("refused", "refused");
    showMessage("error", "Token refused (401)", `${message}. Check the API token and try again.`);
  } else if (status === 403) {
    setTokenState("refused", "not allowed");
    showMessage("error", "Not allowed (403)",
      `${message}. Ask for a token that covers customer ${context.customer}.`);
  } else if (status === 503) {
    showMessage("warn", "Not ready (503)", `${message}.`);
  } else if (status === 0) {
    showMessage("error", "No connection", `The page ${message}.`);
  } else {
    showMessage("error", `Request rejected (${status})`, message);
  }
}

// ---------- the result ----------

function rangeText(body) {
  const show = (iso) => iso.replace("T", " ").replace(/:00(Z|[+-]\d\d:\d\d)$/, "")
    .replace(/ 00:00$/, "");
  return `${show(body.from)} → ${show(body.to)} ${body.tz}`;
}

function renderResult() {
  const { reportId, body, elapsed } = page.last;
  const rows = body.rows;
  $("placeholder").hidden = true;
  $("download-csv").disabled = false;
  $("result-title").textContent = REPORTS[reportId].title;
  $("result-customer").textContent = body.customer_id;
  $("result-range").textContent = rangeText(body);
  $("row-count").textContent = rows.length.toLocaleString("en-US")
    + (body.truncated ? " (the first; download the CSV for all)" : "");
  $("result-time").textContent = `${Math.max(1, Math.round(elapsed))} ms`;
  $("result").hidden = false;
  if (!rows.length) {
    showMessage("info", "No calls in this range.",
      `Customer ${body.customer_id} has no ${REPORTS[reportId].title} data for ${rangeText(body)}.`);
    $("chart").hidden = true;
    $("result-table").hidden = true;
    return;
  }
  clearMessage();
  $("result-table").hidden = false;
  renderTable();
  renderChart();
}

function sortedRows(columns, rows) {
  if (!page.sort) return rows;
  const column = columns.find((c) => c.key === page.sort.key);
  return [...rows].sort((a, b) => {
    const x = sortKey(column, a[column.key]);
    const y = sortKey(column, b[column.key]);
    return (x < y ? -1 : x > y ? 1 : 0) * page.sort.dir;
  });
}

function cell(tag, column, text, extraClass = "") {
  const node = document.createElement(tag);
  node.className = `${NUMERIC.has(column.type) ? "num" : ""} col-${column.type} ${extraClass}`.trim();
  node.textContent = text;
  return node;
}

function renderTable() {
  const { reportId, body } = page.last;
  const columns = columnsFor(reportId, body.rows);
  const table = $("result-table");

  const head = document.createElement("tr");
  for (const column of columns) {
    const th = cell("th", column, "");
    th.scope = "col";
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = column.label;
    button.title = `Sort by ${column.label}`;
    if (page.sort && page.sort.key === column.key) {
      th.setAttribute("aria-sort", page.sort.dir > 0 ? "ascending" : "descending");
    }
    button.addEventListener("click", () => {
      const same = page.sort && page.sort.key === column.key;
      const numeric = NUMERIC.has(column.type);
      page.sort = { key: column.key, dir: same ? -page.sort.dir : numeric ? -1 : 1 };
      renderTable();
      table.querySelector(`th[data-key="${column.key}"] button`).focus();
    });
    th.dataset.key = column.key;
    th.appendChild(button);
    head.appendChild(th);
  }
  table.tHead.replaceChildren(head);

  const fragment = document.createDocumentFragment();
  for (const row of sortedRows(columns, body.rows)) {
    const tr = document.createElement("tr");
    for (const column of columns) {
      const value = row[column.key];
      const empty = value === "" && column.type !== "money";
      const negative = NUMERIC.has(column.type) && value !== null && Number(value) < 0;
      const extra = column.type === "flag" && value ? "flag-on"
        : empty ? "empty" : negative ? "negative" : "";
      tr.appendChild(cell("td", column, empty ? "(none)" : formatCell(column, value), extra));
    }
    fragment.appendChild(tr);
  }
  table.tBodies[0].replaceChildren(fragment);

  const totals = totalsFor(reportId, body.rows);
  const foot = document.createElement("tr");
  if (totals) {
    columns.forEach((column, i) => {
      const text = column.key in totals ? formatCell(column, totals[column.key])
        : i === 0 ? `Total (${body.rows.length.toLocaleString("en-US")} rows)` : "";
      const total = totals[column.key];
      const negative = NUMERIC.has(column.type) && total !== null && Number(total) < 0;
      foot.appendChild(cell(i === 0 ? "th" : "td", column, text, negative ? "negative" : ""));
    });
  }
  table.tFoot.replaceChildren(...(totals ? [foot] : []));
}

/** The chart the report declares (reports/view.py): bars over time, or its top rows. */
function renderChart() {
  const { reportId, body } = page.last;
  const chart = REPORTS[reportId].chart;
  if (!chart) {
    $("chart").hidden = true;
    return;
  }
  const rows = body.rows;
  const target = $("chart-body");
  const columns = Object.fromEntries(columnsFor(reportId, rows).map((c) => [c.key, c]));
  const show = (text) => {
    $("chart-title").textContent = text;
    $("chart").hidden = false;
  };
  if (chart.kind === "time-bars") {
    show(chart.title);
    const points = rows.map((r) => ({
      t: Date.parse(r[chart.time]), values: chart.series.map(([key]) => Number(r[key])),
    }));
    drawTimeBars(target, points, Date.parse(body.from), Date.parse(body.to),
      chart.series.map(([, name]) => name), body.tz);
    return;
  }
  const ordered = chart.sort_by
    ? [...rows].sort((a, b) => Number(b[chart.sort_by]) - Number(a[chart.sort_by]))
    : rows;
  const top = ordered.slice(0, chart.top);
  show(`${chart.title}${rows.length > top.length ? ` (top ${chart.top})` : ""}`);
  const valueColumn = columns[chart.value];
  const named = (value) => String(value) || "(none)";
  const detail = ([key, after]) => {
    const text = r => formatCell(columns[key], r[key]);
    const unit = (r) => (r[key] === 1 && after.endsWith("s") ? after.slice(0, -1) : after);
    return (r) => `${text(r)}${unit(r)}`;
  };
  const details = chart.details.map(detail);
  drawHBars(target, top.map((r) => ({
    label: chart.label_with
      ? `${named(r[chart.label])} ${named(r[chart.label_with])}` : named(r[chart.label]),
    value: Number(r[chart.value]),
    text: [
      `${formatCell(valueColumn, r[chart.value])}${chart.unit}`,
      details.map((d) => d(r)).join(" "),
    ].filter(Boolean).join(" · "),
    tone: toneOf(chart.tone, r),
  })), {
    scaleMax: chart.scale_max,
    legendItems: chart.tone && chart.tone.legend
      ? chart.tone.legend.map(([tone, text]) => [`tone-${tone}`, text]) : undefined,
  });
}

function toneOf(tone, row) {
  if (!tone) return "base";
  const value = row[tone.by];
  if (typeof value === "boolean") return (value ? tone.yes : tone.no) || tone.otherwise;
  const found = (tone.below || []).find(([limit]) => Number(value) < limit);
  return found ? found[1] : tone.otherwise;
}

// ---------- start ----------

async function init() {
  try {
    await loadReports();
  } catch (error) {
    showMessage("error", "The worker's reports could not be loaded", String(error.message || error));
    return;
  }
  const choices = loadChoices();
  buildReportTabs(REPORTS[choices.report] ? choices.report : Object.keys(REPORTS)[0]);
  buildPresets();
  buildHourPickers();
  buildZones(choices.tz);
  $("customer").value = choices.customer || "";
  $("month").value = choices.month || isoMonth(nowWall());
  if (choices.mode === "range") $("mode-range").checked = true;
  applyGrain();
  if ([...$("granularity").options].some((o) => o.value === choices.granularity)) {
    $("granularity").value = choices.granularity;
  }
  applyMode();
  const today = Math.floor(nowWall() / DAY_MS) * DAY_MS;
  $("from-date").value = choices.fromDate || isoDay(today);
  $("to-date").value = choices.toDate || isoDay(today + DAY_MS);
  $("from-hour").value = choices.fromHour || "00";
  $("to-hour").value = choices.toHour || "00";

  $("token").value = token();
  onTokenInput();
  $("token").addEventListener("input", onTokenInput);
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    $("customer").focus();
  });
  $("token-clear").addEventListener("click", () => {
    $("token").value = "";
    onTokenInput();
    $("token").focus();
  });

  $("report-tabs").addEventListener("change", () => {
    applyGrain();
    saveChoices();
  });
  for (const id of ["mode-month", "mode-range"]) {
    $(id).addEventListener("change", () => {
      applyMode();
      saveChoices();
    });
  }
  $("controls").addEventListener("change", saveChoices);
  $("controls").addEventListener("submit", (event) => {
    event.preventDefault();
    generate();
  });
  $("download-csv").addEventListener("click", downloadCsv);

  let resizeTimer;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => page.last && page.last.body.rows.length && renderChart(), 150);
  });
  document.body.dataset.ready = "true";
}

init();
