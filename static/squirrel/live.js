// Live values for server-rendered pages, over the /ws/live/ WebSocket (docs/live_updates.md).
//
// Marks a page uses:
//   <td data-live-address="ADDR">        text := display; data-severity, data-connected set
//   <tr data-saved="JSON" data-kind="float" data-abs-tol="0.1" data-rel-tol="0" [data-precision="3"]>
//     ... <td data-live-address="ADDR"> ... <td data-live-delta [data-units="mA"]>
//                                        delta := live - saved (first live cell of the row), signed, with units;
//                                        class out-of-tolerance as in snapshots/comparison/rules.py, on the
//                                        row, or on its [data-live-highlight] elements if it has any
//                                        (the N-way table highlights the live column's cells, not the row)
// After applying each message it acknowledges it and dispatches "squirrel:live" on document.
// Pages that replace their content call refresh() (a MutationObserver also notices new elements).
//
// Never look live when not live: each live element gets a class for its alarm severity
// (alarm-minor, alarm-major, alarm-invalid) or its connection (alarm-disconnected: the text says
// "disconnected", the last value is in its title; alarm-never: "never connected"); until its first
// value it is empty (squirrel.css shows "…"). The server's health messages say the values are
// current; once an element has had no such news for stale_after_s seconds it gets class
// live-stale and data-age ("12 s old"), updated every second by a timer. A banner
// (#live-banner, class live-banner) says why while the socket is down or the monitor is not ok.

import { COMPARE } from "./kinds.js"; // how each value kind compares, generated from squirrel_site/epics_values.py

const MAX_SUBSCRIPTION = 2000;
const SEVERITY_CLASSES = { 1: "alarm-minor", 2: "alarm-major", 3: "alarm-invalid" };
const STATE_CLASSES = ["alarm-minor", "alarm-major", "alarm-invalid", "alarm-disconnected", "alarm-never"];
const CURRENT = new Set(["ok", "degraded", "syncing"]); // monitor states whose cache is current
const TICK_MS = 1000;
const BANNER_GRACE_MS = 2000; // a first connection this slow gets the banner

const roots = new Set();
const latest = new Map(); // address -> last payload, for elements that appear later
let cells = new Map(); // address -> [element]
let rows = new Map(); // address -> [tr]
let subscribed = "";
let socket = null;
let retryDelay = 500;

// Freshness: when did the page last hear that its values are current?
const arrivedAt = new Map(); // address -> ms when its latest value arrived
let staleAfterMs = 5000; // until the server says (health's stale_after_s)
let confirmedAt = null; // ms of the latest monitor heartbeat that health messages called current
let health = null; // the latest health message
let healthAt = null; // ms it arrived
let openedAt = null; // ms the socket opened; null while it is not open
let everOpened = false;
let retryAt = null; // ms of the next connection attempt
const startedAt = Date.now();
let ticking = null;

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
  if (addresses.length && ticking === null) ticking = setInterval(tick, TICK_MS);
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  retryAt = null;
  socket = new WebSocket(`${scheme}://${location.host}/ws/live/`);
  socket.onopen = () => {
    openedAt = Date.now();
    everOpened = true;
    socket.send(`{"subscribe":${subscribed}}`);
    socket.send('{"health":true}');
    tick();
  };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "error") {
      console.warn(`squirrel live: ${message.message}`);
      return;
    }
    if (message.type === "health") {
      applyHealth(message);
      return;
    }
    retryDelay = 500;
    const now = Date.now();
    for (const [address, payload] of Object.entries(message.values)) {
      latest.set(address, payload);
      arrivedAt.set(address, now);
    }
    apply(message.values);
    socket.send(JSON.stringify({ ack: message.seq }));
    document.dispatchEvent(new CustomEvent("squirrel:live", { detail: message }));
  };
  socket.onclose = () => {
    socket = null;
    openedAt = null;
    if (subscribed === "[]") return;
    const delay = retryDelay * (0.75 + Math.random() / 2);
    retryAt = Date.now() + delay;
    setTimeout(() => socket || connect(), delay);
    retryDelay = Math.min(retryDelay * 2, 15000);
    tick();
  };
}

