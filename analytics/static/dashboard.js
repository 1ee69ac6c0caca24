/* The outcome dashboard: fetches /console/api/analytics and draws SVG charts and tables.
   Definitions of every metric: eval/outcomes.py (and README). No external scripts. */
(() => {
  "use strict";
  const $ = (s) => document.querySelector(s);
  const COLORS = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#64748b"];
  const CHARTS = [
    ["resolution_rate", "Resolution rate", "share"],
    ["csat", "CSAT (1-5)", "csat"],
    ["deflection_rate", "Deflection", "share"],
    ["escalation_rate", "Escalation rate", "share"],
    ["thumbs_down_rate", "Thumbs-down rate", "share"],
    ["first_response_p50_s", "First response p50 (s)", "seconds"],
    ["handle_time_p50_s", "Handle time p50 (s)", "seconds"],
    ["suggestion_acceptance_rate", "Suggestions accepted", "share"],
  ];
  const TABLE = [
    ["conversations", "conversations"], ["csat", "CSAT"], ["resolution_rate", "resolution"],
    ["deflection_rate", "deflection"], ["escalation_rate", "escalation"],
    ["first_response_p50_s", "FRT p50 s"], ["first_response_p90_s", "FRT p90 s"],
    ["handle_time_p50_s", "handle p50 s"], ["suggestion_acceptance_rate", "accepted"],
    ["suggestion_edit_rate", "edited"], ["thumbs_down_rate", "thumbs down"],
  ];
  const fmt = (v) => v === null || v === undefined ? "–" : v === Infinity || v === "Infinity" ? "∞" : Number.isInteger(v) ? String(v) : Number(v).toFixed(2);
  const svgNS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    const node = document.createElementNS(svgNS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function el(tag, text) { const n = document.createElement(tag); if (text !== undefined) n.textContent = text; return n; }

  function chart(data, metric, title, kind, colorOf) {
    const W = 440, H = 180, L = 40, B = 24, T = 10;
    const days = [...new Set(data.daily_by_adapter.map((r) => r.day))].sort();
    const times = days.map((d) => Date.parse(d));
    // The x axis spans the data and the switch points (not the whole period, which may be
    // mostly empty), with a day of margin on each side.
    const marks = data.switches.map((s) => Date.parse(s.at));
    const DAY = 86400000;
    const t0 = Math.min(...times, ...marks) - DAY, t1 = Math.max(...times, ...marks) + DAY;
    const values = data.daily_by_adapter.map((r) => r[metric]).filter((v) => typeof v === "number" && isFinite(v));
    const top = kind === "share" ? 1 : kind === "csat" ? 5 : Math.max(1, ...values) * 1.1;
    const bottom = kind === "csat" ? 1 : 0;
    const x = (t) => L + ((t - t0) / Math.max(1, t1 - t0)) * (W - L - 10);
    const y = (v) => T + (1 - (v - bottom) / (top - bottom)) * (H - T - B);
    const figure = el("figure");
    figure.append(el("figcaption", title));
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img", "aria-label": title });
    root.append(svg("line", { x1: L, y1: y(bottom), x2: W - 10, y2: y(bottom), stroke: "#94a3b8" }));
    root.append(svg("text", { x: 2, y: y(top) + 4, "font-size": 10 }, fmt(top)));
    root.append(svg("text", { x: 2, y: y(bottom), "font-size": 10 }, fmt(bottom)));
    const day = (t) => new Date(t).toISOString().slice(0, 10);
    root.append(svg("text", { x: L, y: H - 6, "font-size": 10 }, day(t0 + DAY)));
    root.append(svg("text", { x: W - 80, y: H - 6, "font-size": 10 }, day(t1 - DAY)));
    data.switches.forEach((s, i) => {  // version switch points, labels staggered
      const xs = x(Date.parse(s.at));
      root.append(svg("line", { x1: xs, y1: T, x2: xs, y2: y(bottom), stroke: "#475569", "stroke-dasharray": "4 3" }));
      root.append(svg("text", { x: xs + 2, y: T + 9 + 11 * (i % 3), "font-size": 9, fill: "#475569" }, `→ ${s.adapter}`));
    });
    const series = {};
    for (const r of data.daily_by_adapter) {
      if (typeof r[metric] !== "number" || !isFinite(r[metric])) continue;
      (series[r.adapter] = series[r.adapter] || []).push([Date.parse(r.day), r[metric]]);
    }
    for (const [adapter, points] of Object.entries(series)) {
      const color = colorOf(adapter);
      root.append(svg("polyline", { points: points.map(([t, v]) => `${x(t)},${y(v)}`).join(" "), fill: "none", stroke: color, "stroke-width": 1.5 }));
      for (const [t, v] of points) root.append(svg("circle", { cx: x(t), cy: y(v), r: 2.5, fill: color }));
    }
    figure.append(root);
    return figure;
  }

  function table(rows, first) {
    const t = el("table");
    const head = el("tr");
    head.append(el("th", first[1]));
    for (const [, label] of TABLE) head.append(el("th", label));
    t.append(head);
    for (const row of rows) {
      const tr = el("tr");
      tr.append(el("td", row[first[0]]));
      for (const [key] of TABLE) tr.append(el("td", fmt(row[key])));
      t.append(tr);
    }
    return t;
  }

  async function load() {
    const response = await fetch(`/console/api/analytics?days=${$("#days").value}`);
    if (response.status === 401) { location.href = "/console/login"; return; }
    const data = await response.json();
    $("#tenant").textContent = `· ${data.tenant} · since ${data.since}`;
    const cards = $("#cards");
    cards.replaceChildren();
    for (const [key, label] of TABLE) {
      const card = el("div"); card.className = "card";
      card.append(el("b", fmt(data.overall[key])), label);
      cards.append(card);
    }
    const adapters = [...new Set(data.daily_by_adapter.map((r) => r.adapter))];
    const colorOf = (a) => COLORS[adapters.indexOf(a) % COLORS.length];
    const legend = $("#legend");
    legend.replaceChildren(...adapters.map((a) => {
      const s = el("span"); const sw = el("span"); sw.className = "swatch"; sw.style.background = colorOf(a);
      s.append(sw, a); return s;
    }));
    $("#charts").replaceChildren(...CHARTS.map(([m, title, kind]) => chart(data, m, title, kind, colorOf)));
    $("#adapters").replaceChildren(table(data.by_adapter, ["adapter", "adapter"]));
    const segments = $("#segments");
    segments.replaceChildren();
    for (const [segment, rows] of Object.entries(data.segments)) {
      segments.append(el("h3", segment), table(rows.map((r) => ({ ...r, label: `${r.value} · ${r.adapter}` })), ["label", segment]));
    }
    const drift = $("#drift");
    drift.replaceChildren(...(data.drift.length ? data.drift.map((f) => el("li", f.text)) : [el("p", "None flagged.")]));
    const gaps = $("#gaps");
    if (!data.knowledge_gaps.length) {
      gaps.replaceChildren(el("p", "None: every question was answered from the help center."));
    } else {
      const t = el("table");
      const head = el("tr");
      for (const h of ["asked", "question", "also asked as", "last asked"]) head.append(el("th", h));
      t.append(head);
      for (const gap of data.knowledge_gaps) {
        const tr = el("tr");
        for (const v of [String(gap.count), gap.question, gap.examples.slice(1).join(" · "), (gap.last_asked || "").slice(0, 10)]) tr.append(el("td", v));
        t.append(tr);
      }
      gaps.replaceChildren(t);
    }
    const cls = $("#classification");
    cls.replaceChildren();
    for (const [name, report] of Object.entries(data.classification)) {
      const t = el("table");
      const head = el("tr");
      for (const h of [name, "precision", "recall", "F1", "support"]) head.append(el("th", h));
      t.append(head);
      for (const [label, s] of Object.entries(report.per_class)) {
        const tr = el("tr");
        for (const v of [label, fmt(s.precision), fmt(s.recall), fmt(s.f1), s.support]) tr.append(el("td", v));
        t.append(tr);
      }
      const macro = el("tr");
      for (const v of ["macro", fmt(report.macro.precision), fmt(report.macro.recall), fmt(report.macro.f1), report.total]) macro.append(el("td", v));
      t.append(macro);
      cls.append(el("h3", `${name}: accuracy ${fmt(report.accuracy)}`), t);
    }
    document.body.dataset.loaded = "true";
  }
  $("#days").addEventListener("change", load);
  load();
})();
