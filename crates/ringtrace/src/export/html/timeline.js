// ringtrace's HTML timeline. Reads the columns the exporter embedded
// (export/html/encode.rs), draws them on one canvas, and builds the summary.
// No library, no network: everything is in this page.
//
// Drawing cost is bounded by the view, not the trace: per lane, events are
// found by binary search on time, and where several fall in one pixel the
// next one drawn is looked up past that pixel (one tick per pixel); tiny
// spans are drawn once per pixel and depth.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const T0 = performance.now();

  function bytes(id) {
    const s = $(id).textContent;
    if (typeof Uint8Array.fromBase64 === "function") return Uint8Array.fromBase64(s);
    const bin = atob(s);
    const u = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) u[i] = bin.charCodeAt(i);
    return u;
  }
  // A fresh Uint8Array starts its own buffer at 0: aligned for any view.
  const f64 = (id) => { const b = bytes(id); return new Float64Array(b.buffer, b.byteOffset, b.length >> 3); };
  const u32 = (id) => { const b = bytes(id); return new Uint32Array(b.buffer, b.byteOffset, b.length >> 2); };

  const meta = JSON.parse($("rt-meta").textContent);
  const ev = { t: f64("rt-ev-t"), lane: u32("rt-ev-lane"), cpu: u32("rt-ev-cpu"),
    name: u32("rt-ev-name"), kind: bytes("rt-ev-kind"), dend: u32("rt-ev-detail") };
  const sp = { start: f64("rt-sp-start"), end: f64("rt-sp-end"), lane: u32("rt-sp-lane"),
    name: u32("rt-sp-name"), depth: u32("rt-sp-depth"), flags: bytes("rt-sp-flags"),
    event: u32("rt-sp-event") };
  const lo = { t: f64("rt-lo-t"), cpu: u32("rt-lo-cpu"), count: f64("rt-lo-count") };
  const N = ev.t.length, NS = sp.start.length, NL = lo.t.length;
  const KIND = meta.kinds, SPAN_BEGIN = 3, SPAN_END = 4, NO_BEGIN = 1, NO_END = 2;
  const names = meta.names.map((n) => (n[0] ? n[0] + ":" : "") + n[1]);
  const threads = meta.threads, cpus = meta.cpus;
  const duration = Math.max(meta.duration, 1);

  let detailBytes = null;
  const utf8 = new TextDecoder();
  function detailText(i) {
    if (!detailBytes) detailBytes = bytes("rt-detail");
    if (i >= N) return "";
    return utf8.decode(detailBytes.subarray(i ? ev.dend[i - 1] : 0, ev.dend[i]));
  }

  // Per-lane lists of indices, in time order (a stable counting sort of
  // items already merged by time).
  function indexBy(col, lanes, n) {
    const start = new Uint32Array(lanes + 1);
    for (let i = 0; i < n; i++) start[col[i] + 1]++;
    for (let l = 0; l < lanes; l++) start[l + 1] += start[l];
    const pos = start.slice(0, lanes), idx = new Uint32Array(n);
    for (let i = 0; i < n; i++) idx[pos[col[i]]++] = i;
    return { start, idx };
  }
  const byThread = indexBy(ev.lane, threads.length, N);
  const byCpu = indexBy(ev.cpu, cpus.length, N);
  const spByLane = indexBy(sp.lane, threads.length, NS);
  const maxDepth = new Uint32Array(threads.length);
  for (let s = 0; s < NS; s++) maxDepth[sp.lane[s]] = Math.max(maxDepth[sp.lane[s]], sp.depth[s] + 1);
  const cpuOfLoss = (l) => cpus.indexOf(lo.cpu[l]);

  // Colours: a hue per name, red for losses.
  // Hues keep clear of red, which marks losses.
  const hue = (id) => 30 + (id * 137.508) % 300;
  const tickColor = names.map((_, i) => `hsl(${hue(i)},65%,42%)`);
  const sliceColor = names.map((_, i) => `hsl(${hue(i)},60%,68%)`);
  const LOST = "#e0121b", DIM = "#d5d8df";

  // Lanes, top to bottom: the CPU (context) lanes, then the threads of the
  // process (a trace.dat names threads only: one process group).
  const LABEL = 170, AXIS = 26, ROW = 14, CPU_H = 16, GROUP_H = 18, MAX_ROWS = 12;
  const lanes = [];
  let y = AXIS;
  lanes.push({ kind: "group", label: `CPUs (contexts): ${cpus.length}`, y, h: GROUP_H }); y += GROUP_H;
  cpus.map((c, i) => [c, i]).sort((a, b) => a[0] - b[0]).forEach(([c, i]) => {
    lanes.push({ kind: "cpu", idx: i, label: `CPU ${c}`, y, h: CPU_H }); y += CPU_H;
  });
  lanes.push({ kind: "group", label: `process: ${threads.length} threads`, y, h: GROUP_H }); y += GROUP_H;
  threads.map((t, i) => [t.tid, i]).sort((a, b) => a[0] - b[0]).forEach(([tid, i]) => {
    const rows = 1 + Math.min(maxDepth[i], MAX_ROWS);
    lanes.push({ kind: "thread", idx: i, label: `${threads[i].name}-${tid}`, y, h: rows * ROW + 4 }); y += rows * ROW + 4;
  });
  const HEIGHT = Math.min(y + 4, 30000);

  const canvas = $("rt-canvas"), g = canvas.getContext("2d");
  let W = 800, v0 = 0, v1 = duration, match = null, pinned = false, drag = null, sel = null, dragged = false;
  const plotW = () => Math.max(W - LABEL, 10);
  const xOf = (t) => LABEL + (t - v0) * plotW() / (v1 - v0);
  const tOf = (x) => v0 + (x - LABEL) * (v1 - v0) / plotW();

  function lowerBound(list, from, to, t) {
    let a = from, b = to;
    while (a < b) { const m = (a + b) >>> 1; if (ev.t[list[m]] < t) a = m + 1; else b = m; }
    return a;
  }

  function fmtDur(ns) {
    const a = Math.abs(ns);
    if (a >= 1e9) return (ns / 1e9).toFixed(a >= 1e10 ? 2 : 3) + " s";
    if (a >= 1e6) return (ns / 1e6).toFixed(a >= 1e7 ? 2 : 3) + " ms";
    if (a >= 1e3) return (ns / 1e3).toFixed(a >= 1e4 ? 2 : 3) + " µs";
    return ns.toFixed(0) + " ns";
  }
  const fmtAbs = (t) => ((meta.t0 + t) / 1e9).toFixed(6) + " s";

  function resize() {
    const dpr = window.devicePixelRatio || 1;
    W = canvas.parentElement.clientWidth || 800;
    canvas.width = Math.floor(W * dpr); canvas.height = Math.floor(HEIGHT * dpr);
    canvas.style.height = HEIGHT + "px";
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
  }

  function drawAxis() {
    g.fillStyle = "#fff"; g.fillRect(0, 0, W, AXIS);
    const span = v1 - v0, raw = span * 110 / plotW();
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((k) => k * p).find((s) => s >= raw);
    g.fillStyle = "#6b7280"; g.font = "11px system-ui, sans-serif"; g.textBaseline = "middle";
    for (let t = Math.ceil(v0 / step) * step; t <= v1; t += step) {
      const x = Math.round(xOf(t)) + 0.5;
      g.fillRect(x, AXIS - 6, 1, 6);
      g.fillText(fmtDur(t), x + 3, AXIS / 2);
      g.fillStyle = "rgba(0,0,0,0.05)"; g.fillRect(x, AXIS, 1, HEIGHT - AXIS); g.fillStyle = "#6b7280";
    }
    g.fillText(`${fmtDur(span)} shown`, 6, AXIS / 2);
  }

  // One tick per pixel: after drawing event list[k], skip to the first
  // event past that pixel.
  function drawTicks(list, from, to, y0, h, skipSpanEdges) {
    const k = plotW() / (v1 - v0);
    let i = lowerBound(list, from, to, v0);
    while (i < to) {
      const e = list[i], t = ev.t[e];
      if (t > v1) break;
      if (skipSpanEdges && ev.kind[e] >= SPAN_BEGIN) { i++; continue; }
      const px = Math.floor(LABEL + (t - v0) * k);
      const id = ev.name[e];
      g.fillStyle = match && !match[id] ? DIM : tickColor[id];
      g.fillRect(px, y0, 1, h);
      i = lowerBound(list, i + 1, to, v0 + (px + 1 - LABEL) / k);
    }
  }

  function drawSpans(lane) {
    const from = spByLane.start[lane.idx], to = spByLane.start[lane.idx + 1];
    const k = plotW() / (v1 - v0), used = new Map();
    g.font = "10px system-ui, sans-serif"; g.textBaseline = "middle";
    for (let j = from; j < to; j++) {
      const s = spByLane.idx[j];
      if (sp.end[s] < v0 || sp.start[s] > v1) continue;
      const d = Math.min(sp.depth[s], MAX_ROWS - 1), yy = lane.y + ROW * (d + 1) + 1;
      const x0 = Math.max(LABEL, LABEL + (sp.start[s] - v0) * k), x1 = Math.min(W, LABEL + (sp.end[s] - v0) * k);
      const id = sp.name[s];
      if (x1 - x0 < 1) {
        const key = d * 100000 + Math.floor(x0);
        if (used.has(key)) continue;
        used.set(key, 1);
      }
      g.fillStyle = match && !match[id] ? DIM : sliceColor[id];
      g.fillRect(x0, yy, Math.max(x1 - x0, 1), ROW - 2);
      if (sp.flags[s]) { g.fillStyle = LOST; g.fillRect(sp.flags[s] & NO_BEGIN ? x0 : x1 - 2, yy, 2, ROW - 2); }
      if (x1 - x0 > 40) {
        g.fillStyle = "#1d2330"; g.save(); g.beginPath(); g.rect(x0, yy, x1 - x0, ROW - 2); g.clip();
        g.fillText(names[id], x0 + 3, yy + ROW / 2 - 1); g.restore();
      }
    }
  }

  function drawLost() {
    for (let l = 0; l < NL; l++) {
      const t = lo.t[l];
      if (t < v0 || t > v1) continue;
      const x = Math.floor(xOf(t)), lane = lanes.find((ln) => ln.kind === "cpu" && ln.idx === cpuOfLoss(l));
      g.fillStyle = "rgba(224,18,27,0.18)"; g.fillRect(x, AXIS, 1, HEIGHT - AXIS);
      g.fillStyle = LOST;
      if (lane) { g.beginPath(); g.moveTo(x - 4, lane.y + 1); g.lineTo(x + 4, lane.y + 1); g.lineTo(x, lane.y + lane.h - 2); g.fill(); }
    }
  }

  function drawLane(lane, i) {
    if (lane.kind === "group") {
      g.fillStyle = "#eef0f5"; g.fillRect(0, lane.y, W, lane.h);
      g.fillStyle = "#1d2330"; g.font = "600 11px system-ui, sans-serif"; g.fillText(lane.label, 6, lane.y + lane.h / 2);
      return;
    }
    g.fillStyle = i % 2 ? "#fff" : "#f7f8fa"; g.fillRect(0, lane.y, W, lane.h);
    g.fillStyle = "#1d2330"; g.font = "11px system-ui, sans-serif"; g.textBaseline = "middle";
    g.fillText(lane.label.length > 26 ? lane.label.slice(0, 25) + "…" : lane.label, 10, lane.y + Math.min(lane.h, ROW + 2) / 2);
    g.save(); g.beginPath(); g.rect(LABEL, lane.y, W - LABEL, lane.h); g.clip();
    if (lane.kind === "cpu") {
      drawTicks(byCpu.idx, byCpu.start[lane.idx], byCpu.start[lane.idx + 1], lane.y + 2, lane.h - 4, false);
    } else {
      drawTicks(byThread.idx, byThread.start[lane.idx], byThread.start[lane.idx + 1], lane.y + 2, ROW - 3, true);
      drawSpans(lane);
    }
    g.restore();
  }

  function draw() {
    g.clearRect(0, 0, W, HEIGHT);
    g.textBaseline = "middle";
    lanes.forEach(drawLane);
    g.save(); g.beginPath(); g.rect(LABEL, AXIS, W - LABEL, HEIGHT - AXIS); g.clip(); drawLost(); g.restore();
    g.fillStyle = "#d9dce3"; g.fillRect(LABEL - 1, AXIS, 1, HEIGHT - AXIS);
    drawAxis();
    if (sel) { g.fillStyle = "rgba(40,100,220,0.15)"; g.fillRect(Math.min(sel.a, sel.b), AXIS, Math.abs(sel.b - sel.a), HEIGHT - AXIS); }
  }

  function setView(a, b) {
    const minSpan = 100;
    if (b - a < minSpan) { const m = (a + b) / 2; a = m - minSpan / 2; b = m + minSpan / 2; }
    const pad = duration * 0.05;
    v0 = Math.max(a, -pad); v1 = Math.min(b, duration + pad);
    if (v1 <= v0) { v0 = 0; v1 = duration; }
    draw();
  }

  // Hit test: the event nearest the pointer in a tick row, or the span
  // under it.
  function hit(x, yy) {
    const lane = lanes.find((l) => yy >= l.y && yy < l.y + l.h);
    if (!lane || lane.kind === "group" || x < LABEL) return null;
    const t = tOf(x), slack = 4 * (v1 - v0) / plotW();
    if (lane.kind === "cpu") {
      for (let l = 0; l < NL; l++) if (cpuOfLoss(l) === lane.idx && Math.abs(lo.t[l] - t) <= slack) return { lost: l };
    }
    const row = Math.floor((yy - lane.y) / ROW);
    if (lane.kind === "thread" && row >= 1) {
      let best = -1;
      for (let j = spByLane.start[lane.idx]; j < spByLane.start[lane.idx + 1]; j++) {
        const s = spByLane.idx[j];
        if (Math.min(sp.depth[s], MAX_ROWS - 1) !== row - 1 || sp.start[s] > t + slack || sp.end[s] < t - slack) continue;
        if (best < 0 || sp.end[s] - sp.start[s] < sp.end[best] - sp.start[best]) best = s;
      }
      return best >= 0 ? { span: best } : null;
    }
    const ix = lane.kind === "cpu" ? byCpu : byThread;
    const from = ix.start[lane.idx], to = ix.start[lane.idx + 1];
    let i = lowerBound(ix.idx, from, to, t - slack), best = -1;
    for (; i < to && ev.t[ix.idx[i]] <= t + slack; i++) {
      const e = ix.idx[i];
      if (lane.kind === "thread" && ev.kind[e] >= SPAN_BEGIN) continue;
      if (best < 0 || Math.abs(ev.t[e] - t) < Math.abs(ev.t[best] - t)) best = e;
    }
    return best >= 0 ? { event: best } : null;
  }

  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const thread = (lane) => `${threads[lane].name}-${threads[lane].tid}`;
  function levelOf(text) { const m = /(?:^|\s)level=(\S+)/.exec(text); return m ? m[1] : "—"; }

  function showDetail(h) {
    const out = $("rt-detail-view");
    if (!h) return;
    let rows;
    if (h.event !== undefined) {
      const e = h.event, text = detailText(e);
      rows = [["event", names[ev.name[e]]], ["kind", KIND[ev.kind[e]]], ["thread", thread(ev.lane[e])],
        ["CPU", cpus[ev.cpu[e]]], ["time", `${fmtAbs(ev.t[e])} (+${fmtDur(ev.t[e])})`], ["level", levelOf(text)],
        [ev.kind[e] === 1 || ev.kind[e] === 2 ? "message" : "fields", text || "—"]];
    } else if (h.span !== undefined) {
      const s = h.span, f = sp.flags[s];
      rows = [["span", names[sp.name[s]]], ["thread", thread(sp.lane[s])], ["depth", sp.depth[s]],
        ["start", f & NO_BEGIN ? "before the trace (begin not in it)" : fmtAbs(sp.start[s])],
        ["end", f & NO_END ? "after the trace (end not in it)" : fmtAbs(sp.end[s])],
        ["duration", (f ? "at least " : "") + fmtDur(sp.end[s] - sp.start[s])],
        ["fields", detailText(sp.event[s]) || "—"]];
    } else {
      const l = h.lost, c = lo.count[l];
      rows = [["lost events", c >= 0 ? `${c} events lost` : "events lost (count not stored)"],
        ["CPU", lo.cpu[l]], ["time", `${fmtAbs(lo.t[l])} (+${fmtDur(lo.t[l])})`]];
    }
    out.innerHTML = rows.map(([k, v]) => `<b>${esc(k)}</b>: ${esc(v)}`).join("\n");
  }

  function onSearch() {
    const q = $("rt-search").value.trim().toLowerCase();
    if (!q) { match = null; $("rt-matches").textContent = ""; draw(); return; }
    match = new Uint8Array(names.length);
    names.forEach((n, i) => { if (n.toLowerCase().includes(q)) match[i] = 1; });
    let n = 0;
    for (let i = 0; i < N; i++) n += match[ev.name[i]];
    $("rt-matches").textContent = `${n} matches`;
    document.body.dataset.matches = String(n);
    draw();
  }
  // Enter: centre the next match after the view's middle.
  function nextMatch() {
    if (!match) return;
    const mid = (v0 + v1) / 2;
    let i = 0, a = 0, b = N;
    while (a < b) { const m = (a + b) >>> 1; if (ev.t[m] <= mid) a = m + 1; else b = m; }
    for (i = a; i < N && !match[ev.name[i]]; i++);
    if (i >= N) for (i = 0; i < N && !match[ev.name[i]]; i++);
    if (i < N) { const w = v1 - v0; setView(ev.t[i] - w / 2, ev.t[i] + w / 2); showDetail({ event: i }); }
  }

  function wire() {
    canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      const t = tOf(e.offsetX), f = Math.exp(e.deltaY * 0.002);
      setView(t - (t - v0) * f, t + (v1 - t) * f);
    }, { passive: false });
    canvas.addEventListener("mousedown", (e) => {
      drag = { x: e.offsetX, v0, v1, moved: false, select: e.shiftKey };
      if (drag.select) sel = { a: e.offsetX, b: e.offsetX };
    });
    window.addEventListener("mouseup", () => {
      if (drag && drag.select && sel && Math.abs(sel.b - sel.a) > 3) {
        const a = tOf(Math.min(sel.a, sel.b)), b = tOf(Math.max(sel.a, sel.b));
        sel = null; setView(a, b);
      } else if (sel) { sel = null; draw(); }
      // The click that ends a drag must not pin what lies under it.
      dragged = !!(drag && drag.moved);
      drag = null;
    });
    canvas.addEventListener("mousemove", (e) => {
      if (drag) {
        if (Math.abs(e.offsetX - drag.x) > 2) drag.moved = true;
        if (drag.select) { sel.b = e.offsetX; draw(); return; }
        const dt = (e.offsetX - drag.x) * (drag.v1 - drag.v0) / plotW();
        v0 = drag.v0 - dt; v1 = drag.v1 - dt; draw();
        return;
      }
      if (!pinned) showDetail(hit(e.offsetX, e.offsetY));
    });
    canvas.addEventListener("click", (e) => {
      if (dragged) { dragged = false; return; }
      const h = hit(e.offsetX, e.offsetY);
      pinned = !!h; showDetail(h);
    });
    canvas.addEventListener("dblclick", () => setView(0, duration));
    $("rt-reset").addEventListener("click", () => setView(0, duration));
    $("rt-search").addEventListener("input", onSearch);
    $("rt-search").addEventListener("keydown", (e) => { if (e.key === "Enter") nextMatch(); });
    window.addEventListener("resize", () => { resize(); draw(); });
  }

  // ---- summary ----
  function table(head, rows) {
    return `<table><tr>${head.map((h, i) => `<th${i ? ' class="n"' : ""}>${esc(h)}</th>`).join("")}</tr>${rows.join("")}</table>`;
  }

  function typeCounts() {
    const c = new Float64Array(names.length), spans = new Float64Array(names.length);
    for (let i = 0; i < N; i++) if (ev.kind[i] < SPAN_BEGIN) c[ev.name[i]]++;
    for (let s = 0; s < NS; s++) spans[sp.name[s]]++;
    return { c, spans };
  }

  function typesPanel(c) {
    const ids = names.map((_, i) => i).filter((i) => c[i] > 0).sort((a, b) => c[b] - c[a]);
    const rows = ids.map((i) => `<tr data-type="${esc(names[i])}" data-count="${c[i]}"><td>${esc(names[i])}</td><td class="n">${c[i]}</td></tr>`);
    document.body.dataset.types = String(ids.length);
    return `<div><h2>Events per type</h2><div class="scroll" id="rt-types">${table(["type", "events"], rows)}</div></div>`;
  }

  function ratePanel() {
    const BINS = 120, counts = new Float64Array(BINS);
    for (let i = 0; i < N; i++) counts[Math.min(BINS - 1, Math.floor(ev.t[i] * BINS / duration))]++;
    const binS = duration / BINS / 1e9, peak = Math.max(...counts) / binS;
    return { html: `<div><h2>Events per second</h2><canvas class="chart" id="rt-rate"></canvas><div class="hist"><span>peak ${peak.toPrecision(3)}/s, mean ${(N / (duration / 1e9)).toPrecision(3)}/s over ${fmtDur(duration)}</span></div></div>`,
      draw: () => bars($("rt-rate"), counts, "#3b6fd6") };
  }

  function bars(cv, values, color) {
    const dpr = window.devicePixelRatio || 1, w = cv.clientWidth || 300, h = cv.clientHeight || 110;
    cv.width = w * dpr; cv.height = h * dpr;
    const c = cv.getContext("2d"); c.setTransform(dpr, 0, 0, dpr, 0, 0);
    const max = Math.max(1, ...values), bw = w / values.length;
    c.fillStyle = "#f3f4f7"; c.fillRect(0, 0, w, h); c.fillStyle = color;
    values.forEach((v, i) => { const bh = (h - 4) * v / max; c.fillRect(i * bw, h - bh, Math.max(bw - 1, 1), bh); });
  }

  function histPanel(spans) {
    const top = names.map((_, i) => i).filter((i) => spans[i] > 0).sort((a, b) => spans[b] - spans[a]).slice(0, 8);
    const byName = new Map(top.map((i) => [i, []]));
    for (let s = 0; s < NS; s++) { const l = byName.get(sp.name[s]); if (l) l.push(sp.end[s] - sp.start[s]); }
    const draws = [], parts = top.map((id, k) => {
      const d = Float64Array.from(byName.get(id)).sort(), lo2 = Math.log2(Math.max(d[0], 1));
      const hi2 = Math.log2(Math.max(d[d.length - 1], 1)), B = 24, bins = new Float64Array(B);
      d.forEach((x) => { bins[Math.min(B - 1, Math.floor((Math.log2(Math.max(x, 1)) - lo2) * B / Math.max(hi2 - lo2, 1e-9)))]++; });
      draws.push(() => bars($(`rt-hist-${k}`), bins, sliceColor[id]));
      return `<div class="hist" data-span-name="${esc(names[id])}" data-n="${d.length}"><b>${esc(names[id])}</b> <span>${d.length} spans, min ${fmtDur(d[0])}, median ${fmtDur(d[d.length >> 1])}, max ${fmtDur(d[d.length - 1])} (log scale)</span><canvas class="chart" id="rt-hist-${k}" style="height:60px"></canvas></div>`;
    });
    const body = parts.length ? parts.join("") : "<p>No spans in this trace.</p>";
    return { html: `<div><h2>Span durations per name</h2>${body}</div>`, draw: () => draws.forEach((f) => f()) };
  }

  function lossPanel() {
    const per = cpus.map(() => ({ markers: 0, lost: 0, unknown: 0 }));
    for (let l = 0; l < NL; l++) {
      const p = per[cpuOfLoss(l)];
      if (!p) continue;
      p.markers++;
      if (lo.count[l] >= 0) p.lost += lo.count[l]; else p.unknown++;
    }
    const rows = cpus.map((c, i) => [c, i]).sort((a, b) => a[0] - b[0]).map(([c, i]) => {
      const p = per[i];
      return `<tr data-cpu="${c}" data-lost="${p.lost}" data-markers="${p.markers}"><td>CPU ${c}</td><td class="n${p.lost || p.unknown ? " lost" : ""}">${p.lost}</td><td class="n">${p.markers}</td><td class="n">${p.unknown}</td></tr>`;
    });
    const total = per.reduce((a, p) => a + p.lost, 0);
    document.body.dataset.lost = String(total);
    document.body.dataset.lostMarkers = String(NL);
    return `<div><h2>Loss per context</h2><div class="scroll" id="rt-loss">${table(["context", "lost events", "markers", "count unknown"], rows)}</div></div>`;
  }

  function summary() {
    const { c, spans } = typeCounts(), rate = ratePanel(), hist = histPanel(spans);
    $("rt-summary").innerHTML = typesPanel(c) + rate.html + hist.html + lossPanel();
    rate.draw(); hist.draw();
  }

  resize();
  wire();
  draw();
  summary();
  const lostKnown = document.body.dataset.lost;
  // A canvas has a maximum height: say so when lanes fall past it.
  const cut = lanes.filter((l) => l.y + l.h > HEIGHT).length;
  $("rt-info").textContent = `${N} events · ${threads.length} threads · ${cpus.length} CPUs · ${NS} spans · ${lostKnown} lost · ${fmtDur(duration)}` +
    (cut ? ` · ${cut} lanes past the canvas's height not drawn` : "");
  // A query in the URL (`page.html#search=NAME`) runs at load.
  const q = /[#&]search=([^&]*)/.exec(location.hash);
  if (q) { $("rt-search").value = decodeURIComponent(q[1]); onSearch(); }
  const b = document.body.dataset;
  b.events = String(N); b.lanes = String(threads.length); b.cpus = String(cpus.length);
  b.spans = String(NS); b.drawnMs = String(performance.now());
  b.loadMs = String(performance.now() - T0);
  // The columns are decoded: drop their text (the page's largest part) and
  // keep the detail text as bytes, so memory holds one copy of each.
  detailText(0);
  document.querySelectorAll('script[type="application/octet-stream"]').forEach((s) => { s.textContent = ""; });
})();
