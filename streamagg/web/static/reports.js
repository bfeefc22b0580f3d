// The reports of the API (declared by the worker): how each cell is shown, and the totals row.

const int = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

/** The reports by id, as the worker declares them (GET /api/v1/reports): filled by loadReports. */
export const REPORTS = {};
/** The time zone names the API takes (`tz`), sorted: filled by loadReports. */
export const TIME_ZONES = [];

/** Load the worker's reports once, before the page is built; their order is the tabs'. */
export async function loadReports() {
  const response = await fetch("/api/v1/reports", { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`GET /api/v1/reports answered ${response.status}`);
  const body = await response.json();
  for (const report of body.reports) REPORTS[report.id] = report;
  TIME_ZONES.push(...body.time_zones);
}

export const NUMERIC = new Set(["int", "money", "ratio"]);

/** Columns to show: the known ones in API order, then any the page does not know yet. */
export function columnsFor(reportId, rows) {
  const known = REPORTS[reportId].columns;
  const extra = rows.length
    ? Object.keys(rows[0]).filter((key) => !known.some((c) => c.key === key))
    : [];
  return [...known, ...extra.map((key) => ({ key, label: key, type: "text" }))];
}

/** The text of one cell: money exactly as the API wrote it, counts grouped, ratios fixed. */
export function formatCell(column, value) {
  if (value === null || value === undefined) return "";
  switch (column.type) {
    case "int": return int.format(value);
    case "ratio": return Number(value).toFixed(column.places);
    case "money": return String(value);
    // "2026-11-25T08:00:00-05:00" → "2026-11-25 08:00 -05:00" (the offset tells apart the
    // two rows of a repeated hour); UTC's "Z" is left out.
    case "hour": return String(value).replace("T", " ")
      .replace(/:00(Z|[+-]\d\d:\d\d)$/, (_, offset) => (offset === "Z" ? "" : ` ${offset}`));
    case "flag": return value ? "yes" : "no";
    case "codes": return value.map((c) => `${c.code} (${int.format(c.count)})`).join(", ");
    default: return String(value);
  }
}

/** What a column sorts by. */
export function sortKey(column, value) {
  if (value === null || value === undefined) return -Infinity;
  if (column.type === "money" || column.type === "ratio") return Number(value);
  if (column.type === "flag") return value ? 1 : 0;
  if (column.type === "codes") return value.length ? value[0].count : 0;
  return value;
}

/** Exact sum of money strings ("12.345000") in micro-units, written back with 6 decimals. */
export function sumMoney(values) {
  let micros = 0n;
  for (const value of values) {
    const text = String(value);
    const negative = text.startsWith("-");
    const [whole, fraction = ""] = text.replace("-", "").split(".");
    const part = BigInt(whole || "0") * 1000000n + BigInt((fraction + "000000").slice(0, 6));
    micros += negative ? -part : part;
  }
  const sign = micros < 0n ? "-" : "";
  const magnitude = micros < 0n ? -micros : micros;
  const fraction = String(magnitude % 1000000n).padStart(6, "0");
  return `${sign}${magnitude / 1000000n}.${fraction}`;
}

function sum(rows, key) {
  return rows.reduce((acc, row) => acc + Number(row[key] || 0), 0);
}

/** Half away from zero, as the worker rounds (a negative margin % too). */
function round(value, places) {
  const scale = 10 ** places;
  return (Math.sign(value) * Math.round(Math.abs(value) * scale + Number.EPSILON)) / scale;
}

/** The totals row, or null where a total means nothing: each column's declared rule
 * (sum; a ratio of two summed columns, never an average of ratios; or a weighted average). */
export function totalsFor(reportId, rows) {
  if (!rows.length) return null;
  const totals = {};
  const columns = columnsFor(reportId, rows);
  for (const column of columns) {
    const rule = column.total;
    if (!rule || rule.rule !== "sum") continue;
    totals[column.key] = column.type === "money"
      ? sumMoney(rows.map((r) => r[column.key]))
      : sum(rows, column.key);
  }
  for (const column of columns) {
    const rule = column.total;
    if (!rule) continue;
    if (rule.rule === "ratio") {
      const per = sum(rows, rule.per);
      // (A sum of nothing, e.g. no customer charge under a margin %, shows as empty.)
      totals[column.key] = per ? round((sum(rows, rule.of) * rule.scale) / per, column.places)
        : column.nullable ? null : 0;
    } else if (rule.rule === "weighted") {
      const weight = sum(rows, rule.by);
      // Row values are rounded already; weighting them is as exact as they allow.
      const weighted = rows.reduce((acc, r) => acc + Number(r[column.key]) * Number(r[rule.by]), 0);
      totals[column.key] = weight ? round(weighted / weight, column.places) : 0;
    }
  }
  return totals;
}
