// The dashboard: follows the kernel's events (GET v1/events, server-sent events relaying the
// Subscribe stream) and draws the process table, a timeline per slot and the tokens/s chart; its
// buttons call the /v1/processes endpoints. Hand-written, no libraries, no build step.
"use strict";

// How much history the timeline and the chart keep: two minutes, enough to see several quanta.
const WINDOW_MS = 120000;
// The shortest span they draw: a page just opened fills its width after this long.
const MIN_SPAN_MS = 20000;
const opened = Date.now();
// The span drawn now: from the page's opening, between MIN_SPAN_MS and WINDOW_MS.
function span(now) { return Math.min(WINDOW_MS, Math.max(MIN_SPAN_MS, now - opened)); }
// Repaint at most this often: events can come in bursts of hundreds.
const REPAINT_MS = 250;
const STAT = { Waiting: "Q", Running: "R", Stopped: "T", Blocked: "S", Zombie: "Z" };

const view = {
  processes: new Map(), // pid -> the process's latest row
  rates: new Map(), // pid -> tokens/s of the last sample
  cpus: 0, policy: "", switches: 0, backend: null,
  snapshotDone: true, // whether the next Snapshot frame starts a new table
  holders: [], // slot -> pid or null
  segments: [], // {slot, pid, from, to (null while held)}
  samples: [], // {t, rate, backends: {name: tokens/s}}: the rates over time
};

// --- the model: events in, view out -------------------------------------------------------------

function hold(slot, pid, now) {
  if ((view.holders[slot] ?? null) === pid) return;
  for (const s of view.segments) if (s.slot === slot && s.to === null) s.to = now;
  if (pid !== null) view.segments.push({ slot, pid, from: now, to: null });
  view.holders[slot] = pid;
}

function place(row, now) {
  const before = view.processes.get(row.pid);
  view.processes.set(row.pid, row);
  if (before && before.slot !== null && before.slot !== row.slot && view.holders[before.slot] === row.pid) {
    hold(before.slot, null, now);
  }
  if (row.slot !== null) hold(row.slot, row.pid, now);
}

function apply(event, now) {
  const [kind, body] = Object.entries(event)[0] || [];
  switch (kind) {
    case "Snapshot":
      if (view.snapshotDone) { view.processes.clear(); view.holders.forEach((_, i) => hold(i, null, now)); }
      view.snapshotDone = body.complete;
      Object.assign(view, { cpus: body.cpus, policy: body.policy, backend: body.backend, switches: body.context_switches });
      body.processes.forEach(row => place(row, now));
      break;
    case "Created": case "Changed": place(body, now); break;
    case "Reaped": {
      const row = view.processes.get(body);
      if (row && row.slot !== null && view.holders[row.slot] === body) hold(row.slot, null, now);
      view.processes.delete(body); view.rates.delete(body);
      break;
    }
    case "ContextSwitch": view.switches += 1; break;
    case "Sample":
      view.cpus = body.cpus;
      body.slots.forEach((pid, slot) => hold(slot, pid ?? null, now));
      view.samples.push({ t: now, rate: body.tokens_per_s, backends: perBackend(body) });
      view.rates.clear();
      for (const tick of body.processes) {
        view.rates.set(tick.pid, tick.tokens_per_s);
        const row = view.processes.get(tick.pid);
        if (row) Object.assign(row, { priority: tick.priority, tokens_used: tick.tokens_used, cpu_ms: tick.cpu_ms });
      }
      break;
    case "Backend": view.backend = body; break;
    case "Interrupt": say("interrupt " + body.kind + (body.handler ? " → pid " + body.handler : "")); break;
    case "Lost":
      say(body.count + " events were lost; reloading the table", true);
      connect();
      break;
  }
  const oldest = now - WINDOW_MS;
  view.segments = view.segments.filter(s => s.to === null || s.to > oldest);
  while (view.samples.length && view.samples[0].t < oldest) view.samples.shift();
}

// Tokens/s by backend in a sample: its `backends` list when the kernel sends one, else the one
// backend every slot belongs to.
function perBackend(sample) {
  if (!Array.isArray(sample.backends)) return { backend: sample.tokens_per_s };
  return Object.fromEntries(sample.backends.map(b => [b.name, b.tokens_per_s]));
}

// --- the stream ----------------------------------------------------------------------------------

