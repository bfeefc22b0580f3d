// Small SVG charts drawn by hand: hourly bars over time, and labelled horizontal bars.

const SVG = "http://www.w3.org/2000/svg";
const HOUR_MS = 3600 * 1000;
const DAY_MS = 24 * HOUR_MS;
const MAX_HOURLY_SPAN = 45 * DAY_MS; // longer ranges are drawn per day
const grouped = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

function el(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function tooltip(node, text) {
  node.appendChild(el("title", {}, text));
  return node;
}

/** A round axis maximum above value, and its tick step (1, 2, 2.5 or 5 × 10^n). */
function niceScale(value, ticks = 4) {
  if (value <= 0) return { max: 1, step: 1 };
  const raw = value / ticks;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const niceStep = step >= 1 ? step : Math.max(step, 1);
  return { max: Math.ceil(value / niceStep) * niceStep, step: niceStep };
}

function pad2(n) {
  return String(n).padStart(2, "0");
}

/**
 * The wall clock of an IANA zone: a function from an instant (epoch ms) to its local time
 * read as if it were UTC ("pseudo-UTC" ms), so that getUTC* give the zone's date and hour.
 * Offsets change at quarter-hours only; one Intl lookup per quarter-hour, cached.
 */
export function wallClock(timeZone) {
  const format = new Intl.DateTimeFormat("en-US", {
    timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit",
  });
  const offsets = new Map();
  return (ms) => {
    const quarter = Math.floor(ms / 900000);
    if (!offsets.has(quarter)) {
      const at = quarter * 900000;
      const p = Object.fromEntries(format.formatToParts(new Date(at)).map((x) => [x.type, x.value]));
      offsets.set(quarter, Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute) - at);
    }
    return ms + offsets.get(quarter);
  };
}

