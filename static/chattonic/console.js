/* Chat-Tonic agent console: live over /ws/agent/, no framework.
 *
 * Class names follow the stylesheet's convention (console.css): each component is a block
 * (`bubble`, `conv-item`, `contact-card`...), its parts `block__part`, its variants
 * `block--variant`. Never a bare word such as `contact` that another component could use.
 */
(function () {
  "use strict";

  var PREFS_KEY = "chattonic:console:alerts";
  var VIEWS = ["mine", "unassigned", "all", "resolved"];
  var SHORTCUT = /^\/([-A-Za-z0-9_]+)$/;  // what the server takes for a canned shortcut
  var BASE_TITLE = document.title;

  var state = {
    socket: null, attempts: 0, me: null, items: {}, agents: {}, teams: [], canned: [],
    view: null, open: null, openDetail: null, refs: 0, heartbeat: null,
    pending: {}, taking: {}, prefs: loadPrefs(), actionsOpen: false
  };
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") node.textContent = attrs[name];
      else if (name.slice(0, 2) === "on") node.addEventListener(name.slice(2), attrs[name]);
      else if (attrs[name] !== null && attrs[name] !== undefined && attrs[name] !== false) node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(typeof child === "string" ? document.createTextNode(child) : child); });
    return node;
  }

  function clock(iso) {
    try { return new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" }).format(new Date(iso)); }
    catch (e) { return ""; }
  }

  function day(iso) {
    try { return new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso)); }
    catch (e) { return iso; }
  }

  // "<1 min", "3 min", "2 h 5 min", "3 d": how long someone has waited.
  function duration(iso) {
    var minutes = Math.floor((Date.now() - new Date(iso).getTime()) / 60000);
    if (!(minutes >= 1)) return "<1 min";
    if (minutes < 60) return minutes + " min";
    var hours = Math.floor(minutes / 60);
    if (hours < 24) return hours + " h" + (minutes % 60 ? " " + (minutes % 60) + " min" : "");
    return Math.floor(hours / 24) + " d";
  }

  function send(frame) {
    if (state.socket && state.socket.readyState === 1) {
      frame.ref = String(++state.refs);
      state.socket.send(JSON.stringify(frame));
      return frame.ref;
    }
    return null;
  }

  // --- Preferences: the three alerts, each the agent's to turn off ---------------------------
  function loadPrefs() {
    var prefs = { badge: true, sound: true, notify: true };
    try {
      var stored = JSON.parse(window.localStorage.getItem(PREFS_KEY) || "{}");
      Object.keys(prefs).forEach(function (key) { if (typeof stored[key] === "boolean") prefs[key] = stored[key]; });
      if (typeof stored.view === "string") prefs.view = stored.view;
    } catch (e) { /* private mode, or a bad value: the defaults */ }
    return prefs;
  }

  function savePrefs() {
    try { window.localStorage.setItem(PREFS_KEY, JSON.stringify(state.prefs)); } catch (e) { /* private mode */ }
  }

  function notificationPermission() {
    return "Notification" in window ? Notification.permission : "unsupported";
  }

  function renderAlertSettings() {
    $("alert-badge").checked = state.prefs.badge;
    $("alert-sound").checked = state.prefs.sound;
    $("alert-notify").checked = state.prefs.notify;
    var permission = notificationPermission();
    var note = "";
    if (state.prefs.notify && permission === "denied") note = "The browser blocks this site's notifications: allow them in its site settings.";
    if (state.prefs.notify && permission === "unsupported") note = "This browser has no notifications.";
    $("notify-state").textContent = note;
    $("notify-prompt").hidden = !(state.prefs.notify && permission === "default");
  }

  // Asked only from a click (a user gesture), never on load.
  function askNotificationPermission() {
    if (notificationPermission() !== "default") { renderAlertSettings(); return; }
    var asked = Notification.requestPermission(function () { renderAlertSettings(); });
    if (asked && asked.then) asked.then(renderAlertSettings, renderAlertSettings);
  }

  // --- Alerts: a new conversation waits ------------------------------------------------------
  function alertNewConversation(summary) {
    if (state.prefs.sound) {
      var player = $("alert-sound-player");
      try {
        player.currentTime = 0;
        var playing = player.play();
        if (playing && playing.catch) playing.catch(function () { /* the browser wants a gesture first */ });
      } catch (e) { /* no audio */ }
    }
    if (state.prefs.notify && notificationPermission() === "granted") {
      try {
        var preview = summary.last_message ? summary.last_message.text : "";
        var notification = new Notification("Waiting for an agent: " + summary.contact.name, {
          body: (preview ? preview + "\n" : "") + summary.channel_label + " · " + summary.bot,
          tag: "conversation-" + summary.id
        });
        notification.onclick = function () { window.focus(); readConversation(summary.id); };
      } catch (e) { /* a browser that allows them only from a service worker */ }
    }
  }

  function attentionCount() {
    return items().filter(function (s) { return s.status === "queued" || (isMine(s) && s.unread > 0); }).length;
  }

  function renderTitle() {
    var count = state.prefs.badge ? attentionCount() : 0;
    document.title = (count ? "(" + count + ") " : "") + BASE_TITLE;
  }

  // --- The lists ------------------------------------------------------------------------------
  function items() { return Object.keys(state.items).map(function (id) { return state.items[id]; }); }

  function isMine(summary) {
    return summary.status === "assigned" && summary.agent && state.me && summary.agent.id === state.me.id;
  }

  function inView(summary, view) {
    if (view === "mine") return isMine(summary);
    if (view === "unassigned") return summary.status === "queued";
    if (view === "resolved") return summary.status === "resolved";
    return summary.status === "queued" || summary.status === "assigned";
  }

  function viewItems(view) {
    var list = items().filter(function (s) { return inView(s, view); });
    if (view === "unassigned") return list.sort(function (a, b) { return (a.queued_at || "").localeCompare(b.queued_at || "") || a.id - b.id; });
    if (view === "resolved") return list.sort(function (a, b) { return (b.resolved_at || "").localeCompare(a.resolved_at || "") || b.id - a.id; });
    return list.sort(function (a, b) { return (b.last_message_at || "").localeCompare(a.last_message_at || "") || b.id - a.id; });
  }

  function senderLabel(sender) {
    if (sender === "contact") return "Visitor";
    if (sender === "agent") return "Agent";
    if (sender === "bot") return "Bot";
    return "System";
  }

  // Queued: the visitor waits for an agent. With an agent: for that agent's reply (said
  // apart: "waiting" beside "With you" read as still queued).
  function waitLabel(summary) { return summary.status === "queued" ? "waiting " : "unanswered "; }
  function waitText(summary) { return summary.waiting_since ? waitLabel(summary) + duration(summary.waiting_since) : ""; }

  function conversationItem(summary) {
    var unread = summary.unread > 0;
    var preview = summary.last_message;
    var meta = [summary.channel_label, summary.bot].concat(summary.team ? ["Team " + summary.team] : []);
    if (summary.status === "assigned" && !isMine(summary) && summary.agent) meta.push("with " + summary.agent.name);
    return el("li", { class: "conv-list__entry", "data-conversation": String(summary.id) }, [
      el("button", {
        type: "button",
        class: "conv-item" + (state.open === summary.id ? " conv-item--active" : "") + (unread ? " conv-item--unread" : ""),
        "aria-current": state.open === summary.id ? "true" : null,
        onclick: function () { readConversation(summary.id); }
      }, [
        el("span", { class: "conv-item__top" }, [
          el("span", { class: "conv-item__name", text: summary.contact.name }),
          unread ? el("span", { class: "conv-item__unread" }, [String(summary.unread), el("span", { class: "visually-hidden", text: " unread" })]) : null
        ]),
        el("span", { class: "conv-item__preview", text: preview ? senderLabel(preview.sender) + ": " + preview.text : "No messages yet" }),
        el("span", { class: "conv-item__meta" }, [
          el("span", { class: "conv-item__channel", text: meta.join(" · ") }),
          el("span", { class: "conv-item__wait", "data-since": summary.waiting_since || "", "data-label": waitLabel(summary), text: waitText(summary) })
        ])
      ])
    ]);
  }

  function renderLists() {
    var list = $("conversation-list");
    var focused = document.activeElement && list.contains(document.activeElement)
      ? document.activeElement.closest("[data-conversation]").getAttribute("data-conversation") : null;
    list.textContent = "";
    var shown = viewItems(state.view);
    shown.forEach(function (summary) { list.appendChild(conversationItem(summary)); });
    $("conversation-list-empty").hidden = shown.length > 0;
    VIEWS.forEach(function (view) {
      $("count-" + view).textContent = String(viewItems(view).length);
      var tab = $("tab-" + view);
      tab.setAttribute("aria-selected", String(view === state.view));
      tab.tabIndex = view === state.view ? 0 : -1;
    });
    $("view-panel").setAttribute("aria-labelledby", "tab-" + state.view);
    if (focused) {
      var again = list.querySelector('[data-conversation="' + focused + '"] button');
      if (again) again.focus();
    }
    renderAgents();
    renderTitle();
  }

  function renderAgents() {
    var agents = $("agents");
    agents.textContent = "";
    Object.keys(state.agents).forEach(function (id) {
      var agent = state.agents[id];
      agents.appendChild(el("li", { class: "agent-list__agent agent-list__agent--" + agent.presence, "data-agent": id, text: agent.name + " — " + agent.presence }));
    });
  }

  function tickWaits() {
    var spans = document.querySelectorAll(".conv-item__wait[data-since]");
    for (var i = 0; i < spans.length; i++) {
      var since = spans[i].getAttribute("data-since");
      spans[i].textContent = since ? spans[i].getAttribute("data-label") + duration(since) : "";
    }
  }

  function chooseView(view, focus) {
    state.view = view;
    state.prefs.view = view;
    savePrefs();
    renderLists();
    if (focus) $("tab-" + view).focus();
  }

  function track(summary) {
    var before = state.items[summary.id];
    if (summary.status !== "queued" && summary.status !== "assigned" && summary.status !== "resolved") {
      delete state.items[summary.id];  // back with the bot
    } else {
      // Each agent's own count comes with hello; a conversation first heard of now is unread.
      summary.unread = before ? before.unread : summary.contact_messages;
      state.items[summary.id] = summary;
    }
    var newlyWaiting = summary.status === "queued" && !(before && before.status === "queued");
    renderLists();
    if (newlyWaiting) alertNewConversation(summary);
  }

  // --- The conversation view ------------------------------------------------------------------
  function openConversation(id) {
    if (state.items[id]) state.items[id].unread = 0;
    send({ type: "open", conversation: id });
  }

  // The agent chose it (the list, a notification): at phone width the conversation takes
  // the screen until "Conversations" brings the list back.
  function readConversation(id) {
    document.querySelector(".layout").classList.add("layout--reading");
    openConversation(id);
  }

  // "first_name" → "First name".
  function fieldLabel(key) {
    var words = String(key).replace(/_/g, " ");
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  function messageNode(message) {
    var who = message.sender === "agent" ? (message.agent || "Agent") : senderLabel(message.sender);
    return el("li", { class: "bubble bubble--" + message.sender, "data-id": String(message.id) }, [
      el("span", { class: "bubble__who", text: who }),
      el("span", { class: "bubble__text", text: message.text || "(" + message.kind + ")" }),
      el("span", { class: "bubble__meta", text: clock(message.created_at) + (message.direction === "out" ? " · " + message.status : "") })
    ]);
  }

  function noteNode(note) {
    return el("li", { class: "bubble bubble--note", "data-note": String(note.id) }, [
      el("span", { class: "bubble__who", text: "Private note · " + (note.author || "") }),
      el("span", { class: "bubble__text", text: note.text }),
      el("span", { class: "bubble__meta", text: clock(note.created_at) })
    ]);
  }

  function appendToTimeline(node, sortKey) {
    var timeline = $("timeline");
    if (!timeline) return;
    node.setAttribute("data-at", sortKey);
    timeline.appendChild(node);
    timeline.scrollTop = timeline.scrollHeight;
  }

  function statusText(summary) {
    if (summary.status === "assigned" && summary.agent) return isMine(summary) ? "With you" : "With " + summary.agent.name;
    return summary.status_label;
  }

  // At phone width the conversation's actions fold under an "Actions" button (the messages
  // keep the screen); wider, the button is not shown and the actions always are.
  function showActions(open, focusToggle) {
    state.actionsOpen = open;
    var head = document.querySelector(".pane__head");
    if (head) head.classList.toggle("pane__head--actions-open", open);
    var toggle = $("actions-toggle");
    if (toggle) {
      toggle.setAttribute("aria-expanded", String(open));
      if (focusToggle) toggle.focus();
    }
  }

  function actionButton(id, text, frame) {
    return el("button", { type: "button", id: id, class: "pane__button", text: text, onclick: function () {
      showActions(false);
      var ref = send(frame);
      // Claimed or taken over, the conversation is the agent's: the list follows it to Mine.
      if (ref && (frame.type === "claim" || frame.type === "take_over")) state.taking[ref] = frame.conversation;
    } });
  }

  function renderConversation(detail) {
    // A change to the open conversation redraws it: keep what the agent was typing.
    // (and what the composer's hint says: a refused shortcut's error stays until the next key).
    var draft = state.open === detail.conversation.id && $("reply") ? {
      text: $("reply").value, note: $("as-note").checked, focused: document.activeElement === $("reply"),
      hint: $("composer-hint").textContent, hintClass: $("composer-hint").className
    } : null;
    // Where the agent was reading: the newest messages, unless they had scrolled back.
    var before = draft && $("timeline");
    var scrolledBack = before && before.scrollHeight - before.scrollTop - before.clientHeight > 40 ? before.scrollTop : null;
    if (state.open !== detail.conversation.id) state.actionsOpen = false;
    state.open = detail.conversation.id;
    state.openDetail = detail;
    var summary = detail.conversation;
    if (state.items[summary.id]) {
      summary.unread = 0;
      state.items[summary.id] = summary;
    }
    var main = $("conversation");
    main.textContent = "";
    var actions = el("div", { id: "conversation-actions", class: "pane__actions", role: "group", "aria-label": "Conversation actions" });
    var mineNow = isMine(summary);
    // Another agent's conversation is theirs to act on (or an owner's or admin's).
    var othersOnly = summary.status === "assigned" && !mineNow && !state.me.admin;
    var open = (summary.status === "queued" || summary.status === "assigned") && !othersOnly;
    // What lets the agent reply, Claim or Take over, stays in sight on a phone too.
    var primary = summary.status === "queued" ? actionButton("claim", "Claim", { type: "claim", conversation: summary.id })
      : summary.status === "bot" ? actionButton("take-over", "Take over", { type: "take_over", conversation: summary.id })
      : null;
    if (open) {
      var target = el("select", { id: "transfer-to", class: "pane__select", "aria-label": "Transfer to" }, [el("option", { value: "", text: "Transfer to…" })]);
      // Each agent with their presence: only one who is online can be given it.
      Object.keys(state.agents).forEach(function (id) {
        var agent = state.agents[id];
        if (Number(id) === state.me.id) return;
        var online = agent.presence === "online";
        target.appendChild(el("option", { value: "agent:" + id, text: agent.name + (online ? "" : " — " + agent.presence), disabled: online ? null : "disabled" }));
      });
      state.teams.forEach(function (team) { target.appendChild(el("option", { value: "team:" + team.id, text: "Team " + team.name })); });
      actions.appendChild(target);
      actions.appendChild(el("button", { type: "button", id: "transfer", class: "pane__button", text: "Transfer", onclick: function () {
        var value = target.value.split(":");
        if (value.length !== 2) return;
        var frame = { type: "transfer", conversation: summary.id };
        frame[value[0]] = Number(value[1]);
        showActions(false);
        send(frame);
      } }));
      var node = el("select", { id: "handback-node", class: "pane__select" }, [el("option", { value: "", text: "the start" })]);
      detail.nodes.forEach(function (n) { node.appendChild(el("option", { value: n.id, text: n.title })); });
      actions.appendChild(el("label", { class: "pane__label" }, ["Back to bot at ", node]));
      actions.appendChild(el("button", { type: "button", id: "hand-back", class: "pane__button", text: "Hand back to bot", onclick: function () { showActions(false); send({ type: "hand_back", conversation: summary.id, node: node.value || null }); } }));
      actions.appendChild(actionButton("resolve", "Resolve", { type: "resolve", conversation: summary.id }));
    }
    // Shown only where the contact panel is collapsed (a narrow window): it opens it.
    actions.appendChild(el("button", {
      type: "button", id: "contact-toggle", class: "pane__contact-toggle", "aria-controls": "contact",
      "aria-expanded": String($("contact").classList.contains("contact-card--open")),
      text: "Contact details", onclick: function () { showActions(false); toggleContact(); }
    }));
    var title = summary.contact.name + " — " + summary.bot;
    main.appendChild(el("header", { class: "pane__head" + (state.actionsOpen ? " pane__head--actions-open" : ""), onkeydown: function (event) {
      if (event.key === "Escape" && state.actionsOpen) { event.preventDefault(); showActions(false, true); }
    } }, [
      // Shown only at phone width, where the list and the conversation take turns.
      el("button", { type: "button", id: "back-to-list", class: "pane__back", onclick: function () {
        document.querySelector(".layout").classList.remove("layout--reading");
        var active = document.querySelector(".conv-item--active");
        if (active) active.focus();
      } }, [el("span", { "aria-hidden": "true", text: "‹" }), el("span", { class: "visually-hidden", text: " Conversations" })]),
      el("div", { class: "pane__heading" }, [
        el("h2", { class: "pane__title", title: title, text: title }),
        el("p", { class: "pane__subtitle" }, [
          el("span", { class: "pane__state pane__state--" + summary.status, id: "conversation-status", text: statusText(summary) }),
          " · " + summary.channel_label
        ])
      ]),
      el("div", { class: "pane__controls" }, [
        primary,
        // Shown only at phone width: it unfolds the actions over the top of the messages.
        el("button", {
          type: "button", id: "actions-toggle", class: "pane__actions-toggle", "aria-controls": "conversation-actions",
          "aria-expanded": String(state.actionsOpen), onclick: function () { showActions(!state.actionsOpen); }
        }, ["Actions", el("span", { "aria-hidden": "true", text: " ▾" })]),
        actions
      ])
    ]));
    main.appendChild(el("p", { id: "conversation-alert", class: "pane__alert", role: "alert" }));
    var timeline = el("ol", { id: "timeline", class: "timeline", "aria-label": "Messages", "aria-live": "polite", "aria-relevant": "additions", tabindex: "0" });
    main.appendChild(timeline);
    var entries = detail.messages.map(function (m) { return { at: m.created_at, node: messageNode(m) }; })
      .concat(detail.notes.map(function (n) { return { at: n.created_at, node: noteNode(n) }; }))
      .sort(function (a, b) { return a.at.localeCompare(b.at); });
    entries.forEach(function (entry) { appendToTimeline(entry.node, entry.at); });
    main.appendChild(el("div", { id: "typing", class: "pane__typing", "aria-live": "polite" }));
    main.appendChild(composer(summary, mineNow));
    if (draft) {
      $("reply").value = draft.text; $("as-note").checked = draft.note; if (draft.focused) $("reply").focus();
      $("as-note").dispatchEvent(new Event("change"));  // the note mode's look, as it was
      $("composer-hint").textContent = draft.hint; $("composer-hint").className = draft.hintClass;
    }
    renderContact(detail.contact, summary.contact.name);
    renderLists();
    // Now that the composer has taken its height: the newest message in view (scrolled while
    // the timeline was still the pane's height, it ended hidden under the composer).
    timeline.scrollTop = scrolledBack === null ? timeline.scrollHeight : scrolledBack;
  }

  // --- The composer and its canned-response picker ---------------------------------------------
  function composer(summary, mineNow) {
    var resolved = summary.status === "resolved";
    var replyPlaceholder = resolved ? "This conversation is resolved."
      : mineNow ? "Reply… (type / for a canned response)"
      : summary.status === "assigned" && summary.agent ? summary.agent.name + " has this conversation."
      : "Claim the conversation to reply";
    var box = el("textarea", {
      id: "reply", class: "composer__input", rows: "3", "aria-label": "Reply",
      "aria-autocomplete": "list", "aria-controls": "canned-list", "aria-describedby": "composer-hint",
      disabled: resolved ? "disabled" : null,
      placeholder: replyPlaceholder
    });
    var picker = el("ul", { id: "canned-list", class: "picker", role: "listbox", "aria-label": "Canned responses", hidden: "hidden" });
    var hint = el("p", { id: "composer-hint", class: "composer__hint", "aria-live": "polite" });
    var isNote = el("input", { type: "checkbox", id: "as-note", class: "composer__check", disabled: resolved ? "disabled" : null });
    var sendButton = el("button", { type: "submit", id: "send", class: "composer__send", text: "Send", disabled: resolved ? "disabled" : null });
    var matches = [], active = 0;

    // Note mode shows: the box turns yellow, says who reads it, and Send says "Add note" (a
    // reply after a note quietly became another note: the box looked the same).
    function showMode() {
      var note = isNote.checked;
      box.classList.toggle("composer__input--note", note);
      box.placeholder = note ? "Private note: only your team reads it" : replyPlaceholder;
      sendButton.textContent = note ? "Add note" : "Send";
    }
    isNote.addEventListener("change", showMode);

    function setHint(text, isError) {
      hint.textContent = text || "";
      hint.className = "composer__hint" + (isError ? " composer__hint--error" : "");
    }

    function closePicker() {
      matches = [];
      picker.hidden = true;
      picker.textContent = "";
      box.removeAttribute("aria-activedescendant");
    }

    function showPicker() {
      picker.textContent = "";
      matches.forEach(function (canned, index) {
        picker.appendChild(el("li", {
          id: "canned-option-" + index, class: "picker__option" + (index === active ? " picker__option--active" : ""),
          role: "option", "aria-selected": String(index === active), "data-shortcut": canned.shortcut,
          onmousedown: function (event) { event.preventDefault(); },  // keep the focus in the box
          onclick: function () { insert(index); }
        }, [el("span", { class: "picker__shortcut", text: "/" + canned.shortcut }), el("span", { class: "picker__text", text: canned.text })]));
      });
      picker.hidden = false;
      box.setAttribute("aria-activedescendant", "canned-option-" + active);
      var current = $("canned-option-" + active);
      if (current && current.scrollIntoView) current.scrollIntoView({ block: "nearest" });
    }

    function filter() {
      var typed = /^\/(\S*)$/.exec(box.value);
      if (!typed) { closePicker(); if (hint.className.indexOf("--error") < 0) setHint(""); return; }
      var query = typed[1].toLowerCase();
      var starts = state.canned.filter(function (c) { return c.shortcut.toLowerCase().indexOf(query) === 0; });
      var contains = state.canned.filter(function (c) {
        return starts.indexOf(c) < 0 && (c.shortcut.toLowerCase().indexOf(query) >= 0 || c.text.toLowerCase().indexOf(query) >= 0);
      });
      matches = starts.concat(contains);
      active = 0;
      if (!matches.length) {
        closePicker();
        setHint(state.canned.length ? "No canned response matches /" + typed[1] + "." : "Your team has no canned responses yet.");
        return;
      }
      showPicker();
      setHint(matches.length + (matches.length === 1 ? " canned response" : " canned responses") + ": ↑ ↓ to choose, Enter to insert, Esc to close.");
    }

    function insert(index) {
      var canned = matches[index];
      if (!canned) return;
      box.value = canned.text;
      closePicker();
      setHint("");
      box.focus();
      box.setSelectionRange(box.value.length, box.value.length);
    }

    var form = el("form", { class: "composer", onsubmit: function (event) {
      event.preventDefault();
      var text = box.value.trim();
      if (!text) return;
      var shortcut = SHORTCUT.exec(text);
      if (!isNote.checked && shortcut && !state.canned.some(function (c) { return c.shortcut === shortcut[1]; })) {
        // Refused here as the server would: an unknown shortcut is never sent to the visitor.
        setHint("No canned response /" + shortcut[1] + "; type / to see them.", true);
        box.focus();
        return;
      }
      var ref = send({ type: isNote.checked ? "note" : "reply", conversation: summary.id, text: text });
      if (!ref) { setHint("Not connected: your message is still here; send it again once connected.", true); return; }
      state.pending[ref] = text;
      box.value = "";
      closePicker();
      setHint("");
      send({ type: "typing", conversation: summary.id, on: false });
    } }, [
      el("div", { class: "composer__field" }, [box, picker]),
      hint,
      el("div", { class: "composer__row" }, [
        el("label", { class: "composer__label" }, [isNote, " Private note (never sent to the visitor)"]),
        sendButton
      ])
    ]);

    var typingOn = false, typingTimer = null;
    box.addEventListener("input", function () {
      if (hint.className.indexOf("--error") >= 0) setHint("");
      filter();
      if (!typingOn) { send({ type: "typing", conversation: summary.id, on: true }); typingOn = true; }
      clearTimeout(typingTimer);
      typingTimer = setTimeout(function () { send({ type: "typing", conversation: summary.id, on: false }); typingOn = false; }, 1500);
    });
    box.addEventListener("keydown", function (event) {
      if (!picker.hidden && matches.length) {
        if (event.key === "ArrowDown" || event.key === "ArrowUp") {
          event.preventDefault();
          active = (active + (event.key === "ArrowDown" ? 1 : matches.length - 1)) % matches.length;
          showPicker();
          return;
        }
        if (event.key === "Enter" || event.key === "Tab") { event.preventDefault(); insert(active); return; }
        if (event.key === "Escape") { event.preventDefault(); closePicker(); setHint(""); return; }
      }
      if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
    });
    box.addEventListener("blur", function () { setTimeout(closePicker, 150); });
    return form;
  }

  function toggleContact(open) {
    var aside = $("contact");
    var now = open === undefined ? !aside.classList.contains("contact-card--open") : open;
    aside.classList.toggle("contact-card--open", now);
    if ($("contact-toggle")) $("contact-toggle").setAttribute("aria-expanded", String(now));
  }

  function renderContact(contact, name) {
    var aside = $("contact");
    aside.textContent = "";
    // Where the panel lies over the pane (a narrow window), it closes from within.
    aside.appendChild(el("button", { type: "button", class: "contact-card__close", text: "Close contact details", onclick: function () {
      toggleContact(false);
      // Back to what opened it, or to the Actions it is folded under (a phone).
      var opener = $("contact-toggle");
      if (opener && !opener.offsetParent) opener = $("actions-toggle");
      if (opener) opener.focus();
    } }));
    aside.appendChild(el("h2", { class: "contact-card__name", text: name }));
    var list = el("dl", { class: "contact-card__details" });
    function pair(term, value) {
      list.appendChild(el("dt", { class: "contact-card__term", text: term }));
      list.appendChild(el("dd", { class: "contact-card__value", text: value }));
    }
    if (contact.email) pair("Email", contact.email);
    if (contact.phone) pair("Phone", contact.phone);
    if (contact.channel) pair("Channel", contact.channel);
    if (contact.language) pair("Language", contact.language);
    if (contact.first_seen) pair("First seen", day(contact.first_seen));
    if (typeof contact.previous_conversations === "number") pair("Previous conversations", String(contact.previous_conversations));
    Object.keys(contact.attributes || {}).forEach(function (key) { pair(key, String(contact.attributes[key])); });
    aside.appendChild(list);
    if (contact.leads && contact.leads.length) {
      aside.appendChild(el("h3", { class: "contact-card__heading", text: "Leads" }));
      var leads = el("ul", { class: "contact-card__leads" });
      contact.leads.forEach(function (lead) {
        // Its status, then each field on a line of its own ("Email: ana@example.com"), a
        // long address broken where it must be (one line of "k=v, k=v" ran off the card).
        var item = el("li", { class: "contact-card__lead" }, [el("span", { class: "contact-card__lead-status", text: fieldLabel(lead.status) + " lead" })]);
        Object.keys(lead.fields).forEach(function (key) {
          item.appendChild(el("span", { class: "contact-card__lead-field", text: fieldLabel(key) + ": " + lead.fields[key] }));
        });
        leads.appendChild(item);
      });
      aside.appendChild(leads);
    }
  }

  // --- The agent's name --------------------------------------------------------------------------
  function renderMe() {
    $("me-name").textContent = state.me.name;
    $("name-prompt").hidden = Boolean(state.me.first_name);
  }

  function openSettings(focusName) {
    var panel = $("settings");
    panel.hidden = false;
    $("settings-toggle").setAttribute("aria-expanded", "true");
    if (!$("first-name").value) $("first-name").value = state.me ? state.me.first_name : "";
    if (!$("last-name").value) $("last-name").value = state.me ? state.me.last_name : "";
    renderAlertSettings();
    (focusName ? $("first-name") : $("settings-title")).focus();
  }

  function closeSettings() {
    $("settings").hidden = true;
    $("settings-toggle").setAttribute("aria-expanded", "false");
    $("settings-toggle").focus();
  }

  // --- Errors: shown where the agent acted; the status line is about the connection only -------
  function showError(frame) {
    if (frame.action === "profile") {
      $("name-error").textContent = frame.message;
      $("name-saved").textContent = "";
      $("first-name").setAttribute("aria-invalid", "true");
      $(frame.fields && frame.fields.last_name ? "last-name" : "first-name").focus();
      return;
    }
    var draft = frame.ref ? state.pending[frame.ref] : undefined;
    if (draft !== undefined) delete state.pending[frame.ref];
    if ((frame.action === "reply" || frame.action === "note") && $("composer-hint")) {
      if (draft !== undefined && $("reply") && !$("reply").value) $("reply").value = draft;
      var hint = $("composer-hint");
      hint.textContent = frame.message;
      hint.className = "composer__hint composer__hint--error";
      return;
    }
    var where = $("conversation-alert") || $("console-alert");
    where.textContent = frame.message;
  }

  function clearErrors() {
    if ($("conversation-alert")) $("conversation-alert").textContent = "";
    $("console-alert").textContent = "";
  }

  function setConnection(text, offline) {
    var status = $("connection");
    status.textContent = text;
    status.className = "topbar__connection" + (offline ? " topbar__connection--offline" : "");
  }

  // --- Socket ------------------------------------------------------------------------------
  function updatePreview(message) {
    var summary = state.items[message.conversation];
    if (!summary) return null;
    summary.last_message = { text: message.text || "(" + message.kind + ")", sender: message.sender, created_at: message.created_at };
    summary.last_message_at = message.created_at;
    if (message.sender === "agent") summary.waiting_since = null;
    else if (message.sender === "contact" && !summary.waiting_since) summary.waiting_since = message.created_at;
    return summary;
  }

  function handle(frame) {
    switch (frame.type) {
      case "hello":
        state.me = frame.me; state.teams = frame.teams; state.canned = frame.canned;
        state.items = {}; state.agents = {};
        VIEWS.forEach(function (view) { frame.views[view].forEach(function (s) { state.items[s.id] = s; }); });
        frame.agents.forEach(function (a) { state.agents[a.id] = a; });
        $("presence").value = frame.me.presence;
        setConnection("Connected");
        renderMe();
        renderLists();
        renderAlertSettings();
        if (state.open) openConversation(state.open);
        break;
      case "conversation":
        renderConversation(frame);
        break;
      case "conversation.changed":
        track(frame.conversation);
        if (state.open === frame.conversation.id) openConversation(frame.conversation.id);
        break;
      case "activity":
        var summary = updatePreview(frame.conversation.message);
        if (!summary) break;
        if (state.open === summary.id && document.visibilityState !== "hidden") send({ type: "seen", conversation: summary.id });
        else summary.unread = (summary.unread || 0) + 1;
        renderLists();
        break;
      case "message":
        if (frame.message.conversation === state.open && !document.querySelector('#timeline [data-id="' + frame.message.id + '"]')) {
          appendToTimeline(messageNode(frame.message), frame.message.created_at);
        }
        if (frame.message.sender !== "contact" && updatePreview(frame.message)) renderLists();
        break;
      case "note":
        if (frame.note.conversation === state.open && !document.querySelector('#timeline [data-note="' + frame.note.id + '"]')) {
          appendToTimeline(noteNode(frame.note), frame.note.created_at);
        }
        break;
      case "status":
        var node = document.querySelector('#timeline [data-id="' + frame.id + '"] .bubble__meta');
        if (node) node.textContent = node.textContent.split(" · ")[0] + " · " + frame.status;
        break;
      case "read":
        (frame.ids || []).forEach(function (id) { handle({ type: "status", id: id, status: "read" }); });
        break;
      case "typing":
        var typing = $("typing");
        if (typing) typing.textContent = frame.on ? (frame.sender === "contact" ? "Visitor" : frame.sender === "bot" ? "Bot" : "An agent") + " is typing…" : "";
        break;
      case "presence":
        state.agents[frame.agent.id] = frame.agent;
        if (state.me && frame.agent.id === state.me.id) $("presence").value = frame.agent.presence;
        renderAgents();
        break;
      case "ack":
        delete state.pending[frame.ref];
        if (state.taking[frame.ref]) {
          var taken = state.taking[frame.ref];
          delete state.taking[frame.ref];
          if (state.items[taken] && !isMine(state.items[taken])) {
            // The change may come after the ack: it is ours now whatever the order.
            state.items[taken].status = "assigned";
            state.items[taken].agent = { id: state.me.id, name: state.me.name };
          }
          if (state.view !== "mine") chooseView("mine", false);
          if (state.open !== taken) openConversation(taken);
        }
        if (frame.action !== "seen") clearErrors();
        if (frame.action === "profile") {
          state.me = frame.me;
          renderMe();
          $("name-error").textContent = "";
          $("first-name").removeAttribute("aria-invalid");
          $("name-saved").textContent = "Saved.";
        }
        break;
      case "error":
        if (frame.ref) delete state.taking[frame.ref];
        showError(frame);
        break;
    }
  }

  function connect() {
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/agent/";
    var socket = new WebSocket(url);
    state.socket = socket;
    socket.onmessage = function (event) { handle(JSON.parse(event.data)); };
    socket.onopen = function () {
      state.attempts = 0;
      clearInterval(state.heartbeat);
      state.heartbeat = setInterval(function () { send({ type: "heartbeat" }); }, 20000);
    };
    socket.onclose = function () {
      clearInterval(state.heartbeat);
      if (state.socket !== socket) return;
      setConnection("Reconnecting…", true);
      var delay = Math.min(30000, 500 * Math.pow(2, state.attempts)) * (0.5 + Math.random() / 2);
      state.attempts += 1;
      setTimeout(connect, delay);
    };
  }

  // --- Controls ------------------------------------------------------------------------------
  state.view = VIEWS.indexOf(state.prefs.view) >= 0 ? state.prefs.view : "mine";
  VIEWS.forEach(function (view, index) {
    var tab = $("tab-" + view);
    tab.addEventListener("click", function () { chooseView(view, false); });
    tab.addEventListener("keydown", function (event) {
      var step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: VIEWS.length - 1, ArrowUp: VIEWS.length - 1 }[event.key];
      if (step) { event.preventDefault(); chooseView(VIEWS[(index + step) % VIEWS.length], true); }
      if (event.key === "Home") { event.preventDefault(); chooseView(VIEWS[0], true); }
      if (event.key === "End") { event.preventDefault(); chooseView(VIEWS[VIEWS.length - 1], true); }
    });
  });
  $("presence").addEventListener("change", function (event) { send({ type: "presence", presence: event.target.value }); });
  $("settings-toggle").addEventListener("click", function () { if ($("settings").hidden) openSettings(false); else closeSettings(); });
  $("settings-close").addEventListener("click", closeSettings);
  $("settings").addEventListener("keydown", function (event) { if (event.key === "Escape") closeSettings(); });
  $("name-prompt-open").addEventListener("click", function () { openSettings(true); });
  $("name-form").addEventListener("submit", function (event) {
    event.preventDefault();
    $("name-saved").textContent = "";
    if (!$("first-name").value.trim()) {
      showError({ action: "profile", message: "Tell us the name visitors will see." });
      return;
    }
    send({ type: "profile", first_name: $("first-name").value, last_name: $("last-name").value });
  });
  [["alert-badge", "badge"], ["alert-sound", "sound"], ["alert-notify", "notify"]].forEach(function (pair) {
    $(pair[0]).addEventListener("change", function (event) {
      state.prefs[pair[1]] = event.target.checked;
      savePrefs();
      if (pair[1] === "notify" && event.target.checked) askNotificationPermission();
      renderAlertSettings();
      renderTitle();
    });
  });
  $("notify-allow").addEventListener("click", askNotificationPermission);
  $("notify-dismiss").addEventListener("click", function () {
    state.prefs.notify = false;
    savePrefs();
    renderAlertSettings();
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && state.open && state.items[state.open] && state.items[state.open].unread) {
      state.items[state.open].unread = 0;
      send({ type: "seen", conversation: state.open });
      renderLists();
    }
  });
  // A tap elsewhere folds the conversation's actions away, as a menu does.
  document.addEventListener("click", function (event) {
    if (state.actionsOpen && !event.target.closest(".pane__controls")) showActions(false);
  });
  setInterval(tickWaits, 20000);
  renderAlertSettings();
  connect();
})();