let source = null;
function connect() {
  if (source) source.close();
  view.snapshotDone = true;
  source = new EventSource("v1/events?all=1");
  source.onopen = () => say("following the kernel's events");
  source.onmessage = m => {
    try { apply(JSON.parse(m.data), Date.now()); } catch (e) { say("a bad event: " + e, true); }
    repaint();
  };
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) say("the kernel refused the event stream: log in again", true);
    else say("the kernel does not answer; reconnecting…", true);
  };
}

// --- drawing -------------------------------------------------------------------------------------

let repaintPending = false;
function repaint() {
  if (repaintPending) return;
  repaintPending = true;
  setTimeout(() => { repaintPending = false; draw(); }, REPAINT_MS);
}

function colour(pid) { return "hsl(" + (pid * 67 % 360) + ",60%,62%)"; }

function say(text, error) {
  const s = document.getElementById("status");
  s.textContent = text;
  s.className = error ? "error" : "";
}

function draw() {
  const now = Date.now();
  const running = view.holders.filter(p => p !== null && p !== undefined).length;
  const queue = [...view.processes.values()].filter(p => p.state === "Waiting").length;
  const last = view.samples[view.samples.length - 1];
  const backend = view.backend ? circuit(view.backend.circuit) : "?";
  document.getElementById("machine").textContent =
    "slots " + running + "/" + view.cpus + " · queue " + queue + " · policy " + view.policy +
    " · switches " + view.switches + " · " + (last ? last.rate.toFixed(1) : "–") + " tok/s · backend " + backend;
  drawTable();
  drawTimeline(now);
  drawRate(now);
}

// The backend circuit as top says it: closed is up, open is down, half-open is one probe running.
function circuit(c) {
  const name = typeof c === "string" ? c : Object.keys(c)[0];
  return { Closed: "up", Open: "down", HalfOpen: "probing" }[name] || name;
}

function canvas(id) {
  const c = document.getElementById(id);
  const ratio = window.devicePixelRatio || 1;
  c.width = c.clientWidth * ratio; c.height = c.clientHeight * ratio;
  const g = c.getContext("2d");
  g.scale(ratio, ratio);
  g.clearRect(0, 0, c.clientWidth, c.clientHeight);
  g.font = "11px ui-monospace, monospace";
  return { g, w: c.clientWidth, h: c.clientHeight };
}

function drawTimeline(now) {
  const { g, w, h } = canvas("timeline");
  const slots = Math.max(view.cpus, view.holders.length, 1);
  const label = 48, axis = 14, row = (h - axis) / slots;
  const ms = span(now);
  const x = t => label + Math.max(0, (t - (now - ms)) / ms) * (w - label);
  for (let slot = 0; slot < slots; slot++) {
    g.fillStyle = "#f2f2f2"; g.fillRect(label, slot * row + 1, w - label, row - 2);
    g.fillStyle = "#444"; g.fillText("slot " + slot, 2, slot * row + row / 2 + 4);
  }
  for (const s of view.segments) {
    const x0 = x(s.from), x1 = x(s.to ?? now), y = s.slot * row + 1;
    g.fillStyle = colour(s.pid); g.fillRect(x0, y, Math.max(1, x1 - x0), row - 2);
    g.fillStyle = "#222"; g.fillRect(x0, y, 1, row - 2); // the switch onto the slot
    if (x1 - x0 > 30) g.fillText(String(s.pid), x0 + 3, y + row / 2 + 3);
  }
  g.fillStyle = "#666";
  g.fillText("−" + Math.round(ms / 1000) + " s", label, h - 2);
  g.fillText("now", w - 24, h - 2);
}

const SERIES = ["#2a6fdb", "#d9534f", "#3a9a3a", "#b8860b", "#8e44ad", "#16a2b8"];

function drawRate(now) {
  const { g, w, h } = canvas("rate");
  const axis = 14, top = 14;
  const names = [...new Set(view.samples.flatMap(s => Object.keys(s.backends)))].sort();
  const values = view.samples.flatMap(s => Object.values(s.backends));
  const max = Math.max(1, ...values) * 1.1;
  const ms = span(now);
  const x = t => Math.max(0, (t - (now - ms)) / ms) * w;
  const y = r => h - axis - (r / max) * (h - axis - top);
  g.strokeStyle = "#ddd"; g.beginPath(); g.moveTo(0, y(0)); g.lineTo(w, y(0)); g.stroke();
  const last = view.samples[view.samples.length - 1];
  let legend = 4;
  names.forEach((name, i) => {
    const colour = SERIES[i % SERIES.length];
    g.strokeStyle = colour; g.lineWidth = 2; g.beginPath();
    let drawing = false;
    for (const s of view.samples) {
      const r = s.backends[name];
      if (r === undefined) { drawing = false; continue; }
      if (drawing) g.lineTo(x(s.t), y(r)); else g.moveTo(x(s.t), y(r));
      drawing = true;
    }
    g.stroke();
    const now = last && last.backends[name] !== undefined ? last.backends[name].toFixed(1) : "–";
    const text = name + " " + now + " tok/s";
    g.fillStyle = colour; g.fillText(text, legend, 11);
    legend += g.measureText(text).width + 12;
  });
  g.fillStyle = "#666";
  g.fillText("max " + (max / 1.1).toFixed(0), w - 60, 11);
  g.fillText("−" + Math.round(ms / 1000) + " s", 0, h - 2);
  g.fillText("now", w - 24, h - 2);
}