function applyHealth(message) {
  health = message;
  healthAt = Date.now();
  if (Number.isFinite(message.stale_after_s)) staleAfterMs = message.stale_after_s * 1000;
  // The cache was current when the monitor wrote its heartbeat, not when we heard of it.
  if (CURRENT.has(message.monitor)) {
    const beatAt = healthAt - (message.heartbeat_age_s ?? 0) * 1000;
    confirmedAt = Math.max(confirmedAt ?? -Infinity, beatAt);
  }
  tick();
  document.dispatchEvent(new CustomEvent("squirrel:live-health", { detail: message }));
}

function apply(values) {
  const now = Date.now();
  for (const [address, v] of Object.entries(values)) {
    for (const el of cells.get(address) || []) {
      showValue(el, v);
      showAge(el, address, now);
    }
    for (const row of rows.get(address) || []) updateRow(row, v);
  }
}

// The value, its alarm state as a class, and what the text cannot say in the title.
function showValue(el, v) {
  const never = !v.connected && (v.value === null || v.value === undefined);
  let state = null;
  if (never) state = "alarm-never";
  else if (!v.connected) state = "alarm-disconnected";
  else state = SEVERITY_CLASSES[v.severity] || null;
  el.textContent = never ? "never connected" : v.connected ? v.display : "disconnected";
  el.dataset.severity = v.severity ?? "";
  el.dataset.connected = String(v.connected);
  el.dataset.liveState = state === null ? "" : state.replace("alarm-", "");
  for (const name of STATE_CLASSES) el.classList.toggle(name, name === state);
  el.dataset.liveNote = !v.connected && !never ? `last value ${v.display}` : "";
  // A cell cut with an ellipsis (class clip) has its whole text in its title.
  el.dataset.liveFull = el.classList.contains("clip") && v.connected ? v.display : "";
}

// Whether the page has heard, within staleAfterMs, that the element's value is current.
function showAge(el, address, now) {
  const fresh = Math.max(arrivedAt.get(address) ?? -Infinity, confirmedAt ?? -Infinity);
  // Text the server rendered with the page (compare's live column) is as old as the page.
  const age = latest.has(address) ? now - fresh : el.textContent ? now - startedAt : null;
  const stale = age !== null && age > staleAfterMs;
  el.classList.toggle("live-stale", stale);
  if (stale) el.dataset.age = `${ageText(age)} old`;
  else delete el.dataset.age;
  // A title the page gave the element comes first.
  if (el.dataset.liveTitle === undefined) el.dataset.liveTitle = el.getAttribute("title") ?? "";
  const note = [
    el.dataset.liveTitle,
    el.dataset.liveFull,
    el.dataset.liveNote,
    stale ? `${ageText(age)} old: no news that this value is current` : "",
  ];
  const title = note.filter(Boolean).join("; ");
  if (title) el.title = title;
  else el.removeAttribute("title");
}

