// Live values for server-rendered pages, over the /ws/live/ WebSocket (docs/live_updates.md).
//
// Marks a page uses:
//   <td data-live-address="ADDR">        text := display; data-severity, data-connected set
//   <tr data-saved="JSON" data-kind="float" data-abs-tol="0.1" data-rel-tol="0" [data-precision="3"]>
//     ... <td data-live-address="ADDR"> ... <td data-live-delta [data-units="mA"]>
//                                        delta := live - saved (first live cell of the row), signed, with units;
//                                        class out-of-tolerance as in snapshots/comparison/rules.py
// After applying each message it acknowledges it and dispatches "squirrel:live" on document.
// Pages that replace their content call refresh() (a MutationObserver also notices new elements).

const MAX_SUBSCRIPTION = 2000;
const NUMBER_KINDS = new Set(["float", "int"]);
const ARRAY_KINDS = new Set(["float_array", "int_array"]);

const roots = new Set();
const latest = new Map(); // address -> last payload, for elements that appear later
let cells = new Map(); // address -> [element]
let rows = new Map(); // address -> [tr]
let subscribed = "";
let socket = null;
let retryDelay = 500;

export function attach(root = document) {
  if (!roots.has(root)) {
    roots.add(root);
    new MutationObserver((records) => {
      if (records.some((r) => [...r.addedNodes, ...r.removedNodes].some((n) => n.nodeType === 1))) refresh();
    }).observe(root, { childList: true, subtree: true });
  }
  refresh();
}

