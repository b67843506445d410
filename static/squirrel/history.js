// A PV's archived history as a small chart under its row (docs/pages.md, "History").
//
// Each row's "History" button (templates/squirrel/_history_button.html) carries the history
// endpoint's URL (GET /api/v1/pvs/<id>/history/, docs/api.md) and, on a snapshot's rows, the
// snapshot's time and the saved value. A click opens a row below it with a window selector (± 10
// minutes to ± 1 day around the snapshot's time, or up to now on the live table), an address
// selector (setpoint or readback) and the chart: uPlot (static/vendor/uplot/, served here, no CDN),
// numbers as a line held from sample to sample, enums as steps of their index, the snapshot's time
// as a vertical line and the saved value as a horizontal one, the units on the value axis. Strings,
// arrays and structures are "not a number": their last changes in the window are listed instead.
// A module with no inline script or style: the Content-Security-Policy forbids them; positions are
// set through element.style (CSSOM), which it allows.
import { COMPARE } from "./kinds.js"; // how each kind compares, generated from squirrel_site/epics_values.py

// Half a window in seconds; its label around a snapshot's time, and on the live table (up to now).
const WINDOWS = [
  ["600", "± 10 min", "last 20 min"],
  ["3600", "± 1 h", "last 2 h"],
  ["21600", "± 6 h", "last 12 h"],
  ["86400", "± 1 day", "last 2 days"],
];
const DEFAULT_WINDOW = "3600";
const LISTED_SAMPLES = 20; // changes listed for a value that is not a number
const HEIGHT = 240;

const uPlot = globalThis.uPlot;

function element(tag, attributes = {}, text = null) {
  const made = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) made.setAttribute(name, value);
  if (text !== null) made.textContent = text;
  return made;
}

// Times as the pages write them: ISO days and 24-hour times in the site's time zone
// (SQUIRREL_TIME_ZONE, the button's data-history-tz); Sweden's locale writes exactly that.
function clock(timeZone, parts) {
  return new Intl.DateTimeFormat("sv-SE", { timeZone, hourCycle: "h23", ...parts });
}
const DAY_AND_TIME = { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" };

function timeText(seconds, timeZone) {
  return clock(timeZone, DAY_AND_TIME).format(new Date(seconds * 1000));
}

// The time axis's tick labels: hours and minutes, with the day at midnight and on the first tick.
function axisTimes(timeZone) {
  const time = clock(timeZone, { hour: "2-digit", minute: "2-digit" });
  const day = clock(timeZone, { year: "numeric", month: "2-digit", day: "2-digit" }); // 2026-12-08
  return (plot, splits) =>
    splits.map((split, index) => {
      const moment = new Date(split * 1000);
      const text = time.format(moment);
      return index === 0 || text === "00:00" ? `${text}\n${day.format(moment)}` : text;
    });
}

// The window's bounds in Unix seconds: around the snapshot's time, or up to now without one.
function windowOf(at, span) {
  if (at === null) {
    const now = Date.now() / 1000;
    return [now - 2 * span, now];
  }
  return [at - span, at + span];
}

function numeric(kind) {
  const category = COMPARE[kind];
  return category === "number" || category === "enum";
}

// The samples as uPlot's columns, each value held until the next sample and the last one carried to
// the window's end (or now, when that is earlier): EPICS values hold between changes.
function columns(samples, end) {
  const xs = [];
  const ys = [];
  for (const sample of samples) {
    const y = typeof sample.value === "number" ? sample.value : null; // "NaN" and "Infinity" are gaps
    xs.push(sample.timestamp);
    ys.push(y);
  }
  const last = Math.min(end, Date.now() / 1000);
  if (xs.length && last > xs[xs.length - 1]) {
    xs.push(last);
    ys.push(ys[ys.length - 1]);
  }
  return [xs, ys];
}

function marker(className, title) {
  const line = element("div", { class: className, title });
  line.hidden = true;
  return line;
}

// The vertical line at the snapshot's time and the horizontal one at the saved value, as elements
// over the plot (visible, titled, and found by tests), placed after each draw.
function placeMarkers(plot, at, saved, atLine, savedLine) {
  if (at !== null) {
    const left = plot.valToPos(at, "x");
    atLine.hidden = !(left >= 0 && left <= plot.over.clientWidth);
    atLine.style.left = `${left}px`;
  }
  if (saved !== null) {
    const top = plot.valToPos(saved, "y");
    savedLine.hidden = !(top >= 0 && top <= plot.over.clientHeight);
    savedLine.style.top = `${top}px`;
  }
}

function drawChart(box, answer, at, saved, start, end, timeZone) {
  const [xs, ys] = columns(answer.samples, end);
  const category = COMPARE[answer.kind]; // a category, not a kind's name
  const enumerated = category === "enum";
  const label = enumerated ? "index" : answer.units || answer.kind || "";
  const finite = ys.filter((y) => y !== null);
  const low = Math.min(...finite, ...(saved === null ? [] : [saved]));
  const high = Math.max(...finite, ...(saved === null ? [] : [saved]));
  const pad = high > low ? (high - low) * 0.08 : Math.abs(high) * 0.05 || 1;
  const options = {
    width: Math.max(320, Math.min(box.clientWidth || 800, 1000)),
    height: HEIGHT,
    legend: { show: false },
    cursor: { drag: { x: false, y: false } },
    tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), timeZone),
    scales: { x: { time: true, range: [start, end] }, y: { range: [low - pad, high + pad] } },
    axes: [{ values: axisTimes(timeZone) }, { label, size: 70 }],
    series: [
      {},
      {
        label: answer.address,
        stroke: "#1f6feb",
        width: 1.5,
        paths: uPlot.paths.stepped({ align: 1 }),
        points: { show: xs.length < 60 },
      },
    ],
  };
  const atLine = marker("history-at", at === null ? "" : `Snapshot taken ${timeText(at, timeZone)}`);
  const savedLine = marker("history-saved", saved === null ? "" : `Saved value ${saved}`);
  options.hooks = { draw: [(plot) => placeMarkers(plot, at, saved, atLine, savedLine)] };
  const plot = new uPlot(options, [xs, ys], box);
  plot.over.append(atLine, savedLine);
  placeMarkers(plot, at, saved, atLine, savedLine);
  return plot;
}