export function ageText(ms) {
  const s = Math.floor(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min`;
  return `${Math.floor(s / 3600)} h`;
}

// Every second: ages, and the banner.
function tick() {
  const now = Date.now();
  for (const [address, els] of cells) for (const el of els) showAge(el, address, now);
  showBanner(bannerText(now));
}

function bannerText(now) {
  if (!cells.size) return "";
  const stale = "Values shown are not current";
  if (openedAt === null) {
    if (!everOpened && now - startedAt < BANNER_GRACE_MS) return "";
    const wait = retryAt === null ? "" : ` in ${Math.max(0, Math.ceil((retryAt - now) / 1000))} s`;
    const lost = everOpened ? "Connection to the server lost" : "No connection to the server";
    return `${lost}: reconnecting${wait}. ${stale}.`;
  }
  const heard = Math.max(healthAt ?? -Infinity, openedAt);
  if (now - heard > staleAfterMs) return `No news from the server for ${ageText(now - heard)}. ${stale}.`;
  if (health === null || CURRENT.has(health.monitor)) return "";
  if (health.monitor === "unknown") return `The server cannot read the live values (Redis). ${stale}.`;
  if (health.monitor === "missing") return `No monitor is running (no heartbeat). ${stale}.`;
  const age = health.heartbeat_age_s === null ? "" : `: its last heartbeat was ${ageText(health.heartbeat_age_s * 1000)} ago`;
  return `The monitor is stale${age}. ${stale}.`;
}

function showBanner(text) {
  let banner = document.getElementById("live-banner");
  if (!text) {
    if (banner) banner.hidden = true;
    return;
  }
  if (!banner) {
    banner = document.createElement("div");
    banner.id = "live-banner";
    banner.className = "live-banner";
    banner.setAttribute("role", "status");
    const main = document.querySelector("main") || document.body;
    main.prepend(banner);
  }
  if (banner.textContent !== text) banner.textContent = banner.title = text;
  banner.hidden = false;
}

function updateRow(row, v) {
  const kind = row.dataset.kind;
  const saved = JSON.parse(row.dataset.saved);
  const live = v.connected ? v.value : null;
  const d = delta(saved, live, kind);
  const precision = row.dataset.precision === undefined ? null : Number(row.dataset.precision);
  const cell = row.querySelector("[data-live-delta]");
  const [absTol, relTol] = [Number(row.dataset.absTol || 0), Number(row.dataset.relTol || 0)];
  const within = withinTolerance(saved, live, kind, absTol, relTol);
  const how = COMPARE[kind];
  if (cell && how === "structure") {
    cell.textContent = live === null || within ? "" : structureDifferences(saved, live, absTol, relTol).join("; ");
  } else if (cell) cell.textContent = d === null ? "" : deltaText(Array.isArray(d) ? largest(d) : d, precision, cell.dataset.units);
  const marked = row.querySelectorAll("[data-live-highlight]");
  for (const el of marked.length ? marked : [row]) el.classList.toggle("out-of-tolerance", v.connected && !within);
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
  const how = COMPARE[kind];
  if (how === "number") return numbersWithin(number(saved), number(live), absTol, relTol);
  if (how === "number_array") {
    const [s, l] = [asList(saved), asList(live)];
    return s.length === l.length && s.every((x, i) => numbersWithin(number(x), number(l[i]), absTol, relTol));
  }
  if (how === "exact" || how === "enum") return String(saved) === String(live); // a string; an enum's index
  if (how === "exact_array") {
    const [s, l] = [asList(saved), asList(live)];
    return s.length === l.length && s.every((x, i) => String(x) === String(l[i]));
  }
  if (how === "structure") return saved === live || structureDifferences(saved, live, absTol, relTol, 1).length === 0;
  return false;
}

// Structures (typed JSON text): rules.py's structure_differences, line for line. An NTTable column
// by column (number columns within tolerance element by element), any other structure exactly.

const NT_TABLE = "epics:nt/NTTable:";
const TOLERANT_CODES = new Set("bBhHiIlLfd");
const NON_FINITE = ["NaN", "Infinity", "-Infinity"];
const DIFFERENCES_SHOWN = 8;
const ROWS_SHOWN = 10;

const isObject = (x) => x !== null && typeof x === "object" && !Array.isArray(x);

function parseStructure(text) {
  if (typeof text !== "string") return null;
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  return isObject(parsed) && isObject(parsed.value) ? parsed : null;
}

function tableOf(parsed) {
  if (parsed === null || !String(parsed.id ?? "").startsWith(NT_TABLE)) return null;
  const type = Array.isArray(parsed.type) ? parsed.type : [];
  const item = type.find((t) => Array.isArray(t) && t.length === 2 && t[0] === "value");
  const spec = item ? item[1] : undefined;
  if (!(Array.isArray(spec) && spec.length === 3 && Array.isArray(spec[2]))) return null;
  const columns = [];
  for (const c of spec[2]) {
    if (!(Array.isArray(c) && c.length === 2 && typeof c[0] === "string" && typeof c[1] === "string")) return null;
    columns.push([c[0], c[1]]);
  }
  const data = parsed.value.value;
  const names = columns.map(([name]) => name);
  if (!isObject(data) || new Set(names).size !== names.length) return null;
  const keys = Object.keys(data).sort();
  const sorted = [...names].sort();
  if (keys.length !== sorted.length || keys.some((k, i) => k !== sorted[i])) return null;
  if (!names.every((name) => Array.isArray(data[name]))) return null;
  const rest = { ...parsed, value: { ...parsed.value } };
  delete rest.value.value;
  const types = Object.fromEntries(columns);
  return {
    columns,
    data,
    rest,
    rows: Math.max(0, ...names.map((name) => data[name].length)),
    tolerant: (name) => types[name].startsWith("a") && TOLERANT_CODES.has(types[name].slice(1)),
  };
}

function numberOf(x) {
  if (typeof x === "number") return x;
  return NON_FINITE.includes(x) ? Number(x) : null;
}

function jsonEqual(x, y) {
  if (typeof x === "boolean" || typeof y === "boolean") return x === y;
  if (Array.isArray(x) && Array.isArray(y)) return x.length === y.length && x.every((v, i) => jsonEqual(v, y[i]));
  if (isObject(x) && isObject(y)) {
    const keys = Object.keys(x);
    return keys.length === Object.keys(y).length && keys.every((k) => Object.hasOwn(y, k) && jsonEqual(x[k], y[k]));
  }
  return x === y;
}

function elementsWithin(saved, live, absTol, relTol) {
  const [s, v] = [numberOf(saved), numberOf(live)];
  return s === null || v === null ? jsonEqual(saved, live) : numbersWithin(s, v, absTol, relTol);
}

function columnChanges(a, b) {
  const [typesA, typesB] = [Object.fromEntries(a.columns), Object.fromEntries(b.columns)];
  if (a.columns.length === b.columns.length && a.columns.every(([n, c], i) => n === b.columns[i][0] && c === b.columns[i][1])) return [];
  const lines = b.columns.filter(([n]) => !Object.hasOwn(typesA, n)).map(([n]) => `column \`${n}\` added`);
  lines.push(...a.columns.filter(([n]) => !Object.hasOwn(typesB, n)).map(([n]) => `column \`${n}\` removed`));
  for (const [n, code] of a.columns) {
    if (Object.hasOwn(typesB, n) && typesB[n] !== code) lines.push(`column \`${n}\`: type ${typesB[n]}, expected ${code}`);
  }
  return lines.length ? lines : ["columns in another order"];
}