// The table is updated in place, so a button is not replaced under the pointer at each event.
const COLUMNS = ["pid", "uid", "type", "stat", "pri", "ni", "tokens", "rate", "ctx", "slot", "time", "prompt"];
function cells(p) {
  const stat = STAT[p.state] || "?";
  const rate = view.rates.get(p.pid);
  return [p.pid, p.uid, p.process_type, stat, p.priority, p.nice, p.tokens_used,
    rate === undefined ? "" : rate.toFixed(1), p.context_switches, p.slot === null ? "-" : p.slot,
    (p.cpu_ms / 1000).toFixed(1) + "s", (p.prompt || "").slice(0, 200)];
}

function drawTable() {
  const body = document.getElementById("rows");
  const seen = new Set();
  for (const p of [...view.processes.values()].sort((a, b) => a.pid - b.pid)) {
    seen.add(String(p.pid));
    let tr = body.querySelector('tr[data-pid="' + p.pid + '"]');
    if (!tr) { tr = newRow(p.pid); body.append(tr); }
    const values = cells(p);
    values.forEach((v, i) => { if (tr.cells[i].textContent !== String(v)) tr.cells[i].textContent = String(v); });
    tr.cells[3].className = "stat stat-" + values[3];
    tr.dataset.state = p.state;
    tr.classList.toggle("ended", p.exit !== null);
    tr.title = p.exit ? "exit: " + JSON.stringify(p.exit) + (p.note ? " · " + p.note : "") : (p.note || "");
    for (const b of tr.querySelectorAll("button, input")) b.disabled = p.exit !== null;
  }
  for (const tr of [...body.rows]) if (!seen.has(tr.dataset.pid)) tr.remove();
}

function newRow(pid) {
  const tr = document.createElement("tr");
  tr.dataset.pid = pid;
  for (const name of COLUMNS) {
    const td = document.createElement("td");
    td.className = name;
    tr.append(td);
  }
  const actions = document.createElement("td");
  actions.className = "actions";
  const button = (action, text, title) => {
    const b = document.createElement("button");
    b.dataset.action = action; b.textContent = text; b.title = title;
    b.onclick = () => act(pid, action, actions);
    return b;
  };
  const nice = document.createElement("input");
  nice.type = "number"; nice.min = -20; nice.max = 19; nice.value = 0; nice.title = "niceness";
  actions.append(button("kill", "kill", "kill -KILL"), button("stop", "stop", "kill -STOP"),
    button("cont", "cont", "kill -CONT"), nice, button("renice", "renice", "renice to the number"));
  tr.append(actions);
  return tr;
}

// --- the buttons ---------------------------------------------------------------------------------

async function act(pid, action, actions) {
  const path = "v1/processes/" + pid;
  const json = body => ({ method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const requests = {
    kill: [path, { method: "DELETE" }],
    stop: [path + "/signal", json({ signal: "STOP" })],
    cont: [path + "/signal", json({ signal: "CONT" })],
    renice: [path + "/renice", json({ nice: Number(actions.querySelector("input").value) })],
  };
  const [url, init] = requests[action];
  try {
    const reply = await fetch(url, init);
    const answer = await reply.json().catch(() => ({}));
    if (reply.ok) say(action + " pid " + pid + ": done");
    else say(action + " pid " + pid + ": " + ((answer.error && answer.error.message) || reply.status), true);
  } catch (e) {
    say(action + " pid " + pid + ": " + e, true);
  }
}

// Errors of this script, shown and kept for the browser test to read.
const scriptErrors = [];
window.addEventListener("error", e => { scriptErrors.push(e.message); say("script error: " + e.message, true); });

connect();
// The timeline moves with the clock between events too.
setInterval(repaint, 1000);