export function refresh() {
  cells = new Map();
  rows = new Map();
  for (const root of roots) {
    for (const el of root.querySelectorAll("[data-live-address]")) {
      const address = el.dataset.liveAddress;
      if (!cells.has(address)) cells.set(address, []);
      cells.get(address).push(el);
    }
    for (const row of root.querySelectorAll("tr[data-saved]")) {
      const cell = row.querySelector("[data-live-address]");
      if (!cell) continue;
      if (!rows.has(cell.dataset.liveAddress)) rows.set(cell.dataset.liveAddress, []);
      rows.get(cell.dataset.liveAddress).push(row);
    }
  }
  let addresses = [...cells.keys()].sort();
  if (addresses.length > MAX_SUBSCRIPTION) {
    console.warn(`squirrel live: ${addresses.length} addresses on the page, following the first ${MAX_SUBSCRIPTION}`);
    addresses = addresses.slice(0, MAX_SUBSCRIPTION);
  }
  for (const address of latest.keys()) if (!cells.has(address)) latest.delete(address);
  apply(Object.fromEntries([...latest].filter(([a]) => cells.has(a))));
  const wanted = JSON.stringify(addresses);
  if (wanted === subscribed) return;
  subscribed = wanted;
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(`{"subscribe":${subscribed}}`);
  else if (!socket && addresses.length) connect();
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws/live/`);
  socket.onopen = () => socket.send(`{"subscribe":${subscribed}}`);
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "error") {
      console.warn(`squirrel live: ${message.message}`);
      return;
    }
    retryDelay = 500;
    for (const [address, payload] of Object.entries(message.values)) latest.set(address, payload);
    apply(message.values);
    socket.send(JSON.stringify({ ack: message.seq }));
    document.dispatchEvent(new CustomEvent("squirrel:live", { detail: message }));
  };
  socket.onclose = () => {
    socket = null;
    if (subscribed === "[]") return;
    setTimeout(() => socket || connect(), retryDelay * (0.75 + Math.random() / 2));
    retryDelay = Math.min(retryDelay * 2, 15000);
  };
}

function apply(values) {
  for (const [address, v] of Object.entries(values)) {
    for (const el of cells.get(address) || []) {
      el.textContent = v.display;
      el.dataset.severity = v.severity ?? "";
      el.dataset.connected = String(v.connected);
    }
    for (const row of rows.get(address) || []) updateRow(row, v);
  }
}

function updateRow(row, v) {
  const kind = row.dataset.kind;
  const saved = JSON.parse(row.dataset.saved);
  const live = v.connected ? v.value : null;
  const d = delta(saved, live, kind);
  const precision = row.dataset.precision === undefined ? null : Number(row.dataset.precision);
  const cell = row.querySelector("[data-live-delta]");
  if (cell) cell.textContent = d === null ? "" : deltaText(Array.isArray(d) ? largest(d) : d, precision, cell.dataset.units);
  const within = withinTolerance(saved, live, kind, Number(row.dataset.absTol || 0), Number(row.dataset.relTol || 0));
  row.classList.toggle("out-of-tolerance", v.connected && !within);
}

// The rules of snapshots/comparison/rules.py. Non-finite numbers arrive spelled "NaN", "Infinity", "-Infinity".

function number(value) {
  if (typeof value === "number") return value;
  if (typeof value === "string" && value.trim() !== "" && !Number.isNaN(Number(value))) return Number(value);
  return ["NaN", "Infinity", "-Infinity"].includes(value) ? Number(value) : null;
}

function asList(value) {
  return Array.isArray(value) ? value : [value];
}

function numbersWithin(saved, live, absTol, relTol) {
  if (saved === null || live === null) return false;
  if (Number.isNaN(saved) || Number.isNaN(live)) return Number.isNaN(saved) && Number.isNaN(live);
  if (!Number.isFinite(saved) || !Number.isFinite(live)) return saved === live;
  return Math.abs(live - saved) <= Math.max(absTol, relTol * Math.abs(saved));
}

export function withinTolerance(saved, live, kind, absTol = 0, relTol = 0) {
  if (saved === null || live === null) return false;
  if (NUMBER_KINDS.has(kind)) return numbersWithin(number(saved), number(live), absTol, relTol);
  if (ARRAY_KINDS.has(kind)) {
    const [s, l] = [asList(saved), asList(live)];
    return s.length === l.length && s.every((x, i) => numbersWithin(number(x), number(l[i]), absTol, relTol));
  }
  if (kind === "enum") return number(saved) !== null && number(saved) === number(live);
  if (kind === "string") return String(saved) === String(live);
  return false;
}

function difference(saved, live) {
  if (saved === null || live === null) return null;
  if (Number.isNaN(saved) && Number.isNaN(live)) return 0;
  if (!Number.isFinite(saved) && saved === live) return 0;
  return live - saved;
}

export function delta(saved, live, kind) {
  if (saved === null || live === null) return null;
  if (NUMBER_KINDS.has(kind)) return difference(number(saved), number(live));
  if (!ARRAY_KINDS.has(kind)) return null;
  const [s, l] = [asList(saved), asList(live)];
  return s.length === l.length ? s.map((x, i) => difference(number(x), number(l[i]))) : null;
}

function largest(deltas) {
  return deltas.reduce((a, b) => (Number.isNaN(b) || Math.abs(b) > Math.abs(a) ? b : a), 0);
}

// monitor/display.py's number_text: `precision` decimals, else 6 significant digits like %g.
export function numberText(x, precision = null) {
  if (x === null) return "";
  if (!Number.isFinite(x)) return String(x);
  if (precision !== null && precision >= 0 && precision <= 17) {
    return Math.abs(x) >= 1e15 ? x.toExponential(precision).replace(/e([+-])(\d)$/, "e$10$2") : x.toFixed(precision);
  }
  const exponent = Number(x.toExponential(5).split("e")[1]);
  const trim = (s) => (s.includes(".") ? s.replace(/\.?0+$/, "") : s);
  if (exponent < -4 || exponent >= 6) {
    const sign = exponent < 0 ? "-" : "+";
    return `${trim(x.toExponential(5).split("e")[0])}e${sign}${String(Math.abs(exponent)).padStart(2, "0")}`;
  }
  return trim(x.toFixed(Math.max(0, 5 - exponent)));
}

// A difference as every page shows it (snapshots/comparison/rows.py, signed_number): "+" before a
// positive one, then the units.
export function deltaText(x, precision = null, units = "") {
  const text = numberText(x, precision);
  const signed = x > 0 ? `+${text}` : text;
  return units ? `${signed} ${units}` : signed;
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => attach());
else attach();