function headerDifferences(a, b) {
  const lines = [];
  if (!jsonEqual(a.id, b.id)) lines.push(`type id ${JSON.stringify(b.id ?? null)}, expected ${JSON.stringify(a.id ?? null)}`);
  if (!jsonEqual(a.type, b.type)) lines.push("the type differs");
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => !["id", "type", "value"].includes(k)).sort();
  for (const k of keys) if (!Object.hasOwn(a, k) || !Object.hasOwn(b, k) || !jsonEqual(a[k], b[k])) lines.push(`\`${k}\` differs`);
  return lines;
}

function fieldDifferences(a, b, path, limit) {
  if (jsonEqual(a, b)) return [];
  if (!(isObject(a) && isObject(b))) return [path ? `field \`${path}\` differs` : "the value differs"];
  const lines = [];
  for (const key of [...Object.keys(a), ...Object.keys(b).filter((k) => !Object.hasOwn(a, k))]) {
    if (lines.length >= limit) break;
    const where = path ? `${path}.${key}` : key;
    if (!Object.hasOwn(a, key) || !Object.hasOwn(b, key)) lines.push(`field \`${where}\` ${Object.hasOwn(b, key) ? "added" : "removed"}`);
    else lines.push(...fieldDifferences(a[key], b[key], where, limit - lines.length));
  }
  return lines.slice(0, limit);
}

