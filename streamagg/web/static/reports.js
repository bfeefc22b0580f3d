// The four reports of the API: their columns, how each cell is shown, and the totals row.

const int = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

export const REPORTS = {
  "dtmf": {
    label: "DTMF",
    short: "DTMF",
    hint: "Per hour and provider: charges, calls, and calls that carried DTMF key presses.",
    days: false,
    columns: [
      { key: "dt", label: "Hour (UTC)", type: "hour" },
      { key: "provider_id", label: "Provider", type: "text" },
      { key: "customer_charge", label: "Customer charge", type: "money" },
      { key: "provider_charge", label: "Provider charge", type: "money" },
      { key: "dtmf_count", label: "DTMF calls", type: "int" },
      { key: "calls", label: "Calls", type: "int" },
    ],
  },
  "rate-center": {
    label: "USA Rate Center",
    short: "Rate Center",
    hint: "Per dialed NANP prefix and its US rate center: charges and call count.",
    days: false,
    columns: [
      { key: "prefix", label: "Prefix", type: "code" },
      { key: "rc", label: "Rate center", type: "text" },
      { key: "state", label: "State", type: "text" },
      { key: "customer_charge", label: "Customer charge", type: "money" },
      { key: "provider_charge", label: "Provider charge", type: "money" },
      { key: "call_count", label: "Calls", type: "int" },
    ],
  },
  "did-cli": {
    label: "DID as CLI",
    short: "DID as CLI",
    hint: "The system's DIDs presented as caller ID, by owner account. Whole UTC days only.",
    days: true,
    columns: [
      { key: "account", label: "Owner account", type: "text" },
      { key: "dest_cli", label: "DID", type: "code" },
      { key: "count", label: "Calls", type: "int" },
      { key: "foreign", label: "Foreign", type: "flag" },
    ],
  },
  "tech-prefix": {
    label: "Group by Tech Prefix",
    short: "Tech Prefix",
    hint: "Per routing tech prefix: attempts, answered calls, ASR and ACD.",
    days: false,
    columns: [
      { key: "tech_prefix", label: "Tech prefix", type: "code" },
      { key: "total", label: "Attempts", type: "int" },
      { key: "answered_calls", label: "Answered", type: "int" },
      { key: "asr", label: "ASR %", type: "ratio", places: 2 },
      { key: "acd", label: "ACD (s)", type: "ratio", places: 1 },
    ],
  },
};

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
    case "hour": return String(value).replace("T", " ").replace(/:00Z$/, "");
    case "flag": return value ? "yes" : "no";
    default: return String(value);
  }
}

/** What a column sorts by. */
export function sortKey(column, value) {
  if (column.type === "money" || column.type === "ratio") return Number(value);
  if (column.type === "flag") return value ? 1 : 0;
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

function round(value, places) {
  const scale = 10 ** places;
  return Math.round(value * scale + Number.EPSILON) / scale;
}

/** The totals row, or null where a total means nothing. Ratios come from summed counts. */
export function totalsFor(reportId, rows) {
  if (!rows.length) return null;
  const totals = {};
  for (const column of columnsFor(reportId, rows)) {
    if (column.type === "int") totals[column.key] = sum(rows, column.key);
    if (column.type === "money") totals[column.key] = sumMoney(rows.map((r) => r[column.key]));
  }
  if (reportId === "tech-prefix") {
    const attempts = totals.total;
    const answered = totals.answered_calls;
    // Row ACDs are rounded to 0.1 s; weighting them by answered calls is as exact as they allow.
    const seconds = rows.reduce((acc, r) => acc + Number(r.acd) * Number(r.answered_calls), 0);
    totals.asr = attempts ? round((answered * 100) / attempts, 2) : 0;
    totals.acd = answered ? round(seconds / answered, 1) : 0;
  }
  return totals;
}
