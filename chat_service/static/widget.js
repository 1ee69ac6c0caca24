/*
 * SupportLoop chat widget. Embed with one tag, no build step:
 *
 *   <script src="https://HOST/widget.js" data-tenant="acme"></script>
 *
 * Optional attributes:
 *   data-customer-token  a JWT the site signed (HS256) for its logged-in customer
 *   data-strings         JSON object overriding any visible string (see STRINGS below)
 * or the same as window.SupportLoopConfig = {customerToken, strings} before the tag.
 *
 * Protocol: chat_service/frames.py. Everything the server or an agent sends is inserted as
 * text (textContent / text nodes), never as HTML; only http(s) URLs become links, and no
 * image is ever loaded from a message.
 */
(() => {
  "use strict";
  const script = document.currentScript;
  if (!script || window.SupportLoop) return;

  const STRINGS = {
    title: "Support",
    open: "Open chat",
    close: "Close chat",
    placeholder: "Type your message…",
    input_label: "Your message",
    send: "Send",
    human: "Talk to a human",
    sources: "Sources",
    offer_human: "Connect me with a person",
    typing_bot: "The assistant is typing…",
    typing_agent: "{agent} is typing…",
    offline: "You are offline. Reconnecting…",
    unavailable: "Chat is not available on this page.",
    you: "You",
    assistant: "Assistant",
    agent: "Agent",
    not_sent: "Not sent yet; it will be sent when you are back online.",
    rate_up: "Helpful answer",
    rate_down: "Not a helpful answer",
    csat_question: "How did we do?",
    csat_option: "{n} out of 5",
    csat_thanks: "Thanks for your feedback!",
    email_prompt: "Leave your email and we will get back to you:",
    email_label: "Your email",
    email_send: "Send email",
    email_thanks: "Thanks, we will be in touch.",
    error: "Something went wrong: {detail}",
    rate_limited: "You are sending messages quickly; yours will be sent in a moment.",
    busy: "Many customers are writing just now. Your message is saved and a person will follow up here.",
    notice_escalated: "A human agent will join this chat shortly.",
    notice_agent_joined: "{agent} joined the chat.",
    notice_handed_back: "You are chatting with our assistant again.",
    notice_resolved: "This conversation is resolved. Thanks for contacting us!",
    notice_no_agent: "Sorry, nobody is available right now. Leave your email and we will get back to you.",
  };

  const svg = (path, size) =>
    `<svg width="${size}" height="${size}" viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">${path}</svg>`;
  const ICONS = {
    chat: svg('<path d="M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z"/>', 26),
    up: svg('<path d="M7 10v12"/><path d="M15 5.9 14 10h5.8a2 2 0 0 1 2 2.3l-1.4 8a2 2 0 0 1-2 1.7H7V10l4-8a3 3 0 0 1 4 3.9z"/>', 14),
    down: svg('<path d="M17 14V2"/><path d="M9 18.1 10 14H4.2a2 2 0 0 1-2-2.3l1.4-8A2 2 0 0 1 5.6 2H17v12l-4 8a3 3 0 0 1-4-3.9z"/>', 14),
  };

  function parseJson(text) {
    try { return text ? JSON.parse(text) : {}; } catch (e) { return {}; }
  }
  const pageConfig = window.SupportLoopConfig || {};
  const tenant = script.dataset.tenant;
  const customerToken = script.dataset.customerToken || pageConfig.customerToken || null;
  const strings = Object.assign({}, STRINGS, pageConfig.strings || {}, parseJson(script.dataset.strings));
  const t = (key, values) =>
    String(strings[key] ?? key).replace(/\{(\w+)\}/g, (_, k) => (values && k in values ? values[k] : ""));

  const server = new URL(script.src, location.href);
  const wsBase = `${server.protocol === "https:" ? "wss:" : "ws:"}//${server.host}/v1/chat/ws`;
  const storageKey = `supportloop:${server.host}:${tenant}`;
  const stored = parseJson(localStorage.getItem(storageKey));
  const save = () => localStorage.setItem(storageKey, JSON.stringify(stored));

  // ---- DOM (in a shadow root, so the site's CSS and ours never mix) -----------------------
  const host = document.createElement("div");
  host.id = "supportloop-widget";
  document.body.appendChild(host);
  const root = host.attachShadow({ mode: "open" });
  root.innerHTML = `
<style>
  :host { all: initial; }
  * { box-sizing: border-box; font: 15px/1.4 system-ui, sans-serif; }
  .launcher { position: fixed; right: 20px; bottom: 20px; width: 56px; height: 56px; border-radius: 50%;
    border: 0; background: #1d4ed8; color: #fff; cursor: pointer; box-shadow: 0 4px 12px #0003;
    display: grid; place-items: center; }
  .rate button { display: inline-grid; place-items: center; height: 22px; color: #334155; }
  .launcher:focus-visible, button:focus-visible, textarea:focus-visible, input:focus-visible { outline: 3px solid #f59e0b; outline-offset: 2px; }
  .panel { position: fixed; right: 20px; bottom: 88px; width: min(380px, calc(100vw - 40px)); height: min(560px, calc(100vh - 120px));
    display: flex; flex-direction: column; background: #fff; color: #0f172a; border-radius: 12px; box-shadow: 0 8px 30px #0004; overflow: hidden; }
  .panel[hidden] { display: none; }
  header { display: flex; align-items: center; gap: 8px; padding: 10px 12px; background: #1d4ed8; color: #fff; }
  header h2 { flex: 1; margin: 0; font-size: 16px; font-weight: 600; }
  header button { background: #ffffff22; color: #fff; border: 1px solid #ffffff55; border-radius: 6px; padding: 4px 8px; cursor: pointer; }
  .banner { padding: 6px 12px; background: #fef3c7; color: #78350f; font-size: 13px; }
  .banner[hidden] { display: none; }
  .log { flex: 1; overflow-y: auto; padding: 12px; display: flex; flex-direction: column; gap: 6px; }
  .msg { max-width: 85%; padding: 7px 10px; border-radius: 10px; white-space: pre-wrap; overflow-wrap: anywhere; }
  .msg .who { display: block; font-size: 11px; color: #64748b; margin-bottom: 2px; }
  .customer { align-self: flex-end; background: #dbeafe; }
  .bot, .agent { align-self: flex-start; background: #f1f5f9; }
  .agent { border-left: 3px solid #16a34a; }
  .system { align-self: center; background: none; color: #475569; font-size: 13px; text-align: center; }
  .pending { opacity: .6; }
  .sources { margin-top: 6px; padding-top: 6px; border-top: 1px solid #cbd5e1; font-size: 12px; white-space: normal; }
  .sources ul { margin: 0; padding: 0; list-style: none; }
  .sources .heading { display: block; font-weight: 600; color: #475569; }
  .sources li { margin-top: 4px; }
  .sources .title { font-weight: 600; }
  .sources .excerpt { display: block; color: #475569; }
  .offer { display: block; margin-top: 6px; border: 1px solid #1d4ed8; color: #1d4ed8; background: #fff; border-radius: 6px; padding: 3px 8px; cursor: pointer; }
  .rate { display: inline-flex; gap: 4px; margin-top: 4px; }
  .rate button { border: 1px solid #cbd5e1; background: #fff; border-radius: 6px; cursor: pointer; padding: 0 6px; }
  .rate button[aria-pressed="true"] { background: #1d4ed8; color: #fff; }
  .typing { min-height: 20px; padding: 0 12px; color: #64748b; font-size: 13px; }
  .extra { padding: 8px 12px; border-top: 1px solid #e2e8f0; }
  .extra[hidden] { display: none; }
  fieldset { border: 0; margin: 0; padding: 0; display: flex; gap: 6px; align-items: center; flex-wrap: wrap; }
  legend { margin-bottom: 4px; }
  fieldset button { width: 36px; height: 32px; border: 1px solid #cbd5e1; background: #fff; border-radius: 6px; cursor: pointer; }
  form { display: flex; gap: 6px; padding: 10px 12px; border-top: 1px solid #e2e8f0; }
  textarea, input { flex: 1; resize: none; padding: 8px; border: 1px solid #cbd5e1; border-radius: 8px; }
  form button { background: #1d4ed8; color: #fff; border: 0; border-radius: 8px; padding: 0 14px; cursor: pointer; }
  .sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
  a { color: #1d4ed8; }
</style>
<button class="launcher" type="button" aria-expanded="false" aria-controls="panel"></button>
<section class="panel" id="panel" role="dialog" aria-modal="false" aria-labelledby="title" hidden>
  <header>
    <h2 id="title"></h2>
    <button class="human" type="button"></button>
    <button class="close" type="button">✕</button>
  </header>
  <div class="banner" role="alert" hidden></div>
  <div class="log" role="log" aria-live="polite" aria-relevant="additions"></div>
  <div class="typing" role="status" aria-live="polite"></div>
  <div class="extra csat" hidden></div>
  <div class="extra email" hidden></div>
  <form class="compose">
    <label class="sr-only" for="input"></label>
    <textarea id="input" rows="2" maxlength="4000"></textarea>
    <button type="submit"></button>
  </form>
</section>`;
  const $ = (selector) => root.querySelector(selector);
  const launcher = $(".launcher"), panel = $(".panel"), log = $(".log"), banner = $(".banner");
  const typing = $(".typing"), input = $("#input"), humanButton = $(".human");
  const csatBox = $(".csat"), emailBox = $(".email");
  // Icons are inline SVG (static markup, no fonts needed: emoji may be missing on the system).
  launcher.innerHTML = ICONS.chat;
  launcher.setAttribute("aria-label", t("open"));
  $("#title").textContent = t("title");
  humanButton.textContent = t("human");
  $(".close").setAttribute("aria-label", t("close"));
  $("label[for=input]").textContent = t("input_label");
  input.placeholder = t("placeholder");
  $(".compose button").textContent = t("send");

  function setOpen(open) {
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    launcher.setAttribute("aria-label", t(open ? "close" : "open"));
    if (open) input.focus(); else launcher.focus();
  }
  launcher.addEventListener("click", () => setOpen(panel.hidden));
  $(".close").addEventListener("click", () => setOpen(false));
  panel.addEventListener("keydown", (event) => { if (event.key === "Escape") setOpen(false); });

  // ---- safe rendering --------------------------------------------------------------------
  /** Text with http(s) URLs as links; everything else stays text. */
  function richText(parent, text) {
    const urls = /\bhttps?:\/\/[^\s<>"']+/g;
    let at = 0, match;
    while ((match = urls.exec(text)) !== null) {
      parent.appendChild(document.createTextNode(text.slice(at, match.index)));
      let url = null;
      try { url = new URL(match[0]); } catch (e) { url = null; }
      if (url && (url.protocol === "http:" || url.protocol === "https:")) {
        const link = document.createElement("a");
        link.href = url.href;
        link.target = "_blank";
        link.rel = "noopener noreferrer nofollow";
        link.textContent = match[0];
        parent.appendChild(link);
      } else {
        parent.appendChild(document.createTextNode(match[0]));
      }
      at = match.index + match[0].length;
    }
    parent.appendChild(document.createTextNode(text.slice(at)));
  }

  function who(role, author) {
    if (role === "customer") return t("you");
    if (role === "bot") return t("assistant");
    return author || t("agent");
  }

  function noticeText(frame) {
    const [prefix, key, ...rest] = String(frame.author || "").split(":");
    if (prefix !== "notice" || !("notice_" + key in strings)) return frame.text;
    return t("notice_" + key, { agent: rest.join(":") });
  }

  function bubble(role, text, author) {
    const div = document.createElement("div");
    div.className = `msg ${role}`;
    div.dataset.role = role;
    if (role !== "system") {
      const label = document.createElement("span");
      label.className = "who";
      label.textContent = who(role, author);
      div.appendChild(label);
    }
    const body = document.createElement("span");
    body.className = "text";
    richText(body, text);
    div.appendChild(body);
    log.appendChild(div);
    log.scrollTop = log.scrollHeight;
    return div;
  }

  function setText(div, text) {
    const body = div.querySelector(".text");
    body.replaceChildren();
    richText(body, text);
  }

  /** The help-center articles a reply stands on: title (a link when the article has an http(s)
   * URL), then a short excerpt. All of it as text. */
  function addSources(div, sources) {
    const box = document.createElement("div");
    box.className = "sources";
    const heading = document.createElement("span");
    heading.className = "heading";
    heading.textContent = t("sources");
    box.appendChild(heading);
    const list = document.createElement("ul");
    for (const source of sources) {
      const item = document.createElement("li");
      let url = null;
      try { url = source.url ? new URL(source.url) : null; } catch (e) { url = null; }
      const title = document.createElement(url && /^https?:$/.test(url.protocol) ? "a" : "span");
      title.className = "title";
      title.textContent = source.title;
      if (title.tagName === "A") {
        title.href = url.href;
        title.target = "_blank";
        title.rel = "noopener noreferrer nofollow";
      }
      const excerpt = document.createElement("span");
      excerpt.className = "excerpt";
      excerpt.textContent = source.excerpt;
      item.append(title, excerpt);
      list.appendChild(item);
    }
    box.appendChild(list);
    div.appendChild(box);
  }

  /** The bot could not answer from the help center: offer a person, one click away. */
  function addHandoffOffer(div) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "offer";
    button.textContent = t("offer_human");
    button.disabled = status === "escalated";
    button.addEventListener("click", () => { send({ type: "handoff" }); button.disabled = true; });
    div.appendChild(button);
  }

  function addRating(div, messageId) {
    const box = document.createElement("span");
    box.className = "rate";
    for (const [value, label, icon] of [[1, "rate_up", ICONS.up], [-1, "rate_down", ICONS.down]]) {
      const button = document.createElement("button");
      button.type = "button";
      button.innerHTML = icon; // a constant from ICONS, never message content
      button.setAttribute("aria-label", t(label));
      button.setAttribute("aria-pressed", "false");
      button.addEventListener("click", () => {
        send({ type: "rate", message_id: messageId, rating: value });
        box.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
      });
      box.appendChild(button);
    }
    div.appendChild(box);
  }

  // ---- conversation state ----------------------------------------------------------------
  let ws = null, lastSeq = 0, retry = 0, stopped = false, status = "open";
  const shown = new Set(); // sequence numbers on screen: nothing is shown twice
  const unacked = new Map(); // client_id -> {text, div}: re-sent after a reconnect
  const streaming = new Map(); // reply_id -> bubble being streamed
  let typingTimer = null;

  function showTyping(text, ms) {
    typing.textContent = text;
    clearTimeout(typingTimer);
    if (ms) typingTimer = setTimeout(() => { typing.textContent = ""; }, ms);
  }

  function onMessage(frame) {
    if (shown.has(frame.seq)) return;
    shown.add(frame.seq);
    lastSeq = Math.max(lastSeq, frame.seq);
    const mine = frame.client_id && unacked.get(frame.client_id);
    if (frame.role === "customer" && mine) {
      mine.div.classList.remove("pending");
      mine.div.removeAttribute("title");
      unacked.delete(frame.client_id);
      return;
    }
    let div = frame.reply_id && streaming.get(frame.reply_id);
    if (div) {
      streaming.delete(frame.reply_id);
      div.removeAttribute("aria-busy");
      setText(div, frame.text);
    } else {
      div = bubble(frame.role, frame.role === "system" ? noticeText(frame) : frame.text, frame.author);
    }
    if (frame.role === "bot" && frame.sources && frame.sources.length) addSources(div, frame.sources);
    if (frame.role === "bot" && frame.offer_handoff) addHandoffOffer(div);
    if (frame.role === "bot") addRating(div, frame.id);
    if (frame.role !== "customer") showTyping("");
  }

  function onStatus(frame) {
    status = frame.status;
    humanButton.disabled = status === "escalated";
    csatBox.hidden = !(status === "resolved" && frame.csat == null);
    if (!csatBox.hidden && !csatBox.firstChild) renderCsat();
    emailBox.hidden = !frame.offer_email;
    if (!emailBox.hidden && !emailBox.firstChild) renderEmail();
  }

  function renderCsat() {
    const fieldset = document.createElement("fieldset");
    const legend = document.createElement("legend");
    legend.textContent = t("csat_question");
    fieldset.appendChild(legend);
    for (let n = 1; n <= 5; n++) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = String(n);
      button.setAttribute("aria-label", t("csat_option", { n }));
      button.addEventListener("click", () => send({ type: "csat", score: n }));
      fieldset.appendChild(button);
    }
    csatBox.appendChild(fieldset);
  }

  function renderEmail() {
    const form = document.createElement("form");
    const label = document.createElement("label");
    label.textContent = t("email_prompt");
    const field = document.createElement("input");
    field.type = "email";
    field.required = true;
    field.setAttribute("aria-label", t("email_label"));
    const button = document.createElement("button");
    button.textContent = t("email_send");
    form.append(field, button);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      send({ type: "contact", email: field.value });
    });
    emailBox.append(label, form);
  }

  function onSaved(frame) {
    const box = frame.what === "csat" ? csatBox : frame.what === "contact" ? emailBox : null;
    if (!box) return;
    const thanks = document.createElement("p");
    thanks.setAttribute("role", "status");
    thanks.textContent = t(frame.what === "csat" ? "csat_thanks" : "email_thanks");
    box.replaceChildren(thanks);
  }

  const handlers = {
    identity(frame) {
      if (frame.visitor_token) { stored.visitor = frame.visitor_token; save(); }
    },
    session(frame) {
      if (frame.token) { stored.token = frame.token; save(); }
      if (frame.status) onStatus({ status: frame.status });
    },
    ack(frame) {
      const mine = unacked.get(frame.client_id);
      if (mine) { mine.div.classList.remove("pending"); mine.div.removeAttribute("title"); }
      unacked.delete(frame.client_id);
      shown.add(frame.seq);
      lastSeq = Math.max(lastSeq, frame.seq);
    },
    message: onMessage,
    status: onStatus,
    saved: onSaved,
    reply_start(frame) {
      streaming.set(frame.reply_id, null);
      showTyping(t("typing_bot"));
    },
    delta(frame) {
      let div = streaming.get(frame.reply_id);
      if (!div) {
        div = bubble("bot", "");
        div.setAttribute("aria-busy", "true");
        streaming.set(frame.reply_id, div);
      }
      div.querySelector(".text").appendChild(document.createTextNode(frame.text));
      log.scrollTop = log.scrollHeight;
    },
    typing(frame) { showTyping(t("typing_agent", { agent: frame.author || t("agent") }), 4000); },
    error(frame) {
      const mine = frame.client_id && unacked.get(frame.client_id);
      if (frame.code === "rate_limited" && mine) {
        // Not stored yet: keep it pending and send it again when the server allows.
        showTyping(t("rate_limited"), 4000);
        setTimeout(() => {
          if (unacked.has(frame.client_id)) send({ type: "message", client_id: frame.client_id, text: mine.text });
        }, (frame.retry_after || 3) * 1000);
        return;
      }
      showTyping("");
      if (frame.reply_id) {
        const div = streaming.get(frame.reply_id);
        if (div) div.remove();
        streaming.delete(frame.reply_id);
      }
      // Busy is not a fault: the conversation went to a person, say so plainly.
      bubble("system", frame.code === "busy" ? t("busy") : t("error", { detail: frame.detail }));
    },
  };

  // ---- connection ------------------------------------------------------------------------
  function send(frame) {
    if (ws && ws.readyState === WebSocket.OPEN) { ws.send(JSON.stringify(frame)); return true; }
    return false;
  }

  function connect() {
    const params = new URLSearchParams({ tenant });
    if (stored.token) { params.set("token", stored.token); params.set("last_seq", String(lastSeq)); }
    ws = new WebSocket(`${wsBase}?${params}`);
    ws.onopen = () => {
      retry = 0;
      banner.hidden = true;
      send({
        type: "hello",
        visitor_token: stored.visitor || null,
        customer_token: customerToken,
        language: navigator.language || null,
      });
      for (const [clientId, item] of unacked) send({ type: "message", client_id: clientId, text: item.text });
    };
    ws.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      const handle = handlers[frame.type];
      if (handle) handle(frame);
    };
    ws.onclose = (event) => {
      // A reply cut off mid-stream arrives whole, as a stored message, after the resume.
      for (const div of streaming.values()) if (div) div.remove();
      streaming.clear();
      showTyping("");
      if (event.code === 1008 && /conversation token/.test(event.reason)) {
        delete stored.token; save();  // the server no longer knows it: start afresh
      } else if (event.code === 1008) {
        stopped = true;
        banner.textContent = t("unavailable");
        banner.hidden = false;
        return;
      }
      if (stopped) return;
      banner.textContent = t("offline");
      banner.hidden = false;
      const delay = Math.min(10000, 500 * 2 ** retry++) * (0.75 + Math.random() / 2);
      setTimeout(connect, delay);
    };
  }

  $(".compose").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    const clientId = crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random();
    const div = bubble("customer", text);
    div.classList.add("pending");
    div.title = t("not_sent");
    unacked.set(clientId, { text, div });
    send({ type: "message", client_id: clientId, text });
    input.value = "";
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $(".compose").requestSubmit();
    }
  });
  humanButton.addEventListener("click", () => send({ type: "handoff" }));

  window.SupportLoop = { open: () => setOpen(true), close: () => setOpen(false) };
  if (tenant) connect();
  else { banner.textContent = t("unavailable"); banner.hidden = false; }
})();
