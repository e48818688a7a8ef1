/*
 * Chat-Tonic web chat widget.
 *
 *   <script src="https://<chat-tonic host>/static/chattonic/widget.js" data-bot="<public key>" async></script>
 *
 * No framework, no external resources. Renders inside a Shadow DOM so that the host page's
 * CSS cannot reach it. Talks to /ws/webchat/<key>/ and keeps its session token in
 * localStorage, so reloads and other tabs resume the same conversation.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || !script.getAttribute("data-bot")) {
    if (window.console) console.error("Chat-Tonic: the widget's <script> tag needs data-bot.");
    return;
  }
  var BOT_KEY = script.getAttribute("data-bot");
  var SANDBOX = script.getAttribute("data-sandbox") === "1";
  // Open at start when the page asks (data-open="1"); the sandbox opens unless told "0" (the
  // flow editor keeps its test chat closed until asked, so the canvas keeps the width).
  var OPEN_AT_START = script.hasAttribute("data-open") ? script.getAttribute("data-open") === "1" : SANDBOX;
  var SERVER = new URL(script.src, document.baseURI);
  // The host that serves the bot's region: the script's, until a deployment answers that the
  // key is another region's (421 naming its URL, docs/regions.md); then that one.
  var HTTP_BASE = SERVER.protocol + "//" + SERVER.host;
  var WS_BASE = wsBase(HTTP_BASE);
  function wsBase(base) { return base.replace(/^http/, "ws"); }
  var STORE_KEY = "chattonic:" + BOT_KEY + (SANDBOX ? ":sandbox" : "") + ":session";

  var TEXTS = {
    en: {
      open: "Open chat", close: "Close chat", placeholder: "Type a message…", send: "Send",
      typing: "typing…", read: "Read", sent: "Sent", failed: "Not sent", connecting: "Connecting…",
      offline: "Reconnecting…", name: "Your name", email: "Your email",
      consent: "I agree that my data is used to answer me.", startChat: "Start chat",
      messages: "Messages", unavailable: "This chat is not available right now.", retry: "Retry",
      unavailableShort: "Chat unavailable",
      sandbox: "Test chat (draft)", agent: "Agent", bot: "Bot",
      leaveDetails: "Leave your details", phone: "Your phone", message: "Your message",
      sendDetails: "Send", thanks: "Thank you! We will get back to you.",
      rate: "How was this conversation?", rated: "Thanks for your rating!",
      earlier: "Your earlier conversation ended here",
      prechatHint: "Fill in the form above to start the chat.",
      needConsent: "To start the chat, tick the box to agree that your data is used to answer you.",
      badEmail: "Enter a valid email address.", needContact: "Leave an email or a phone number.",
      awayClosed: "This form is closed now: write to us in the chat.",
      formFailed: "Your details could not be sent. Try again."
    },
    es: {
      open: "Abrir chat", close: "Cerrar chat", placeholder: "Escribe un mensaje…", send: "Enviar",
      typing: "escribiendo…", read: "Leído", sent: "Enviado", failed: "No enviado",
      connecting: "Conectando…", offline: "Reconectando…", name: "Tu nombre", email: "Tu correo",
      consent: "Acepto que usen mis datos para responderme.", startChat: "Iniciar chat",
      messages: "Mensajes", unavailable: "Este chat no está disponible ahora.", retry: "Reintentar",
      unavailableShort: "Chat no disponible",
      sandbox: "Chat de prueba (borrador)", agent: "Agente", bot: "Bot",
      leaveDetails: "Déjanos tus datos", phone: "Tu teléfono", message: "Tu mensaje",
      sendDetails: "Enviar", thanks: "¡Gracias! Te responderemos pronto.",
      rate: "¿Qué tal fue esta conversación?", rated: "¡Gracias por tu valoración!",
      earlier: "Aquí terminó tu conversación anterior",
      prechatHint: "Completa el formulario de arriba para iniciar el chat.",
      needConsent: "Para iniciar el chat, marca la casilla y acepta que usemos tus datos para responderte.",
      badEmail: "Escribe un correo electrónico válido.", needContact: "Déjanos un correo o un teléfono.",
      awayClosed: "Este formulario ya está cerrado: escríbenos en el chat.",
      formFailed: "No pudimos enviar tus datos. Inténtalo de nuevo."
    },
    pt: {
      open: "Abrir chat", close: "Fechar chat", placeholder: "Digite uma mensagem…", send: "Enviar",
      typing: "digitando…", read: "Lida", sent: "Enviada", failed: "Não enviada",
      connecting: "Conectando…", offline: "Reconectando…", name: "Seu nome", email: "Seu e-mail",
      consent: "Concordo que meus dados sejam usados para me responder.", startChat: "Iniciar chat",
      messages: "Mensagens", unavailable: "Este chat não está disponível agora.",
      unavailableShort: "Chat indisponível",
      retry: "Tentar de novo", sandbox: "Chat de teste (rascunho)", agent: "Atendente", bot: "Bot",
      leaveDetails: "Deixe seus dados", phone: "Seu telefone", message: "Sua mensagem",
      sendDetails: "Enviar", thanks: "Obrigado! Entraremos em contato.",
      rate: "Como foi esta conversa?", rated: "Obrigado pela avaliação!",
      earlier: "Aqui terminou sua conversa anterior",
      prechatHint: "Preencha o formulário acima para iniciar o chat.",
      needConsent: "Para iniciar o chat, marque a caixa e concorde que usemos seus dados para responder.",
      badEmail: "Digite um e-mail válido.", needContact: "Deixe um e-mail ou um telefone.",
      awayClosed: "Este formulário já está fechado: escreva para nós no chat.",
      formFailed: "Não foi possível enviar seus dados. Tente de novo."
    }
  };
  var LANG = ((document.documentElement.lang || navigator.language || "en").slice(0, 2) || "en").toLowerCase();
  if (!TEXTS[LANG]) LANG = "en";
  var T = TEXTS[LANG];

  // Narrower than this, the open chat covers the whole window (phones).
  var NARROW = "(max-width: 480px)";
  var CSS = [
    ".ct{display:flex;flex-direction:column;align-items:flex-end;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;",
    "font-size:15px;font-weight:400;line-height:1.4;color:#111827;text-align:left;letter-spacing:normal;text-transform:none}",
    "*,*::before,*::after{box-sizing:border-box}",
    ".launcher{all:initial;display:flex;align-items:center;justify-content:center;width:56px;height:56px;",
    "border-radius:50%;border:0;cursor:pointer;background:var(--ct-color);color:#fff;box-shadow:0 4px 14px rgba(0,0,0,.25);",
    "margin-left:auto;font:600 24px/1 system-ui,sans-serif}",
    ".launcher:focus-visible{outline:3px solid #111827;outline-offset:2px}",
    ".panel{display:none;flex-direction:column;width:360px;max-width:calc(100vw - 40px);height:520px;",
    "max-height:calc(100vh - 100px);background:#fff;border-radius:14px;box-shadow:0 10px 40px rgba(0,0,0,.25);",
    "overflow:hidden;margin-bottom:12px}",
    ".panel.open{display:flex}",
    ".header{display:flex;align-items:center;gap:8px;padding:12px 14px;background:var(--ct-color);color:#fff}",
    ".title{flex:1;font-weight:600;font-size:16px}",
    ".state{font-size:12px}",
    ".retry{all:initial;cursor:pointer;font:600 13px/1 system-ui,sans-serif;color:#fff;padding:6px 10px;",
    "border:1px solid #fff;border-radius:14px}",
    ".retry:focus-visible{outline:2px solid #fff;outline-offset:2px}",
    ".retry[hidden]{display:none}",
    ".close{all:initial;cursor:pointer;color:#fff;font:600 20px/1 system-ui,sans-serif;padding:2px 6px;border-radius:6px}",
    ".close:focus-visible{outline:2px solid #fff}",
    ".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;background:#f9fafb}",
    ".msg{flex-shrink:0;max-width:80%;padding:8px 11px;border-radius:12px;white-space:pre-wrap;overflow-wrap:anywhere}",
    ".msg.in{align-self:flex-end;background:var(--ct-color);color:#fff;border-bottom-right-radius:4px}",
    ".msg.out{align-self:flex-start;background:#fff;border:1px solid #e5e7eb;border-bottom-left-radius:4px}",
    ".msg img{display:block;max-width:100%;border-radius:8px;margin-top:6px}",
    ".meta{display:block;font-size:11px;opacity:.75;margin-top:3px}",
    // Faded, white on the theme colour falls short of 4.5:1 (3.6 on the default blue).
    ".msg.in .meta{opacity:1}",
    ".who{display:block;font-size:11px;font-weight:600;opacity:.8;margin-bottom:2px}",
    ".replies{display:flex;flex-wrap:wrap;gap:6px;align-self:flex-start}",
    ".reply{all:initial;cursor:pointer;font:500 14px/1.2 system-ui,sans-serif;padding:6px 12px;border-radius:16px;",
    "border:1px solid var(--ct-color);color:var(--ct-color);background:#fff}",
    ".reply:focus-visible{outline:2px solid var(--ct-color);outline-offset:2px}",
    ".typing{font-size:12px;color:#6b7280;padding:0 14px 6px;min-height:18px;background:#f9fafb}",
    ".composer{display:flex;gap:8px;padding:10px;border-top:1px solid #e5e7eb;background:#fff}",
    ".input{all:initial;flex:1;min-width:0;font:16px/1.4 system-ui,sans-serif;color:#111827;padding:8px 10px;",
    "border:1px solid #d1d5db;border-radius:8px;background:#fff}",
    ".input:focus{border-color:var(--ct-color);outline:2px solid var(--ct-color)}",
    ".input:disabled{background:#f3f4f6;color:#6b7280}",
    ".send{all:initial;cursor:pointer;font:600 14px/1 system-ui,sans-serif;padding:0 14px;border-radius:8px;",
    "background:var(--ct-color);color:#fff}",
    ".send:focus-visible{outline:2px solid #111827;outline-offset:2px}",
    ".send:disabled{opacity:.5;cursor:default}",
    ".form{display:flex;flex-direction:column;gap:8px;padding:14px;background:#fff;border-radius:10px;border:1px solid #e5e7eb}",
    ".form label{font-size:13px;display:flex;flex-direction:column;gap:3px}",
    ".form .check{flex-direction:row;gap:6px;align-items:flex-start}",
    // A form's button stands alone (the message bar's fills the bar's height).
    ".form .send{padding:10px 14px;text-align:center}",
    ".notice{font-size:13px;color:#374151;background:#fff7ed;border:1px solid #fed7aa;border-radius:8px;padding:8px 10px}",
    ".notice.earlier{background:none;border:0;border-bottom:1px dashed #9ca3af;border-radius:0;text-align:center;color:#4b5563;padding:4px 0 8px}",
    ".error{font-size:13px;color:#991b1b;background:#fef2f2;border:1px solid #fecaca;border-radius:8px;padding:8px 10px}",
    ".stars{display:flex;gap:4px}",
    ".star{all:initial;cursor:pointer;font:22px/1 system-ui,sans-serif;color:#f59e0b}",
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}",
    // A phone: the open chat is the whole window (the close button is in its header).
    "@media " + NARROW + "{.panel{position:fixed;top:0;right:0;bottom:0;left:0;width:auto;max-width:none;",
    "height:auto;max-height:none;margin:0;border-radius:0;box-shadow:none}.ct.open .launcher{display:none}}"
  ].join("");

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") node.textContent = attrs[name];
      else if (name.slice(0, 2) === "on") node.addEventListener(name.slice(2), attrs[name]);
      else node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  // The launcher's pictures are drawn, not an emoji: a system without an emoji font (many
  // Linux desktops, older Windows) would show an empty box on every tenant's site.
  var ICONS = {
    chat: "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H10l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z",
    close: "M6.4 5 5 6.4 10.6 12 5 17.6 6.4 19 12 13.4 17.6 19 19 17.6 13.4 12 19 6.4 17.6 5 12 10.6z"
  };
  function icon(name) {
    var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "26");
    svg.setAttribute("height", "26");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("data-icon", name);
    var path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", ICONS[name]);
    path.setAttribute("fill", "currentColor");
    svg.appendChild(path);
    return svg;
  }

  function storageGet(key) { try { return window.localStorage.getItem(key); } catch (e) { return null; } }
  function storageSet(key, value) { try { window.localStorage.setItem(key, value); } catch (e) { /* private mode */ } }

  function newClientId() {
    if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
    return "c" + Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  function clock(iso) {
    try {
      return new Intl.DateTimeFormat(LANG, { hour: "2-digit", minute: "2-digit" }).format(new Date(iso));
    } catch (e) { return ""; }
  }

  // --- State -------------------------------------------------------------------------------
  var state = {
    socket: null, token: storageGet(STORE_KEY), conversation: null, status: null, bot: null,
    connected: false, everConnected: false, attempts: 0, reconnectTimer: null, connectTimer: null,
    stopped: false,
    messages: {},        // id -> element
    pending: {},         // client_id -> {frame, element}
    lastRead: 0, open: false, started: false, unavailable: false, regionAsked: false,
    prechat: null,       // the pre-chat form while it waits to be done
    awayForm: null, contactSaved: false
  };

  // --- DOM ---------------------------------------------------------------------------------
  // A custom element, not a <div>: the host page's element selectors do not match it, and
  // its inline !important reset keeps page rules from leaking in through inheritance
  // (`all` leaves out direction, which a right-to-left page would pass down: set it too).
  var host = el("chattonic-widget", { "data-bot": BOT_KEY });
  [["all", "initial"], ["direction", "ltr"], ["position", "fixed"], ["right", "20px"], ["bottom", "20px"],
   ["z-index", "2147483000"], ["display", "block"]].forEach(function (pair) { host.style.setProperty(pair[0], pair[1], "important"); });
  var shadow = host.attachShadow({ mode: "open" });
  var style = el("style", { text: CSS });
  var title = el("span", { class: "title", id: "ct-title", text: SANDBOX ? T.sandbox : "" });
  var stateLabel = el("span", { class: "state", "aria-live": "polite", text: T.connecting });
  var retryButton = el("button", { class: "retry", type: "button", hidden: "hidden", text: T.retry });
  var closeButton = el("button", { class: "close", type: "button", "aria-label": T.close, text: "×" });
  var log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": T.messages, tabindex: "0" });
  var typingLine = el("div", { class: "typing", "aria-live": "polite" });
  var input = el("textarea", { class: "input", rows: "1", "aria-label": T.placeholder, placeholder: T.placeholder, maxlength: "4000" });
  var sendButton = el("button", { class: "send", type: "submit", text: T.send });
  var composer = el("form", { class: "composer" }, [input, sendButton]);
  var panel = el("div", { class: "panel", role: "dialog", "aria-labelledby": "ct-title", "aria-modal": "false" }, [
    el("div", { class: "header" }, [title, stateLabel, retryButton, closeButton]), log, typingLine, composer
  ]);
  var launcher = el("button", { class: "launcher", type: "button", "aria-label": T.open, "aria-expanded": "false" }, [icon("chat")]);
  var root = el("div", { class: "ct" }, [panel, launcher]);
  shadow.appendChild(style);
  shadow.appendChild(root);
  var narrow = window.matchMedia ? window.matchMedia(NARROW) : { matches: false };

  function setColor(color) {
    host.style.setProperty("--ct-color", /^#[0-9a-fA-F]{6}$/.test(color || "") ? color : "#2563eb", "important");
  }
  setColor(null);

  function setOpen(open) {
    state.open = open;
    root.classList.toggle("open", open);
    host.toggleAttribute("data-chat-open", open);  // for the page's own layout (the flow editor)
    panel.classList.toggle("open", open);
    // Full-window on a phone, so modal there: the page behind it cannot be reached.
    panel.setAttribute("aria-modal", String(open && narrow.matches));
    launcher.setAttribute("aria-expanded", String(open));
    launcher.setAttribute("aria-label", open ? T.close : T.open);
    launcher.replaceChildren(icon(open ? "close" : "chat"));
    if (open) {
      // The newest message in view: what arrived while the panel was hidden (a reload's
      // history) could not be scrolled to then, and the log stayed at its oldest.
      scrollDown();
      ensureStarted();
      setTimeout(focusPanel, 0);
      markRead();
    } else {
      launcher.focus();
    }
  }
  launcher.addEventListener("click", function () { setOpen(!state.open); });
  closeButton.addEventListener("click", function () { setOpen(false); });

  // --- Focus ----------------------------------------------------------------------------------
  // The focus stays in the open chat: when the control that has it goes away (a quick reply
  // pressed, a form sent, the retry button once connected), it moves to the message box.
  function focusPanel() {
    if (!state.open) return;
    if (!input.disabled) input.focus();
    else closeButton.focus();
  }
  function hasFocus(node) { return !!shadow.activeElement && node.contains(shadow.activeElement); }
  function removeKeepingFocus(node) {
    var had = hasFocus(node);
    node.remove();
    if (had) focusPanel();
  }
  function hideKeepingFocus(node) {
    var had = hasFocus(node);
    node.setAttribute("hidden", "hidden");
    if (had) focusPanel();
  }
  // Escape closes the chat and gives the focus back to the launcher, whether the focus is in
  // the widget or was lost to the page's body; a page's own control keeps its Escape.
  window.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || !state.open || event.isComposing) return;
    var active = document.activeElement;
    if (active === host || !active || active === document.body || active === document.documentElement) {
      setOpen(false);
    }
  }, true);
  // On a phone the chat covers the page: Tab goes round its own controls.
  panel.addEventListener("keydown", function (event) {
    if (event.key !== "Tab" || !narrow.matches) return;
    var stops = Array.prototype.filter.call(
      panel.querySelectorAll("button, textarea, input, a[href], [tabindex='0']"),
      function (node) { return !node.disabled && node.getClientRects().length > 0; });
    if (!stops.length) return;
    var first = stops[0], last = stops[stops.length - 1];
    if (event.shiftKey && shadow.activeElement === first) { event.preventDefault(); last.focus(); }
    else if (!event.shiftKey && shadow.activeElement === last) { event.preventDefault(); first.focus(); }
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); submit(); }
  });
  var typingSent = false, typingTimer = null;
  input.addEventListener("input", function () {
    if (!typingSent) { send({ type: "typing", on: true }); typingSent = true; }
    clearTimeout(typingTimer);
    typingTimer = setTimeout(function () { send({ type: "typing", on: false }); typingSent = false; }, 1500);
  });
  composer.addEventListener("submit", function (event) { event.preventDefault(); submit(); });

  function submit() {
    var text = input.value.trim();
    if (!text || state.unavailable || state.prechat) return;
    input.value = "";
    // Sent: no longer typing (else the agent reads "Visitor is typing…" under the message).
    if (typingSent) { clearTimeout(typingTimer); send({ type: "typing", on: false }); typingSent = false; }
    queue({ type: "message", client_id: newClientId(), text: text }, text);
  }

  // --- Rendering ----------------------------------------------------------------------------
  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function removeReplies() {
    var old = log.querySelectorAll(".replies");
    for (var i = 0; i < old.length; i++) removeKeepingFocus(old[i]);
  }

  function statusText(status) {
    if (status === "read") return T.read;
    if (status === "failed") return T.failed;
    return T.sent;
  }

  // `quiet`: from a history frame, which says itself whether the away form is on offer
  // (showAwayForm); a live away message offers it.
  function renderMessage(message, quiet) {
    if (state.messages[message.id]) { updateStatus(message.id, message.status); return; }
    var pending = message.client_id && state.pending[message.client_id];
    var node = pending ? pending.element : null;
    var inbound = message.direction === "in";
    if (!node) {
      node = el("div", { class: "msg " + (inbound ? "in" : "out") });
      log.appendChild(node);
    }
    node.textContent = "";
    node.removeAttribute("data-pending");
    if (!inbound && message.sender === "agent") node.appendChild(el("span", { class: "who", text: message.agent || T.agent }));
    node.appendChild(document.createTextNode(message.text || ""));
    if (message.media && message.media.url && /^https?:/.test(message.media.url)) {
      if (message.media.kind === "image") node.appendChild(el("img", { src: message.media.url, alt: "" }));
      else node.appendChild(el("a", { href: message.media.url, target: "_blank", rel: "noopener", text: message.media.url }));
    }
    var meta = el("span", { class: "meta", text: clock(message.created_at) + (inbound ? " · " + statusText(message.status) : "") });
    node.appendChild(meta);
    node.setAttribute("data-id", String(message.id));
    node.setAttribute("data-status", message.status || "");
    state.messages[message.id] = node;
    if (pending) delete state.pending[message.client_id];
    if (!inbound) {
      removeReplies();
      if (message.quick_replies && message.quick_replies.length) renderReplies(message.quick_replies);
      if (message.away && !quiet) { state.contactSaved = false; renderAwayForm(null); }
    }
    scrollDown();
    if (!inbound && state.open && document.visibilityState !== "hidden") markRead();
  }
  function renderLive(message) { renderMessage(message, false); }
  function renderQuiet(message) { renderMessage(message, true); }

  function renderReplies(replies) {
    var box = el("div", { class: "replies", role: "group" });
    replies.forEach(function (reply) {
      box.appendChild(el("button", {
        class: "reply", type: "button", text: reply.title,
        onclick: function () {
          removeReplies();
          queue({ type: "quick_reply", client_id: newClientId(), payload: reply.payload, title: reply.title }, reply.title);
          focusPanel();  // the pressed button is gone (and some browsers never focus a clicked one)
        }
      }));
    });
    log.appendChild(box);
  }

  function updateStatus(id, status) {
    var node = state.messages[id];
    if (!node || !node.classList.contains("in")) return;
    node.setAttribute("data-status", status);
    var meta = node.querySelector(".meta");
    if (meta) meta.textContent = meta.textContent.split(" · ")[0] + " · " + statusText(status);
  }

  // `after`: the log's node to put it under (else it goes last).
  function notice(text, kind, after) {
    var node = el("div", { class: kind || "notice", role: kind === "error" ? "alert" : "status", text: text });
    place(node, after);
    return node;
  }
  function place(node, after) {
    if (after && after.parentNode === log) log.insertBefore(node, after.nextSibling);
    else log.appendChild(node);
    scrollDown();
  }

  // The message box, closed while the chat is unavailable and until the pre-chat form is done
  // (a message sent before it started the chat without the visitor's details or consent, and
  // the flow took it for the answer to its first question): its placeholder says why.
  function updateComposer() {
    var closed = state.unavailable || !!state.prechat;
    var had = closed && hasFocus(composer);
    input.disabled = closed;
    sendButton.disabled = closed;
    input.placeholder = state.prechat && !state.unavailable ? T.prechatHint : T.placeholder;
    if (had) focusPanel();
  }

  // A form's error in the widget's language, from the error frame's code and field (its
  // message is the server's, in English). `emailGiven`: the visitor typed an email (else the
  // away form's `email` error is that neither an email nor a phone was left).
  function formErrorText(frame, emailGiven) {
    if (frame.code === "invalid" && frame.fields && frame.fields.email) return emailGiven ? T.badEmail : T.needContact;
    if (frame.code === "not_away") return T.awayClosed;
    if (frame.code === "sandbox") return frame.message;  // the dashboard's test chat: staff read it
    return T.formFailed;
  }
  function showFormError(form, text, field) {
    form.error.textContent = text;
    form.error.removeAttribute("hidden");
    if (field) field.focus();
  }

  function renderPrechat() {
    var name = el("input", { class: "input", name: "name", autocomplete: "name" });
    var email = el("input", { class: "input", name: "email", type: "email", autocomplete: "email" });
    var consent = el("input", { type: "checkbox", name: "consent" });
    var error = el("div", { class: "error", role: "alert", hidden: "hidden" });
    // novalidate: the widget says what is wrong in its own language (not the browser's).
    var form = el("form", { class: "form prechat", "aria-label": T.startChat, novalidate: "" }, [
      el("label", {}, [document.createTextNode(T.name), name]),
      el("label", {}, [document.createTextNode(T.email), email]),
      el("label", { class: "check" }, [consent, document.createTextNode(T.consent)]),
      error,
      el("button", { class: "send", type: "submit", text: T.startChat })
    ]);
    var prechat = { form: form, error: error, email: email, sending: false };
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      error.setAttribute("hidden", "hidden");
      if (!consent.checked) { showFormError(prechat, T.needConsent, consent); return; }
      // The form stays until the conversation's history comes (finishPrechat): a refused
      // start (a wrong email) is said here, and the visitor corrects it.
      state.started = prechat.sending = true;
      if (!send({ type: "start", fields: { name: name.value, email: email.value, consent: true } })) {
        state.started = prechat.sending = false;
        showFormError(prechat, T.formFailed, null);
        reconnectNow(false);
      }
    });
    state.prechat = prechat;
    log.appendChild(form);
    updateComposer();
    scrollDown();
    setTimeout(function () { name.focus(); }, 0);
  }

  // The conversation started: the pre-chat form goes and the message box opens.
  function finishPrechat() {
    if (!state.prechat) return;
    var had = hasFocus(state.prechat.form);
    state.prechat.form.remove();
    state.prechat = null;
    updateComposer();
    if (had) focusPanel();
  }

  // The away form: nobody can answer now, so the visitor may leave their details.
  function renderAwayForm(after) {
    if (state.contactSaved || state.awayForm) return;
    var name = el("input", { class: "input", name: "name", autocomplete: "name" });
    var email = el("input", { class: "input", name: "email", type: "email", autocomplete: "email" });
    var phone = el("input", { class: "input", name: "phone", type: "tel", autocomplete: "tel" });
    var text = el("input", { class: "input", name: "message" });
    var error = el("div", { class: "error", role: "alert", hidden: "hidden" });
    var form = el("form", { class: "form away-form", "aria-label": T.leaveDetails, novalidate: "" }, [
      el("strong", { text: T.leaveDetails }),
      el("label", {}, [document.createTextNode(T.name), name]),
      el("label", {}, [document.createTextNode(T.email), email]),
      el("label", {}, [document.createTextNode(T.phone), phone]),
      el("label", {}, [document.createTextNode(T.message), text]),
      error,
      el("button", { class: "send", type: "submit", text: T.sendDetails })
    ]);
    var away = { form: form, error: error, email: email, sending: false };
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      error.setAttribute("hidden", "hidden");
      away.sending = send({ type: "contact", fields: { name: name.value, email: email.value, phone: phone.value, message: text.value } });
      if (!away.sending) { showFormError(away, T.formFailed, null); reconnectNow(false); }
    });
    state.awayForm = away;
    place(form, after);
  }

  // The away form as a history frame says it stands (`away_form`), under the away message:
  // "offered", the form; "answered", the thanks for the details instead; else none (no agent
  // was sought, one joined, the conversation was passed on or resolved).
  function showAwayForm(status, messages) {
    var after = null;
    messages.forEach(function (message) { if (message.away && state.messages[message.id]) after = state.messages[message.id]; });
    if (status === "offered") {
      state.contactSaved = false;
      renderAwayForm(after);
      return;
    }
    dropAwayForm();
    if (status === "answered" && !state.contactSaved) {
      state.contactSaved = true;
      notice(T.thanks, null, after);
    }
  }

  // The away form leaves: the details were kept, or an agent joined after all.
  function dropAwayForm() {
    if (state.awayForm) { removeKeepingFocus(state.awayForm.form); state.awayForm = null; }
  }

  // What the visitor is told of a change of hands (the server's `notice`): an agent joined
  // (by their first name), or the conversation was resolved (the next message starts anew).
  function renderHandoffNotice(frame) {
    var texts = {
      en: { joined: "{name} joined the conversation", resolved: "This conversation was resolved", transferred: "You were passed on to another team: someone will be with you soon" },
      es: { joined: "{name} se unió a la conversación", resolved: "Esta conversación se resolvió", transferred: "Te pasamos a otro equipo: alguien te atenderá en breve" },
      pt: { joined: "{name} entrou na conversa", resolved: "Esta conversa foi resolvida", transferred: "Você foi encaminhado a outra equipe: alguém vai atendê-lo em breve" }
    }[LANG];
    if (frame.notice === "agent_joined") {
      notice(texts.joined.replace("{name}", frame.agent || T.agent));
    } else if (frame.notice === "resolved") notice(texts.resolved);
    else if (frame.notice === "transferred") notice(texts.transferred);
  }

  // CSAT: a resolved conversation asks for a rating from 1 to 5.
  function renderRating() {
    if (state.rated || log.querySelector(".rating")) return;
    var box = el("div", { class: "replies rating", role: "group", "aria-label": T.rate }, [el("span", { class: "who", text: T.rate })]);
    [1, 2, 3, 4, 5].forEach(function (score) {
      box.appendChild(el("button", {
        class: "reply", type: "button", text: "★ " + score, "aria-label": score + " / 5",
        onclick: function () { send({ type: "rating", score: score }); }
      }));
    });
    log.appendChild(box);
    scrollDown();
  }

  function ensureStarted() {
    if (state.started || !state.connected || state.unavailable) return;
    if (state.conversation) { state.started = true; return; }
    // The pre-chat form, unless the visitor gave their details and consent before.
    if (state.bot && state.bot.prechat && !state.consented) { if (!state.prechat) renderPrechat(); return; }
    state.started = true;
    send({ type: "start" });
  }

  function markRead() {
    var ids = Object.keys(state.messages).map(Number);
    var newest = 0;
    ids.forEach(function (id) { if (id > newest && state.messages[id].classList.contains("out")) newest = id; });
    if (newest > state.lastRead && state.connected) {
      state.lastRead = newest;
      send({ type: "read", id: newest });
    }
  }
  document.addEventListener("visibilitychange", function () { if (state.open) markRead(); });

  // --- The socket ---------------------------------------------------------------------------
  function send(frame) {
    if (state.socket && state.socket.readyState === 1) { state.socket.send(JSON.stringify(frame)); return true; }
    return false;
  }

  function queue(frame, text) {
    // Shown at once, kept until the server acknowledges it: resent after a reconnect,
    // stored once thanks to its client_id.
    var element = el("div", { class: "msg in", "data-pending": "1" }, [document.createTextNode(text), el("span", { class: "meta", text: "…" })]);
    log.appendChild(element);
    scrollDown();
    state.pending[frame.client_id] = { frame: frame, element: element };
    if (!state.started) ensureStarted();
    if (!send(frame)) reconnectNow(false);  // the visitor is waiting: try now, not at the next backoff
  }

  // Reconnecting. After a drop the widget tries again with backoff (0.5 s doubling up to
  // 30 s, with jitter; at most 1 s apart while a message of the visitor waits to be sent),
  // and at once when the browser comes back online, when the page is shown again, when the
  // visitor sends something, or presses Retry. A refusal (close code 4000-4499 but 4429) is
  // final: the chat says it is unavailable, and the console tells the site's owner why.
  var CONNECT_TIMEOUT = 10000;

  function connect() {
    if (state.stopped) return;
    clearTimeout(state.reconnectTimer);
    clearTimeout(state.connectTimer);
    var old = state.socket;
    state.socket = null;
    state.connected = false;
    if (old && old.readyState < 2) old.close();  // abandoned: its events are ignored
    var url = WS_BASE + "/ws/webchat/" + encodeURIComponent(BOT_KEY) + "/?lang=" + LANG +
      (state.token ? "&session=" + encodeURIComponent(state.token) : "") + (SANDBOX ? "&sandbox=1" : "");
    var socket = new WebSocket(url);
    var opened = false;
    state.socket = socket;
    socket.onopen = function () { opened = true; };
    showConnection(state.everConnected || state.attempts ? "reconnecting" : "connecting");
    // A connection that neither fails nor opens (a network that drops packets) is given up.
    state.connectTimer = setTimeout(function () {
      if (state.socket === socket && !state.connected) socket.close();
    }, CONNECT_TIMEOUT);
    socket.onmessage = function (event) {
      if (state.socket !== socket) return;
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      handle(frame);
    };
    socket.onclose = function (event) {
      if (state.socket !== socket) return;
      clearTimeout(state.connectTimer);
      state.socket = null;
      state.connected = false;
      if (state.stopped) return;
      if (event.code >= 4000 && event.code < 4500 && event.code !== 4429) { refused(null, event.code); return; }
      // A handshake refused: once, ask the host whether the key is another region's (a
      // browser cannot read the refusal's own body).
      if (!opened && !state.regionAsked) { askRegion(); return; }
      scheduleReconnect(event.code === 4429);
    };
  }

  function askRegion() {
    state.regionAsked = true;
    fetch(HTTP_BASE + "/webchat/" + encodeURIComponent(BOT_KEY) + "/region/", { credentials: "omit" })
      .then(function (response) {
        return response.json().then(function (body) {
          var url = response.status === 421 && body.error && body.error.url;
          if (url && followRegion(url)) return;
          scheduleReconnect(false);
        });
      })
      .catch(function () { scheduleReconnect(false); });
  }

  // Another region's deployment serves this key: connect there from now on. Once: two
  // deployments that disagree do not send the widget back and forth.
  function followRegion(url) {
    if (state.regionFollowed || !/^https?:\/\/[^\/]+$/.test(url) || url === HTTP_BASE) return false;
    state.regionFollowed = true;
    HTTP_BASE = url;
    WS_BASE = wsBase(url);
    state.attempts = 0;
    connect();
    return true;
  }

  // `busy`: the server asked us to slow down (4429), waiting messages or not.
  function scheduleReconnect(busy) {
    showConnection("reconnecting");
    var waiting = !busy && Object.keys(state.pending).length > 0;
    var delay = navigator.onLine === false ? 30000 : Math.min(waiting ? 1000 : 30000, 500 * Math.pow(2, state.attempts));
    state.attempts += 1;
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = setTimeout(connect, delay * (0.5 + Math.random() / 2));
  }

  // `force` gives up an attempt under way (it may hang on a dead network).
  function reconnectNow(force) {
    if (state.stopped || state.connected || (state.socket && !force)) return;
    state.attempts = 0;
    connect();
  }

  function showConnection(what) {
    stateLabel.textContent = what === "connecting" ? T.connecting : what === "reconnecting" ? T.offline :
      what === "unavailable" ? T.unavailableShort : "";
    if (what === "reconnecting") retryButton.removeAttribute("hidden");
    else hideKeepingFocus(retryButton);
  }

  retryButton.addEventListener("click", function () { reconnectNow(true); });
  window.addEventListener("online", function () { reconnectNow(true); });
  // Offline, the socket is dead even if the browser has not noticed yet: drop it now, and wait
  // for "online" (or Retry) rather than for the backoff.
  window.addEventListener("offline", function () {
    if (state.socket && !state.stopped) state.socket.close();
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") reconnectNow(false);
  });

  var REFUSALS = ["origin_not_allowed", "unknown_bot", "wrong_region", "bot_unavailable", "forbidden"];

  // The server will not serve this page: no more attempts. The visitor reads that the chat is
  // unavailable; the site's owner reads why in the browser's console.
  function refused(frame, code) {
    if (state.unavailable) return;
    state.unavailable = state.stopped = true;
    clearTimeout(state.reconnectTimer);
    clearTimeout(state.connectTimer);
    showConnection("unavailable");
    // The sandbox's "sign in" is for the tenant's staff; everything else is for the site's owner.
    notice(frame && frame.code === "forbidden" ? frame.message : T.unavailable, "error");
    updateComposer();
    if (window.console) {
      console.error("Chat-Tonic widget (bot " + BOT_KEY + "): " +
        (frame ? frame.message + " [" + frame.code + "]" : "the server refused the chat (close code " + code + ")."));
    }
  }

  function handle(frame) {
    switch (frame.type) {
      case "session":
        clearTimeout(state.connectTimer);
        state.connected = true;
        state.everConnected = true;
        state.attempts = 0;
        state.token = frame.token;
        storageSet(STORE_KEY, frame.token);
        state.bot = frame.bot;
        state.conversation = frame.conversation;
        state.consented = frame.consented;
        title.textContent = (SANDBOX ? T.sandbox + " · " : "") + frame.bot.title;
        setColor(frame.bot.color);
        showConnection("");
        if (state.conversation) state.started = true;
        else state.started = false;
        if (state.prechat) state.prechat.sending = false;  // a start lost with the old socket
        if (state.open) ensureStarted();
        // Anything typed while offline goes now; the server drops repeats by client_id.
        Object.keys(state.pending).forEach(function (id) { send(state.pending[id].frame); });
        break;
      case "history":
        if (frame.earlier) {
          // The visitor's last chat, resolved: shown above the new one, once.
          if (state.earlierShown || !(frame.messages || []).length) break;
          state.earlierShown = true;
          frame.messages.forEach(renderQuiet);  // its away form is never offered again
          notice(T.earlier, "notice earlier");
          break;
        }
        state.conversation = frame.conversation;
        state.status = frame.status;
        (frame.messages || []).forEach(renderQuiet);
        if (frame.conversation) finishPrechat();
        if (frame.before == null) showAwayForm(frame.away_form, frame.messages || []);
        break;
      case "message":
        renderLive(frame.message);
        break;
      case "ack":
        // The stored message comes with its ack (the socket that sent it gets it only so).
        if (frame.message && !state.messages[frame.message.id]) {
          renderLive(frame.message);
          (frame.replies || []).forEach(renderLive);
          break;
        }
        (frame.replies || []).forEach(renderLive);
        var pending = state.pending[frame.client_id];
        if (pending) {
          pending.element.setAttribute("data-id", String(frame.id));
          pending.element.removeAttribute("data-pending");
          if (!state.messages[frame.id]) state.messages[frame.id] = pending.element;
          var meta = pending.element.querySelector(".meta");
          if (meta) meta.textContent = clock(new Date().toISOString()) + " · " + T.sent;
          delete state.pending[frame.client_id];
        }
        break;
      case "status":
        updateStatus(frame.id, frame.status);
        break;
      case "read":
        (frame.ids || []).forEach(function (id) { updateStatus(id, "read"); });
        break;
      case "typing":
        typingLine.textContent = frame.on ? (frame.sender === "agent" ? frame.name || T.agent : state.bot ? state.bot.title : T.bot) + " " + T.typing : "";
        break;
      case "conversation":
        state.status = frame.status;
        // The away form ("leave your details") is taken only while the conversation waits for
        // an agent after the away message: an agent joined (its Send sat beside the chat's
        // own), it was passed on, resolved or given back to the bot, and it has no more use.
        if (frame.status !== "queued" || frame.notice === "transferred") dropAwayForm();
        renderHandoffNotice(frame);
        if (frame.status === "resolved") renderRating();
        break;
      case "contact_saved":
        // The thanks where the form was (as a reload shows it: showAwayForm).
        var where = state.awayForm && state.awayForm.form.previousSibling;
        state.contactSaved = true;
        dropAwayForm();
        notice(T.thanks, null, where);
        break;
      case "rated":
        state.rated = true;
        var rating = log.querySelector(".rating");
        if (rating) removeKeepingFocus(rating);
        notice(T.rated);
        break;
      case "error":
        if (REFUSALS.indexOf(frame.code) !== -1) {
          refused(frame);
        } else if (frame.code === "too_many_connections") {
          // The close (4429) follows: the header says "Reconnecting…", and the backoff slows.
        } else {
          var failed = frame.client_id && state.pending[frame.client_id];
          if (failed) {
            failed.element.setAttribute("data-status", "failed");
            var failedMeta = failed.element.querySelector(".meta");
            if (failedMeta) failedMeta.textContent = T.failed;
            delete state.pending[frame.client_id];
          }
          // A form's answer (no client_id: not about a message), in the widget's language.
          var form = !frame.client_id && [state.prechat, state.awayForm].filter(function (f) { return f && f.sending; })[0];
          if (form && form === state.awayForm && frame.code === "not_away") {
            dropAwayForm();
            notice(T.awayClosed);
          } else if (form) {
            form.sending = false;
            if (form === state.prechat) state.started = false;
            var emailGiven = !!form.email.value.trim();
            showFormError(form, formErrorText(frame, emailGiven), frame.fields && frame.fields.email ? form.email : null);
          } else {
            notice(frame.message, "error");
          }
        }
        break;
    }
  }

  // Another tab created the visitor's session: use the same one.
  window.addEventListener("storage", function (event) {
    if (event.key === STORE_KEY && event.newValue && event.newValue !== state.token) {
      state.token = event.newValue;
      connect();
    }
  });

  function mount() {
    document.body.appendChild(host);
    connect();
    if (OPEN_AT_START) setOpen(true);
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