export function structureDifferences(saved, live, absTol = 0, relTol = 0, limit = DIFFERENCES_SHOWN) {
  if (saved === live) return [];
  const [a, b] = [parseStructure(saved), parseStructure(live)];
  if (a === null || b === null) return ["the text differs (not typed JSON)"];
  const [ta, tb] = [tableOf(a), tableOf(b)];
  if (ta === null || tb === null) {
    if ((ta === null) !== (tb === null)) return [`a table in ${tb !== null ? "B" : "A"} only`];
    return [...headerDifferences(a, b), ...fieldDifferences(a.value, b.value, "", limit)].slice(0, limit);
  }
  let lines = columnChanges(ta, tb);
  if (lines.length) return lines.slice(0, limit);
  if (ta.rows !== tb.rows) lines.push(`rows: ${tb.rows}, expected ${ta.rows}`);
  lines = [...lines, ...headerDifferences(ta.rest, tb.rest), ...fieldDifferences(ta.rest.value, tb.rest.value, "", limit)];
  for (const [name] of ta.columns) {
    if (lines.length >= limit) break;
    const [x, y] = [ta.data[name], tb.data[name]];
    if (x.length !== y.length) {
      if (ta.rows === tb.rows) lines.push(`column \`${name}\`: ${y.length} rows, expected ${x.length}`);
      continue;
    }
    const same = ta.tolerant(name) ? (s, v) => elementsWithin(s, v, absTol, relTol) : jsonEqual;
    const differing = x.map((s, i) => i).filter((i) => !same(x[i], y[i]));
    if (differing.length) {
      const listed = differing.slice(0, ROWS_SHOWN).join(", ");
      const more = differing.length > ROWS_SHOWN ? `, … (${differing.length} rows)` : "";
      lines.push(`column \`${name}\`: ${differing.length === 1 ? `row ${listed} differs` : `rows ${listed}${more} differ`}`);
    }
  }
  return lines.slice(0, limit);
}

function difference(saved, live) {
  if (saved === null || live === null) return null;
  if (Number.isNaN(saved) && Number.isNaN(live)) return 0;
  if (!Number.isFinite(saved) && saved === live) return 0;
  return live - saved;
}

export function delta(saved, live, kind) {
  if (saved === null || live === null) return null;
  if (COMPARE[kind] === "number") return difference(number(saved), number(live));
  if (COMPARE[kind] !== "number_array") return null;
  const [s, l] = [asList(saved), asList(live)];
  return s.length === l.length ? s.map((x, i) => difference(number(x), number(l[i]))) : null;
}

function largest(deltas) {
  return deltas.reduce((a, b) => (Number.isNaN(b) || Math.abs(b) > Math.abs(a) ? b : a), 0);
}

// squirrel_site/epics_values.py's number_text: `precision` decimals (the exponent form, with as many
// decimals, from 1e15 and for a number other than 0 that would show as zeros: 3e-9 with precision 2
// is "3.00e-09", 0.006 "0.01"), else 6 significant digits like %g.
export function numberText(x, precision = null) {
  if (x === null) return "";
  if (!Number.isFinite(x)) return String(x);
  if (precision !== null && precision >= 0 && precision <= 17) {
    const exponent = () => x.toExponential(precision).replace(/e([+-])(\d)$/, "e$10$2");
    if (Math.abs(x) >= 1e15) return exponent();
    const shown = x.toFixed(precision);
    const smallest = Number(`1e-${precision}`); // (epics_values.py: float(f"1e-{precision}"), the same float)
    return x !== 0 && Math.abs(x) < smallest && !/[1-9]/.test(shown) ? exponent() : shown;
  }
  const exponent = Number(x.toExponential(5).split("e")[1]);
  const trim = (s) => (s.includes(".") ? s.replace(/\.?0+$/, "") : s);
  if (exponent < -4 || exponent >= 6) {
    const sign = exponent < 0 ? "-" : "+";
    return `${trim(x.toExponential(5).split("e")[0])}e${sign}${String(Math.abs(exponent)).padStart(2, "0")}`;
  }
  return trim(x.toFixed(Math.max(0, 5 - exponent)));
}

// squirrel_site/epics_values.py's delta_text: a difference as every page shows it, "+" before a
// positive one, then the units.
export function deltaText(x, precision = null, units = "") {
  const text = numberText(x, precision);
  const signed = x > 0 ? `+${text}` : text;
  return units ? `${signed} ${units}` : signed;
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => attach());
else attach();