function listSamples(box, answer, timeZone) {
  const shown = answer.samples.slice(-LISTED_SAMPLES);
  const table = element("table", { class: "compact history-list" });
  const head = table.insertRow();
  head.append(element("th", {}, "Time"), element("th", {}, "Value"));
  for (const sample of shown) {
    const row = table.insertRow();
    const value = typeof sample.value === "string" ? sample.value : JSON.stringify(sample.value);
    row.append(element("td", { class: "nowrap" }, timeText(sample.timestamp, timeZone)), element("td", { class: "value" }, value));
  }
  box.append(table);
}

class HistoryPanel {
  constructor(button) {
    this.button = button;
    this.url = button.dataset.historyUrl;
    this.at = button.dataset.historyAt ? Number(button.dataset.historyAt) : null;
    const saved = button.dataset.historySaved === undefined ? null : Number(button.dataset.historySaved);
    this.saved = Number.isFinite(saved) && button.dataset.historySaved !== "" ? saved : null;
    this.kind = button.dataset.historyKind || "";
    this.timeZone = button.dataset.historyTz || undefined; // the browser's own without one
    this.plot = null;
    this.request = 0;
    const row = button.closest("tr");
    this.row = element("tr", { class: "history-row" });
    const cell = element("td", { colspan: String(row.cells.length) });
    const panel = element("div", { class: "history-panel" });
    const controls = element("div", { class: "toolbar history-controls" });
    this.span = element("select", { "aria-label": "Window" });
    for (const [seconds, around, last] of WINDOWS) this.span.append(new Option(this.at === null ? last : around, seconds));
    this.span.value = DEFAULT_WINDOW;
    this.address = element("select", { "aria-label": "Address" });
    this.address.append(new Option("setpoint", "setpoint"));
    if (button.dataset.historyReadback === "1") this.address.append(new Option("readback", "readback"));
    const close = element("button", { type: "button", class: "link" }, "Close");
    controls.append(element("strong", {}, "History"), this.span, this.address, close);
    this.status = element("p", { class: "muted history-status", role: "status" });
    this.chart = element("div", { class: "history-chart" });
    panel.append(controls, this.status, this.chart);
    cell.append(panel);
    this.row.append(cell);
    row.after(this.row);
    this.span.addEventListener("change", () => this.load());
    this.address.addEventListener("change", () => this.load());
    close.addEventListener("click", () => this.toggle());
    this.load();
  }

  toggle() {
    this.row.hidden = !this.row.hidden;
    this.button.setAttribute("aria-expanded", String(!this.row.hidden));
  }

  async load() {
    const request = ++this.request;
    const [start, end] = windowOf(this.at, Number(this.span.value));
    const query = new URLSearchParams({
      from: new Date(start * 1000).toISOString(),
      to: new Date(end * 1000).toISOString(),
      address: this.address.value,
    });
    if (this.kind) query.set("kind", this.kind);
    this.status.textContent = "Loading the archive…";
    let answer;
    try {
      const response = await fetch(`${this.url}?${query}`, { credentials: "same-origin", headers: { Accept: "application/json" } });
      answer = await response.json();
      if (!response.ok) throw new Error(answer.error ? answer.error.message : `HTTP ${response.status}`);
    } catch (error) {
      if (request === this.request) this.show(null, error.message);
      return;
    }
    if (request === this.request) this.show(answer, null, start, end);
  }

  show(answer, problem, start, end) {
    if (this.plot) this.plot.destroy();
    this.plot = null;
    this.chart.replaceChildren();
    if (problem !== null) {
      this.status.textContent = problem;
      this.status.className = "history-status error";
      return;
    }
    const count = answer.samples.length;
    this.status.className = "muted history-status";
    const from = `${answer.address} from ${answer.archiver}: ${count} sample${count === 1 ? "" : "s"}`;
    if (!count) {
      this.status.textContent = `${from}; no sample in this window.`;
    } else if (!numeric(answer.kind)) {
      this.status.textContent = `${from}; not a number (${answer.kind || "mixed kinds"}), so no chart: its last values are listed.`;
      listSamples(this.chart, answer, this.timeZone);
    } else {
      this.status.textContent = `${from}${answer.units ? `, in ${answer.units}` : ""}.`;
      this.plot = drawChart(this.chart, answer, this.at, this.saved, start, end, this.timeZone);
    }
  }
}

const panels = new WeakMap();
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-history-url]");
  if (!button) return;
  event.preventDefault();
  const open = panels.get(button);
  if (open) {
    open.toggle();
  } else {
    panels.set(button, new HistoryPanel(button));
    button.setAttribute("aria-expanded", "true");
  }
});
