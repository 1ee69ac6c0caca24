/*
 * The agent console (/console) and its sign-in page (/console/login). Plain JS, no build.
 * State-changing calls carry the X-CSRF-Token from /console/api/me; the session itself is an
 * HttpOnly cookie this script never sees. All conversation text is inserted as text.
 */
(() => {
  "use strict";
  const $ = (selector) => document.querySelector(selector);

  // ---- sign-in page --------------------------------------------------------------------
  const loginForm = $("#login");
  if (loginForm) {
    loginForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = Object.fromEntries(new FormData(loginForm));
      const response = await fetch("/console/api/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      if (response.ok) location.href = "/console";
      else $("#error").textContent = (await response.json()).detail || "Sign-in failed";
    });
    return;
  }

  // ---- console -------------------------------------------------------------------------
  let me = null, current = null, socket = null, tab = "live";
  const conversations = new Map(); // id -> summary
  const streams = new Map(); // reply_id -> element (bot replies being composed)
  const drafts = new Set(); // reply_ids composing a suggestion, not a reply

  async function api(method, path, body) {
    const headers = { "Content-Type": "application/json" };
    if (me) headers["X-CSRF-Token"] = me.csrf_token;
    const response = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
    if (response.status === 401) { location.href = "/console/login"; throw new Error("signed out"); }
    if (!response.ok) {
      const detail = (await response.json().catch(() => ({}))).detail || response.statusText;
      alert(`Could not do that: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
      throw new Error(detail);
    }
    return response.status === 204 ? null : response.json();
  }

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    for (const child of children) node.append(child);
    return node;
  }

  // -- conversation list
  function renderList() {
    const list = $("#list");
    list.replaceChildren();
    const rows = [...conversations.values()].sort((a, b) => (a.updated_at < b.updated_at ? 1 : -1));
    for (const c of rows) {
      const label = c.needs_human ? "needs a human" : c.assigned_agent ? `${c.status} · ${c.assigned_agent}` : c.status;
      const button = el("button", { type: "button" },
        el("strong", {}, c.customer + (c.verified ? " ✓" : "")), " ",
        el("span", { className: `status ${c.status}` }, label),
        el("span", { className: "preview" }, c.preview));
      button.dataset.conversation = c.id;
      if (current && current.id === c.id) button.setAttribute("aria-current", "true");
      button.addEventListener("click", () => openConversation(c.id));
      list.append(el("li", {}, button));
    }
  }

  /** Keep the list current from the event itself; only an unknown conversation is fetched. */
  function touchSummary(event) {
    const c = conversations.get(event.conversation_id);
    if (!c) { refreshSummary(event.conversation_id); return; }
    if (event.type === "message" && !event.internal_note) {
      c.preview = event.text;
      c.preview_role = event.role;
      c.updated_at = new Date().toISOString();
    }
    if (event.type === "status") {
      c.status = event.status;
      c.assigned_agent = event.assigned_agent;
      c.needs_human = event.status === "escalated" && !event.assigned_agent;
    }
    renderList();
  }

  async function refreshSummary(id) {
    const detail = await api("GET", `/console/api/conversations/${id}`);
    conversations.set(id, detail.conversation);
    renderList();
    return detail;
  }

  // -- one conversation
  function messageNode(m) {
    const classes = ["msg", m.role].concat(m.internal_note ? ["internal"] : []);
    const who = m.role === "customer" ? "Customer" : m.role === "bot" ? "Bot" : m.role === "system" ? "" : m.author || "Agent";
    const node = el("div", { className: classes.join(" ") }, el("span", { className: "who" }, who + (m.internal_note ? " (internal)" : "")), el("span", { className: "text" }, m.text));
    node.dataset.seq = m.seq;
    return node;
  }

  function addMessage(m) {
    const box = $("#messages");
    if (box.querySelector(`[data-seq="${m.seq}"]`)) return;
    if (m.reply_id && streams.has(m.reply_id)) { streams.get(m.reply_id).remove(); streams.delete(m.reply_id); }
    box.append(messageNode(m));
    box.scrollTop = box.scrollHeight;
  }

  function suggestionNode(s) {
    const text = el("textarea", { rows: 3, value: s.text, "aria-label": "Suggested reply" });
    text.setAttribute("aria-label", "Suggested reply");
    const reason = el("input", { placeholder: "Reason for rejecting", "aria-label": "Reason for rejecting" });
    reason.setAttribute("aria-label", "Reason for rejecting");
    const decide = (decision) => api("POST", `/console/api/suggestions/${s.id}`, {
      decision, text: text.value, reason: reason.value,
    }).then(() => node.remove());
    const node = el("div", { className: "suggestion" },
      el("strong", {}, "Suggested reply"), text,
      el("div", { className: "row" },
        el("button", { type: "button", className: "accept", onclick: () => decide("accept") }, "Accept"),
        el("button", { type: "button", className: "edit", onclick: () => decide("edit") }, "Send edited"),
        reason,
        el("button", { type: "button", className: "reject", onclick: () => decide("reject") }, "Reject")));
    node.dataset.suggestion = s.id;
    return node;
  }

  async function openConversation(id) {
    showTab("live");
    const detail = await refreshSummary(id);
    current = detail.conversation;
    $(".toolbar").hidden = false;
    $("#compose").hidden = false;
    $("#conversation-title").textContent = `${current.customer} · ${current.status}`;
    const box = $("#messages");
    box.replaceChildren();
    detail.messages.forEach(addMessage);
    $("#suggestions").replaceChildren(...detail.suggestions.map(suggestionNode));
    renderList();
  }

  // -- review queue
  async function renderReview() {
    const items = await api("GET", "/console/api/review");
    $("#review-count").textContent = items.length ? `(${items.length})` : "";
    const box = $("#review");
    box.replaceChildren(el("h2", {}, "Bot replies customers rated down or that ended in low CSAT"));
    for (const item of items) {
      const corrected = el("textarea", { rows: 3, value: item.reply });
      corrected.setAttribute("aria-label", "Better reply");
      const reason = el("input", { placeholder: "What was wrong" });
      reason.setAttribute("aria-label", "What was wrong");
      const node = el("div", { className: "review" },
        el("div", {}, el("strong", {}, "Customer: "), item.question),
        el("div", {}, el("strong", {}, "Bot: "), item.reply),
        el("div", {}, item.customer_rating === -1 ? "Rated down" : `CSAT ${item.csat}`),
        corrected, reason,
        el("div", { className: "row" },
          el("button", { type: "button", onclick: () => api("POST", `/console/api/review/${item.message_id}`, { corrected_text: corrected.value, reason: reason.value }).then(() => node.remove()) }, "Save better reply"),
          el("button", { type: "button", onclick: () => api("POST", `/console/api/review/${item.message_id}`, { reason: reason.value || "wrong answer" }).then(() => node.remove()) }, "Mark wrong, no correction")));
      box.append(node);
    }
  }

  function showTab(name) {
    tab = name;
    $("#tab-live").setAttribute("aria-selected", String(name === "live"));
    $("#tab-review").setAttribute("aria-selected", String(name === "review"));
    $("#review").hidden = name !== "review";
    for (const id of ["#messages", "#suggestions"]) $(id).hidden = name !== "live";
    $(".toolbar").hidden = name !== "live" || !current;
    $("#compose").hidden = name !== "live" || !current;
    if (name === "review") renderReview();
  }

  // -- live events
  function onEvent(event) {
    const id = event.conversation_id;
    if (event.type === "ready") { $("#live").textContent = "live"; return; }
    if (id === undefined) return;
    if (["message", "status"].includes(event.type)) touchSummary(event);
    if (event.type === "reply_start" && event.suggestion) drafts.add(event.reply_id);
    if (!current || current.id !== id) return;
    if (event.type === "message") addMessage(event);
    if (event.type === "status") { current.status = event.status; $("#conversation-title").textContent = `${current.customer} · ${current.status}`; }
    if (event.type === "suggestion") {
      const existing = document.querySelector(`[data-suggestion="${event.id}"]`);
      if (event.status === "pending" && !existing) $("#suggestions").append(suggestionNode(event));
      if (event.status !== "pending" && existing) existing.remove();
    }
    if (event.type === "delta" && !drafts.has(event.reply_id)) {
      let node = streams.get(event.reply_id);
      if (!node) {
        node = messageNode({ role: "bot", text: "", seq: "" });
        streams.set(event.reply_id, node);
        $("#messages").append(node);
      }
      node.querySelector(".text").append(event.text);
    }
  }

  function connect() {
    socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/console/ws`);
    socket.onmessage = (message) => onEvent(JSON.parse(message.data));
    socket.onclose = (event) => {
      $("#live").textContent = "offline, reconnecting…";
      if (event.code === 1008) { location.href = "/console/login"; return; }
      setTimeout(connect, 1000);
    };
  }

  let typingSent = 0;
  $("#reply").addEventListener("input", () => {
    if (!current || $("#internal").checked || Date.now() - typingSent < 2000) return;
    typingSent = Date.now();
    api("POST", `/console/api/conversations/${current.id}/typing`).catch(() => {});
  });
  $("#compose").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("#reply").value.trim();
    if (!text || !current) return;
    await api("POST", `/console/api/conversations/${current.id}/messages`, {
      text, internal_note: $("#internal").checked, client_id: crypto.randomUUID(),
    });
    $("#reply").value = "";
  });
  for (const action of ["takeover", "handback", "resolve"]) {
    $(`#${action}`).addEventListener("click", () => current && api("POST", `/console/api/conversations/${current.id}/${action}`));
  }
  $("#tab-live").addEventListener("click", () => showTab("live"));
  $("#tab-review").addEventListener("click", () => showTab("review"));
  $("#logout").addEventListener("click", () => api("POST", "/console/api/logout").then(() => { location.href = "/console/login"; }));

  (async () => {
    me = await api("GET", "/console/api/me");
    $("#who").textContent = `· ${me.tenant} · ${me.name} · bot mode: ${me.bot_mode}`;
    for (const c of await api("GET", "/console/api/conversations")) conversations.set(c.id, c);
    renderList();
    connect();
    renderReview();
    showTab("live");
  })();
})();