function hourText(ms) {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ` +
    `${pad2(d.getUTCHours())}:00`;
}

/**
 * Two series per hour (per day for long ranges) from `fromMs` to `toMs`, the second drawn
 * inside the first (a part of it: DTMF calls of all calls).
 * points: [{t: epoch ms of the hour, values: [first, second]}] — empty hours may be absent;
 * names: the two series' legend texts; timeZone: the zone whose hours and days are the bars.
 */
export function drawTimeBars(container, points, fromInstant, toInstant, names, timeZone = "UTC") {
  const wall = wallClock(timeZone); // (bars and labels on the zone's wall clock)
  const fromMs = wall(fromInstant);
  const toMs = wall(toInstant);
  const daily = toMs - fromMs > MAX_HOURLY_SPAN;
  const slot = daily ? DAY_MS : HOUR_MS;
  const start = Math.floor(fromMs / slot) * slot;
  const count = Math.max(1, Math.ceil((toMs - start) / slot));
  const calls = new Array(count).fill(0);
  const dtmf = new Array(count).fill(0);
  for (const p of points) {
    const i = Math.floor((wall(p.t) - start) / slot);
    if (i >= 0 && i < count) {
      calls[i] += p.values[0];
      dtmf[i] += p.values[1] || 0;
    }
  }

  const width = Math.max(320, container.clientWidth || 800);
  const height = 190;
  const m = { top: 12, right: 12, bottom: 26, left: 44 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const { max, step } = niceScale(Math.max(...calls));
  const svg = el("svg", {
    width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `${names.join(" and ")} per ${daily ? "day" : "hour"}`,
  });

  for (let v = 0; v <= max; v += step) {
    const y = m.top + plotH - (v / max) * plotH;
    svg.appendChild(el("line", { x1: m.left, x2: width - m.right, y1: y, y2: y, class: "grid-line" }));
    svg.appendChild(el("text", { x: m.left - 6, y: y + 4, class: "axis-label", "text-anchor": "end" },
      grouped.format(v)));
  }

  const band = plotW / count;
  const gap = band > 4 ? Math.min(2, band * 0.2) : 0;
  for (let i = 0; i < count; i++) {
    if (!calls[i]) continue;
    const x = m.left + i * band + gap / 2;
    const w = Math.max(0.8, band - gap);
    const hCalls = (calls[i] / max) * plotH;
    const hDtmf = (dtmf[i] / max) * plotH;
    const label = `${hourText(start + i * slot)}${daily ? " (day)" : ""} ${timeZone} — ` +
      `${names[0]} ${grouped.format(calls[i])}, ${names[1]} ${grouped.format(dtmf[i])}`;
    const group = tooltip(el("g", { class: "bar-group" }), label);
    group.appendChild(el("rect", { x, y: m.top + plotH - hCalls, width: w, height: hCalls, class: "bar-calls" }));
    if (hDtmf > 0) {
      group.appendChild(el("rect", { x, y: m.top + plotH - hDtmf, width: w, height: hDtmf, class: "bar-dtmf" }));
    }
    svg.appendChild(group);
  }

  svg.appendChild(el("line", {
    x1: m.left, x2: width - m.right, y1: m.top + plotH, y2: m.top + plotH, class: "axis-line",
  }));
  drawTimeTicks(svg, { start, slot, count, band, m, plotH, daily });
  container.replaceChildren(legend([["bar-calls", names[0]], ["bar-dtmf", names[1]]]), svg);
}

function drawTimeTicks(svg, { start, slot, count, band, m, plotH, daily }) {
  const slotsPerDay = daily ? 1 : 24;
  const days = count / slotsPerDay;
  // Label every hour step on short ranges, else every N days at midnight.
  let every;
  if (!daily && days <= 4) every = [1, 2, 3, 6, 12].find((h) => (count / h) <= 14) || 12;
  else every = slotsPerDay * ([1, 2, 7, 14, 30].find((d) => days / d <= 10) || 30);
  const y = m.top + plotH;
  for (let i = 0; i < count; i++) {
    const t = start + i * slot;
    const d = new Date(t);
    const index = Math.round((t - Date.UTC(1970, 0, 1)) / slot);
    if (index % every !== 0) continue;
    const x = m.left + i * band;
    const atMidnight = d.getUTCHours() === 0;
    const text = !daily && days <= 4 && !atMidnight
      ? `${pad2(d.getUTCHours())}:00`
      : `${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}`;
    svg.appendChild(el("line", { x1: x, x2: x, y1: y, y2: y + 4, class: "axis-line" }));
    svg.appendChild(el("text", { x: x + 2, y: y + 16, class: "axis-label" }, text));
  }
}

/**
 * Horizontal bars, one per item: {label, value, text, title, tone}. scaleMax fixes the axis
 * (100 for percentages); otherwise the largest value sets it.
 */
export function drawHBars(container, items, { scaleMax, legendItems } = {}) {
  const width = Math.max(320, container.clientWidth || 800);
  const rowH = 22;
  const m = { top: 4, right: 150, bottom: 20, left: 120 };
  const height = m.top + m.bottom + items.length * rowH;
  const plotW = width - m.left - m.right;
  const { max, step } = scaleMax
    ? { max: scaleMax, step: scaleMax / 4 }
    : niceScale(Math.max(...items.map((i) => i.value)));
  const svg = el("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });

  for (let v = 0; v <= max; v += step) {
    const x = m.left + (v / max) * plotW;
    svg.appendChild(el("line", { x1: x, x2: x, y1: m.top, y2: height - m.bottom, class: "grid-line" }));
    svg.appendChild(el("text", {
      x, y: height - m.bottom + 14, class: "axis-label", "text-anchor": "middle",
    }, grouped.format(v)));
  }
  items.forEach((item, i) => {
    const y = m.top + i * rowH;
    const w = max ? (item.value / max) * plotW : 0;
    const row = tooltip(el("g", { class: "hbar" }), item.title || `${item.label}: ${item.text}`);
    row.appendChild(el("text", {
      x: m.left - 8, y: y + rowH / 2 + 4, class: "bar-label", "text-anchor": "end",
    }, truncate(item.label, 16)));
    row.appendChild(el("rect", {
      x: m.left, y: y + 4, width: Math.max(w, item.value ? 1.5 : 0), height: rowH - 8,
      class: `hbar-rect tone-${item.tone || "base"}`,
    }));
    row.appendChild(el("text", { x: m.left + w + 6, y: y + rowH / 2 + 4, class: "bar-value" }, item.text));
    svg.appendChild(row);
  });
  const parts = legendItems ? [legend(legendItems), svg] : [svg];
  container.replaceChildren(...parts);
}

function truncate(text, length) {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}

function legend(entries) {
  const box = document.createElement("div");
  box.className = "legend";
  for (const [cls, text] of entries) {
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.className = `swatch ${cls}`;
    item.append(swatch, text);
    box.appendChild(item);
  }
  return box;
}
