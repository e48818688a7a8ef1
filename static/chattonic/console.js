/* Chat-Tonic agent console: live over /ws/agent/, no framework. */
(function () {
  "use strict";

  var state = {
    socket: null, attempts: 0, me: null, queue: {}, mine: {}, agents: {}, teams: [], canned: [],
    open: null, openDetail: null, seen: {}, refs: 0, heartbeat: null
  };
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") node.textContent = attrs[name];
      else if (name.slice(0, 2) === "on") node.addEventListener(name.slice(2), attrs[name]);
      else if (attrs[name] !== null && attrs[name] !== undefined) node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function clock(iso) {
    try { return new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" }).format(new Date(iso)); }
    catch (e) { return ""; }
  }

  function send(frame) {
    if (state.socket && state.socket.readyState === 1) {
      frame.ref = String(++state.refs);
      state.socket.send(JSON.stringify(frame));
      return frame.ref;
    }
    return null;
  }

  // --- Lists ---------------------------------------------------------------------------------
  function summaryItem(summary) {
    var label = summary.contact.name + " · " + summary.bot + (summary.team ? " · " + summary.team : "");
    var item = el("li", { "data-conversation": String(summary.id) }, [
      el("button", {
        type: "button", class: "item" + (state.open === summary.id ? " active" : ""),
        onclick: function () { openConversation(summary.id); }
      }, [
        el("span", { class: "who", text: label }),
        el("span", { class: "meta", text: (summary.reason ? summary.reason.replace("_", " ") + " · " : "") + clock(summary.queued_at || summary.last_message_at) })
      ])
    ]);
    if (state.seen[summary.id] === false) item.classList.add("unread");
    return item;
  }

  function renderLists() {
    var queue = $("queue"), mine = $("mine"), agents = $("agents");
    queue.textContent = ""; mine.textContent = ""; agents.textContent = "";
    var queued = Object.keys(state.queue).map(function (id) { return state.queue[id]; })
      .sort(function (a, b) { return (a.queued_at || "").localeCompare(b.queued_at || ""); });
    queued.forEach(function (summary) { queue.appendChild(summaryItem(summary)); });
    $("queue-count").textContent = String(queued.length);
    Object.keys(state.mine).forEach(function (id) { mine.appendChild(summaryItem(state.mine[id])); });
    Object.keys(state.agents).forEach(function (id) {
      var agent = state.agents[id];
      agents.appendChild(el("li", { class: "agent " + agent.presence, "data-agent": id, text: agent.name + " — " + agent.presence }));
    });
  }

  function track(summary) {
    delete state.queue[summary.id];
    delete state.mine[summary.id];
    if (summary.status === "queued") state.queue[summary.id] = summary;
    if (summary.status === "assigned" && summary.agent && state.me && summary.agent.id === state.me.id) state.mine[summary.id] = summary;
    renderLists();
  }

  // --- The conversation view -----------------------------------------------------------------
  function openConversation(id) {
    state.seen[id] = true;
    send({ type: "open", conversation: id });
  }

  function messageNode(message) {
    var who = message.sender === "agent" ? (message.agent || "Agent") : message.sender === "contact" ? "Visitor" : message.sender === "bot" ? "Bot" : "System";
    return el("li", { class: "msg " + message.sender, "data-id": String(message.id) }, [
      el("span", { class: "who", text: who }),
      el("span", { class: "text", text: message.text || "(" + message.kind + ")" }),
      el("span", { class: "meta", text: clock(message.created_at) + (message.direction === "out" ? " · " + message.status : "") })
    ]);
  }

  function noteNode(note) {
    return el("li", { class: "note", "data-note": String(note.id) }, [
      el("span", { class: "who", text: "Private note · " + (note.author || "") }),
      el("span", { class: "text", text: note.text }),
      el("span", { class: "meta", text: clock(note.created_at) })
    ]);
  }

  function appendToTimeline(node, sortKey) {
    var timeline = $("timeline");
    if (!timeline) return;
    node.setAttribute("data-at", sortKey);
    timeline.appendChild(node);
    timeline.scrollTop = timeline.scrollHeight;
  }

  function renderConversation(detail) {
    // A change to the open conversation redraws it: keep what the agent was typing.
    var draft = state.open === detail.conversation.id && $("reply") ? { text: $("reply").value, note: $("as-note").checked, focused: document.activeElement === $("reply") } : null;
    state.open = detail.conversation.id;
    state.openDetail = detail;
    var summary = detail.conversation;
    var main = $("conversation");
    main.textContent = "";
    var actions = el("div", { class: "actions", role: "toolbar", "aria-label": "Conversation actions" });
    var mineNow = summary.status === "assigned" && summary.agent && summary.agent.id === state.me.id;
    if (summary.status === "queued") actions.appendChild(el("button", { type: "button", id: "claim", text: "Claim", onclick: function () { send({ type: "claim", conversation: summary.id }); } }));
    if (summary.status === "bot") actions.appendChild(el("button", { type: "button", id: "take-over", text: "Take over", onclick: function () { send({ type: "take_over", conversation: summary.id }); } }));
    if (summary.status === "queued" || summary.status === "assigned") {
      var target = el("select", { id: "transfer-to", "aria-label": "Transfer to" }, [el("option", { value: "", text: "Transfer to…" })]);
      Object.keys(state.agents).forEach(function (id) { if (Number(id) !== state.me.id) target.appendChild(el("option", { value: "agent:" + id, text: state.agents[id].name })); });
      state.teams.forEach(function (team) { target.appendChild(el("option", { value: "team:" + team.id, text: "Team " + team.name })); });
      actions.appendChild(target);
      actions.appendChild(el("button", { type: "button", id: "transfer", text: "Transfer", onclick: function () {
        var value = target.value.split(":");
        if (value.length !== 2) return;
        var frame = { type: "transfer", conversation: summary.id };
        frame[value[0]] = Number(value[1]);
        send(frame);
      } }));
      var node = el("select", { id: "handback-node", "aria-label": "Resume the bot at" }, [el("option", { value: "", text: "the start" })]);
      detail.nodes.forEach(function (n) { node.appendChild(el("option", { value: n.id, text: n.id + " (" + n.type + ")" })); });
      actions.appendChild(el("label", { text: "Back to bot at " }, [node]));
      actions.appendChild(el("button", { type: "button", id: "hand-back", text: "Hand back to bot", onclick: function () { send({ type: "hand_back", conversation: summary.id, node: node.value || null }); } }));
      actions.appendChild(el("button", { type: "button", id: "resolve", text: "Resolve", onclick: function () { send({ type: "resolve", conversation: summary.id }); } }));
    }
    main.appendChild(el("header", { class: "conversation-head" }, [
      el("h2", { text: summary.contact.name + " — " + summary.bot }),
      el("span", { class: "status", id: "conversation-status", text: summary.status + (summary.agent ? " · " + summary.agent.name : "") }),
      actions
    ]));
    var timeline = el("ol", { id: "timeline", class: "timeline", "aria-label": "Messages" });
    main.appendChild(timeline);
    var items = detail.messages.map(function (m) { return { at: m.created_at, node: messageNode(m) }; })
      .concat(detail.notes.map(function (n) { return { at: n.created_at, node: noteNode(n) }; }))
      .sort(function (a, b) { return a.at.localeCompare(b.at); });
    items.forEach(function (item) { appendToTimeline(item.node, item.at); });
    main.appendChild(el("div", { id: "typing", class: "typing", "aria-live": "polite" }));

    var box = el("textarea", { id: "reply", rows: "3", "aria-label": "Reply", placeholder: mineNow ? "Reply… (type /shortcut for a saved reply)" : "Claim the conversation to reply" });
    var isNote = el("input", { type: "checkbox", id: "as-note" });
    var hint = el("div", { id: "canned-hint", class: "hint", "aria-live": "polite" });
    var form = el("form", { class: "composer", onsubmit: function (event) {
      event.preventDefault();
      var text = box.value.trim();
      if (!text) return;
      send({ type: isNote.checked ? "note" : "reply", conversation: summary.id, text: text });
      box.value = ""; hint.textContent = "";
      send({ type: "typing", conversation: summary.id, on: false });
    } }, [box, hint, el("div", { class: "row" }, [
      el("label", {}, [isNote, document.createTextNode(" Private note (never sent to the visitor)")]),
      el("button", { type: "submit", id: "send", text: "Send" })
    ])]);
    var typingOn = false, typingTimer = null;
    box.addEventListener("input", function () {
      var matches = box.value.charAt(0) === "/" ? state.canned.filter(function (c) { return ("/" + c.shortcut).indexOf(box.value.trim()) === 0; }) : [];
      hint.textContent = matches.map(function (c) { return "/" + c.shortcut + " → " + c.text; }).join("\n");
      if (!typingOn) { send({ type: "typing", conversation: summary.id, on: true }); typingOn = true; }
      clearTimeout(typingTimer);
      typingTimer = setTimeout(function () { send({ type: "typing", conversation: summary.id, on: false }); typingOn = false; }, 1500);
    });
    box.addEventListener("keydown", function (event) { if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); } });
    main.appendChild(form);
    if (draft) { box.value = draft.text; isNote.checked = draft.note; if (draft.focused) box.focus(); }
    renderContact(detail.contact);
    renderLists();
  }

  function renderContact(contact) {
    var aside = $("contact");
    aside.textContent = "";
    aside.appendChild(el("h2", { text: contact.name || contact.email || "Visitor" }));
    var list = el("dl", {});
    [["Email", contact.email], ["Phone", contact.phone]].forEach(function (pair) {
      if (pair[1]) { list.appendChild(el("dt", { text: pair[0] })); list.appendChild(el("dd", { text: pair[1] })); }
    });
    Object.keys(contact.attributes || {}).forEach(function (key) {
      list.appendChild(el("dt", { text: key }));
      list.appendChild(el("dd", { text: String(contact.attributes[key]) }));
    });
    aside.appendChild(list);
    if (contact.leads && contact.leads.length) {
      aside.appendChild(el("h3", { text: "Leads" }));
      var leads = el("ul", {});
      contact.leads.forEach(function (lead) {
        leads.appendChild(el("li", { text: lead.status + ": " + Object.keys(lead.fields).map(function (k) { return k + "=" + lead.fields[k]; }).join(", ") }));
      });
      aside.appendChild(leads);
    }
  }

  function notify(text, kind) {
    var status = $("connection");
    status.textContent = text;
    status.className = kind || "";
  }

  // --- Socket ----------------------------------------------------------------------------
  function handle(frame) {
    switch (frame.type) {
      case "hello":
        state.me = frame.me; state.teams = frame.teams; state.canned = frame.canned;
        state.queue = {}; state.mine = {}; state.agents = {};
        frame.queue.forEach(function (s) { state.queue[s.id] = s; });
        frame.mine.forEach(function (s) { state.mine[s.id] = s; });
        frame.agents.forEach(function (a) { state.agents[a.id] = a; });
        $("presence").value = frame.me.presence;
        notify("Connected");
        renderLists();
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
        if (state.open !== frame.conversation.id) { state.seen[frame.conversation.id] = false; renderLists(); }
        break;
      case "message":
        if (frame.message.conversation === state.open && !document.querySelector('#timeline [data-id="' + frame.message.id + '"]')) {
          appendToTimeline(messageNode(frame.message), frame.message.created_at);
        }
        break;
      case "note":
        if (frame.note.conversation === state.open && !document.querySelector('#timeline [data-note="' + frame.note.id + '"]')) {
          appendToTimeline(noteNode(frame.note), frame.note.created_at);
        }
        break;
      case "status":
        var node = document.querySelector('#timeline [data-id="' + frame.id + '"] .meta');
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
        renderLists();
        break;
      case "error":
        notify(frame.message, "error");
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
      notify("Reconnecting…", "error");
      var delay = Math.min(30000, 500 * Math.pow(2, state.attempts)) * (0.5 + Math.random() / 2);
      state.attempts += 1;
      setTimeout(connect, delay);
    };
  }

  $("presence").addEventListener("change", function (event) { send({ type: "presence", presence: event.target.value }); });
  connect();
})();
