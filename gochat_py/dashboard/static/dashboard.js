// The dashboard page: polls /dashboard/stats, keeps a short history, draws sparklines.
// Plain JS, no dependencies: the page must work offline and under a 'self'-only CSP.
"use strict";

(function () {
  const POLL_MS = 2500;
  const HISTORY = 120; // points kept per chart: 5 minutes at one poll every 2.5 s
  const MIN_SPAN = 24; // a fresh page's charts span one minute, then widen up to HISTORY
  const SVG = "http://www.w3.org/2000/svg";
  const token = new URLSearchParams(window.location.search).get("token");
  const history = {};
  let previous = null;
  let lastOk = 0;

  function push(name, value) {
    const series = history[name] || (history[name] = []);
    series.push(value);
    if (series.length > HISTORY) series.shift();
    return series;
  }

  function card(name) {
    return document.querySelector('.card[data-figure="' + name + '"]');
  }

  function set(root, selector, text) {
    const el = root.querySelector(selector);
    if (el) el.textContent = text;
  }

  function count(n) {
    if (n === null || n === undefined) return "–";
    return Math.round(n).toLocaleString("en-US");
  }

  function decimal(n) {
    if (n === null || n === undefined) return "–";
    if (n === 0) return "0";
    if (n >= 100) return Math.round(n).toLocaleString("en-US");
    if (n >= 10) return n.toFixed(1);
    return n.toFixed(2);
  }

  // [number, unit] of a byte count, in binary units.
  function bytes(n) {
    if (n === null || n === undefined) return ["–", ""];
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return [i === 0 ? String(n) : n.toFixed(1), units[i]];
  }

  function duration(s) {
    if (s === null || s === undefined) return "–";
    if (s < 60) return Math.floor(s) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + Math.floor(s % 60) + " s";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
  }

  function el(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const key in attrs) node.setAttribute(key, attrs[key]);
    return node;
  }

  // One or more series in one SVG, sharing a y scale from 0 to the largest value.
  function draw(svg, seriesList, classes, withArea) {
    const box = svg.viewBox.baseVal;
    const w = box.width, h = box.height, pad = 3;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    for (const f of [0.25, 0.5, 0.75]) {
      const y = (h * f).toFixed(1);
      svg.appendChild(el("line", { x1: 0, x2: w, y1: y, y2: y, class: "grid-line" }));
    }
    let max = 0;
    for (const s of seriesList) for (const v of s) if (v !== null && v > max) max = v;
    if (max === 0) max = 1;
    let longest = 0;
    for (const s of seriesList) longest = Math.max(longest, s.length);
    const span = Math.max(longest, MIN_SPAN);
    const step = w / (span - 1);
    seriesList.forEach(function (series, index) {
      const offset = span - series.length;
      let d = "", first = null, last = null;
      series.forEach(function (v, i) {
        if (v === null) return;
        const x = (offset + i) * step;
        const y = h - pad - (v / max) * (h - 2 * pad);
        d += (d ? " L" : "M") + x.toFixed(1) + " " + y.toFixed(1);
        if (first === null) first = x;
        last = x;
      });
      if (!d) return;
      if (withArea) {
        const area = d + " L" + last.toFixed(1) + " " + h + " L" + first.toFixed(1) + " " + h + " Z";
        svg.appendChild(el("path", { d: area, class: "area" }));
      }
      svg.appendChild(el("path", { d: d, class: "line " + (classes[index] || "") }));
    });
  }

  function spark(name, value) {
    const series = push(name, value);
    draw(card(name).querySelector("svg"), [series], [""], true);
  }

  function chip(name, state, detail) {
    const node = document.querySelector('.chip[data-check="' + name + '"]');
    node.classList.remove("up", "warn", "down");
    node.classList.add(state);
    node.querySelector(".chip-detail").textContent = detail;
  }

  // Per second between two readings of a counter; null until there are two.
  function rate(now, before, read) {
    if (!before) return null;
    const a = read(now), b = read(before);
    const seconds = (now.at - before.at) / 1000;
    if (a === null || b === null || seconds <= 0) return null;
    return Math.max(0, (a - b) / seconds);
  }

  function backlogField(name) {
    return function (s) { return s.backlog ? s.backlog[name] : null; };
  }

  function render(s) {
    set(document, "#uptime", duration(s.uptime_s));

    set(card("sockets"), ".num", count(s.sockets));
    spark("sockets", s.sockets);
    set(card("users"), ".num", count(s.users_online));
    spark("users", s.users_online);

    const msgRate = rate(s, previous, function (r) { return r.messages_total; });
    set(card("rate"), ".num", decimal(msgRate));
    set(card("rate"), ".total", count(s.messages_total));
    spark("rate", msgRate);

    const frameRate = rate(s, previous, function (r) { return r.deliveries_total; });
    set(card("deliveries"), ".num", decimal(frameRate));
    set(card("deliveries"), ".total", count(s.deliveries_total));
    spark("deliveries", frameRate);

    const lat = s.delivery_latency;
    const latency = card("latency");
    set(latency, ".p50", decimal(lat.p50_ms));
    set(latency, ".p95", decimal(lat.p95_ms));
    set(latency, ".p99", decimal(lat.p99_ms));
    set(latency, ".samples", count(lat.samples));
    set(latency, ".window", duration(lat.window_s));
    draw(latency.querySelector("svg"),
      [push("p50", lat.p50_ms), push("p95", lat.p95_ms), push("p99", lat.p99_ms)],
      ["p50", "p95", "p99"], false);

    const b = s.backlog;
    const persisted = rate(s, previous, backlogField("finished"));
    set(card("throughput"), ".num", decimal(persisted));
    set(card("throughput"), ".total", count(b ? b.finished : null));
    spark("throughput", persisted);

    const waiting = b ? (b.undelivered === null ? null : b.undelivered + b.pending) : null;
    set(card("backlog"), ".num", count(waiting));
    set(card("backlog"), ".undelivered", count(b ? b.undelivered : null));
    set(card("backlog"), ".pending", count(b ? b.pending : null));
    spark("backlog", waiting);

    const lag = b ? (b.oldest_age_s === null ? 0 : b.oldest_age_s) : null;
    set(card("lag"), ".num", decimal(lag));
    set(card("lag"), ".consumers", count(b ? b.consumers : null));
    spark("lag", lag);

    set(card("recent"), ".num", count(s.recent_cache_messages));
    spark("recent", s.recent_cache_messages);
    const memory = bytes(s.redis_used_memory_bytes);
    set(card("memory"), ".num", memory[0]);
    set(card("memory"), ".unit", memory[1]);
    spark("memory", s.redis_used_memory_bytes);

    const dead = b ? b.dead_letters : null;
    set(card("dead"), ".num", count(dead));
    card("dead").classList.toggle("alert", !!dead);
    spark("dead", dead);

    for (const check of s.health) {
      chip(check.name, check.up ? "up" : "down", check.up ? "up" : check.detail.replace(/^down: /, ""));
    }
    if (!b) chip("worker", "down", "unknown");
    else if (b.consumers === 0) chip("worker", "down", "no worker in the group");
    else if (lag > 10) chip("worker", "warn", decimal(lag) + " s behind");
    else chip("worker", "up", b.consumers + (b.consumers === 1 ? " consumer" : " consumers"));
    if (dead === null) chip("dead", "down", "unknown");
    else chip("dead", dead ? "down" : "up", count(dead));

    previous = s;
  }

  function status(kind, text) {
    const pill = document.getElementById("conn");
    pill.className = "pill pill-" + kind;
    pill.textContent = text;
  }

  async function poll() {
    const headers = token ? { Authorization: "Bearer " + token } : {};
    try {
      const response = await fetch("/dashboard/stats", { headers: headers, cache: "no-store" });
      if (response.status === 401) {
        status("lost", "token refused");
        return;
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      render(await response.json());
      lastOk = Date.now();
      status("live", "live");
    } catch (err) {
      status("lost", "server unreachable");
    }
  }

  function tick() {
    if (lastOk) set(document, "#updated", Math.round((Date.now() - lastOk) / 1000) + " s ago");
  }

  poll();
  setInterval(poll, POLL_MS);
  setInterval(tick, 1000);
})();
