/*
 * The flow editor: the bot's draft definition (docs/flows.md) drawn with Drawflow
 * (static/vendor/drawflow), edited with a palette, links drawn between steps and a form per
 * step. The definition is the one source: Drawflow only shows it, and every gesture changes
 * the definition, which is then checked by the server (the drafts' own rules) and saved
 * through the same service as the API. Step positions go into the definition's "meta.layout"
 * only once the owner moves or adds a step, so a flow opened and saved unchanged is the same.
 */
(function () {
  "use strict";
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", builder);
  else builder();

  function builder() {
  var dataTag = document.getElementById("ct-builder-data");
  if (!dataTag || typeof window.Drawflow === "undefined") return;
  var CONFIG = JSON.parse(dataTag.textContent);
  var CSRF = (document.querySelector("[name=csrfmiddlewaretoken]") || {}).value || "";
  var CAN_EDIT = CONFIG.can_edit;

  // What each kind of step is called: the server's one table (bots.diagram.NODE_LABELS), as
  // the diagram, the "Back to bot" list and the console name them.
  var LABELS = CONFIG.node_labels || {};
  var KINDS = {
    message: { about: "Says something; quick replies wait for a choice.", make: function () { return { type: "message", text: "New message" }; } },
    question: { about: "Asks, checks the answer, keeps it in a variable.", make: function (id) { return { type: "question", text: "Your question?", variable: id.replace(/-/g, "_") }; } },
    condition: { about: "Goes one way or another.", make: function () { return { type: "condition", rules: [{ when: [{ business_hours: true }] }] }; } },
    set: { about: "Sets variables and goes on.", make: function () { return { type: "set", variables: { topic: "" } }; } },
    router: { about: "Goes where the visitor's intent says.", make: function () { return { type: "router", routes: {} }; } },
    http: { about: "Calls your system and keeps fields of its answer.", make: function () { return { type: "http", method: "GET", url: "https://example.com/api" }; } },
    capture_lead: { about: "Records a lead from variables.", make: function () { return { type: "capture_lead", variables: ["email"] }; } },
    handoff: { about: "Hands the chat to a person.", make: function () { return { type: "handoff", reason: "support" }; } },
    end: { about: "Ends the conversation.", make: function () { return { type: "end", text: "Thank you, goodbye!" }; } },
  };
  Object.keys(KINDS).forEach(function (kind) { KINDS[kind].label = LABELS[kind] || kind; });
  var VALIDATIONS = ["text", "email", "phone", "number", "date", "choice", "regex"];
  var OPS = ["eq", "ne", "gt", "gte", "lt", "lte", "contains", "in", "set", "not_set"];
  var METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"];
  var LINK_FIELDS = ["next", "other", "on_max_retries", "else", "fallback", "on_failure"];
  var COL = 340, ROW = 170;

  // --- State -------------------------------------------------------------------------------

  var def = CONFIG.definition;
  var layout = {};           // node id -> [x, y]
  var layoutSaved = false;   // whether meta.layout is part of the definition
  var basedOn = CONFIG.based_on;
  var problems = { errors: [], warnings: [] };
  var selected = null;       // node id in the side panel
  var panelMode = "problems"; // "node" | "intents" | "problems"
  var history = [], historyAt = -1;
  var dirty = false, saving = false, lastSaved = null;
  var silent = 0;            // >0 while the editor redraws: Drawflow's events are ours
  var ids = [];              // Drawflow id - 1 -> node id
  var dfIds = {};            // node id -> Drawflow id
  var current = null;        // the node the test chat is on

  function clone(v) { return JSON.parse(JSON.stringify(v)); }
  function nodes() { return def.nodes || (def.nodes = {}); }
  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "on") Object.keys(attrs.on).forEach(function (t) { node.addEventListener(t, attrs.on[t]); });
      else if (attrs[k] !== null && attrs[k] !== undefined && attrs[k] !== false) node.setAttribute(k, attrs[k] === true ? "" : attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }

  // Dotted paths inside a node: "next", "quick_replies.1.next", "routes.pricing".
  function getPath(obj, path) {
    return path.split(".").reduce(function (o, k) { return o === undefined || o === null ? undefined : o[k]; }, obj);
  }
  function setPath(obj, path, value) {
    var keys = path.split("."), last = keys.pop();
    var o = keys.reduce(function (o, k) { if (o[k] === undefined) o[k] = {}; return o[k]; }, obj);
    o[last] = value;
  }
  function deletePath(obj, path) {
    var keys = path.split("."), last = keys.pop();
    var o = getPath(obj, keys.join(".")) || (keys.length ? undefined : obj);
    if (o && typeof o === "object") delete o[last];
  }

  // --- Outputs: one a way out of a step, labelled -----------------------------------------------

  function intentNames() {
    return (def.intents || []).map(function (i) { return i && i.name; }).filter(Boolean);
  }

  function outputsOf(node) {
    var out = [];
    if (!node || typeof node !== "object") return out;
    var qr = Array.isArray(node.quick_replies) ? node.quick_replies : [];
    switch (node.type) {
      case "message":
        qr.forEach(function (r, i) { out.push({ field: "quick_replies." + i + ".next", label: "“" + ((r && r.title) || "?") + "”" }); });
        out.push({ field: "next", label: qr.length ? "any button" : "then" });
        if (qr.length) out.push({ field: "other", label: "typed text" });
        break;
      case "question":
        out.push({ field: "next", label: "answered" });
        out.push({ field: "on_max_retries", label: "after " + (node.max_retries === undefined ? 2 : node.max_retries) + " retries" });
        break;
      case "condition":
        (Array.isArray(node.rules) ? node.rules : []).forEach(function (r, i) { out.push({ field: "rules." + i + ".next", label: ruleLabel(r) }); });
        out.push({ field: "else", label: "else" });
        break;
      case "router":
        var names = intentNames();
        Object.keys(node.routes || {}).forEach(function (n) { if (names.indexOf(n) < 0) names.push(n); });
        names.forEach(function (n) { out.push({ field: "routes." + n, label: n }); });
        out.push({ field: "fallback", label: "no intent" });
        break;
      case "http":
        out.push({ field: "next", label: "success" });
        out.push({ field: "on_failure", label: "on failure" });
        break;
      case "set": case "capture_lead":
        out.push({ field: "next", label: "then" });
        break;
    }
    return out;
  }

  function checkLabel(c) {
    if (!c || typeof c !== "object") return "?";
    if ("variable" in c) return c.variable + " " + (c.op || "eq") + ("value" in c ? " " + JSON.stringify(c.value) : "");
    if ("intent" in c) return "intent " + (c.intent === null ? "none" : c.intent);
    if ("channel" in c) return "channel " + c.channel;
    if ("business_hours" in c) return c.business_hours ? "open" : "closed";
    return "?";
  }
  function ruleLabel(rule) {
    var when = (rule && Array.isArray(rule.when)) ? rule.when : [];
    return when.map(checkLabel).join(rule && rule.match === "any" ? " or " : " and ") || "rule";
  }

  // --- Drawing -------------------------------------------------------------------------------

  var container = $("ct-canvas");
  var editor = new window.Drawflow(container);
  editor.reroute = false;
  editor.zoom_min = 0.3;
  editor.force_first_input = false;
  editor.start();
  if (!CAN_EDIT) editor.editor_mode = "view";

  function summary(node) {
    if (!node || typeof node !== "object") return "";
    switch (node.type) {
      case "question": return (node.text || "") + " → " + (node.variable || "?") + " (" + (node.validation || "text") + ")";
      case "set": return Object.keys(node.variables || {}).join(", ");
      case "capture_lead": return (node.variables || []).join(", ");
      case "http": return (node.method || "GET") + " " + (node.url || "");
      case "handoff": return (node.team ? node.team + ": " : "") + (node.reason || "");
      case "router": return Object.keys(node.routes || {}).length + " route(s)";
      case "condition": return (node.rules || []).length + " rule(s)";
      default: return node.text || "";
    }
  }

  function nodeHtml(id) {
    var node = nodes()[id];
    var kind = KINDS[node && node.type] || { label: String(node && node.type) };
    var box = el("div", { class: "ct-node", "data-node": id }, [
      el("div", { class: "ct-node-head" }, [
        el("span", { class: "ct-node-kind", text: kind.label }),
        def.start === id ? el("span", { class: "ct-node-start", text: "Start" }) : null,
      ]),
      el("div", { class: "ct-node-id", text: id }),
      el("div", { class: "ct-node-text", text: summary(node).slice(0, 120) }),
      el("ul", { class: "ct-node-problems" }),
    ]);
    return box.outerHTML;
  }

  function autoLayout(all) {
    // Layers by distance from the start (then main, then the rest), in the order of links.
    var order = Object.keys(nodes()), depth = {}, queue = [];
    [def.start, def.main].forEach(function (s) { if (s in nodes() && !(s in depth)) { depth[s] = 0; queue.push(s); } });
    while (queue.length) {
      var id = queue.shift();
      outputsOf(nodes()[id]).forEach(function (o) {
        var t = getPath(nodes()[id], o.field);
        if (typeof t === "string" && t in nodes() && !(t in depth)) { depth[t] = depth[id] + 1; queue.push(t); }
      });
    }
    var maxDepth = 0;
    Object.keys(depth).forEach(function (k) { maxDepth = Math.max(maxDepth, depth[k]); });
    // Layers left to right, wrapped into bands about as wide as the canvas (at 3/4 size).
    var cols = Math.max(2, Math.floor((container.clientWidth / 0.75 - 40) / COL));
    var layerOf = {}, count = {};
    order.forEach(function (id) {
      var d = id in depth ? depth[id] : maxDepth + 1;
      layerOf[id] = d;
      count[d] = (count[d] || 0) + 1;
    });
    var bandTop = {}, top = 40;
    for (var band = 0; band <= Math.floor((maxDepth + 1) / cols); band++) {
      bandTop[band] = top;
      var tallest = 1;
      for (var d = band * cols; d < (band + 1) * cols; d++) tallest = Math.max(tallest, count[d] || 0);
      top += tallest * ROW + 40;
    }
    var placed = {};
    order.forEach(function (id) {
      var d = layerOf[id];
      placed[d] = (placed[d] || 0) + 1;
      if (all || !layout[id]) layout[id] = [40 + (d % cols) * COL, bandTop[Math.floor(d / cols)] + (placed[d] - 1) * ROW];
    });
  }

  function drawflowData() {
    ids = Object.keys(nodes());
    dfIds = {};
    ids.forEach(function (id, i) { dfIds[id] = i + 1; });
    var data = {};
    ids.forEach(function (id, i) {
      var node = nodes()[id], outs = outputsOf(node), outputs = {};
      outs.forEach(function (o, k) {
        var target = getPath(node, o.field);
        outputs["output_" + (k + 1)] = { connections: typeof target === "string" && target in dfIds ? [{ node: String(dfIds[target]), output: "input_1" }] : [] };
      });
      data[i + 1] = {
        id: i + 1, name: node && node.type, data: {}, class: "ct-kind-" + (node && node.type),
        html: nodeHtml(id), typenode: false,
        inputs: { input_1: { connections: [] } }, outputs: outputs,
        pos_x: layout[id][0], pos_y: layout[id][1],
      };
    });
    Object.keys(data).forEach(function (k) {
      var outs = data[k].outputs;
      Object.keys(outs).forEach(function (o) {
        outs[o].connections.forEach(function (c) { data[c.node].inputs.input_1.connections.push({ node: String(k), input: o }); });
      });
    });
    return { drawflow: { Home: { data: data } } };
  }

  function render() {
    autoLayout(false);
    var zoom = editor.zoom, x = editor.canvas_x, y = editor.canvas_y;
    // Drawflow's import places each link by measuring its two ends, a page layout per link
    // (seconds for a few hundred steps); the links are placed below, in one pass, instead.
    var place = editor.updateConnectionNodes;
    silent++;
    editor.updateConnectionNodes = function () {};
    try { editor.import(drawflowData()); } finally { editor.updateConnectionNodes = place; silent--; }
    editor.zoom = zoom; editor.zoom_last_value = zoom; editor.canvas_x = x; editor.canvas_y = y;
    editor.precanvas.style.transform = "translate(" + x + "px, " + y + "px) scale(" + zoom + ")";
    ids.forEach(function (id) {
      var outs = outputsOf(nodes()[id]);
      var box = $("node-" + dfIds[id]);
      outs.forEach(function (o, k) {
        var dot = box.querySelector(".outputs .output_" + (k + 1));
        if (dot) { dot.setAttribute("data-label", o.label); dot.setAttribute("title", o.label); }
      });
    });
    showProblems();
    showCurrent();
    if (selected && dfIds[selected]) $("node-" + dfIds[selected]).classList.add("selected");
    drawMinimap();
  }

  // The minimap: every step as a box, the part in view as a frame; pressing it brings that
  // part of the flow into view.
  var minimap = $("ct-minimap");
  var MINI_W = 180, MINI_H = 120;
  function bounds() {
    var b = { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
    Object.keys(layout).forEach(function (id) {
      if (!(id in nodes())) return;
      b.x0 = Math.min(b.x0, layout[id][0]); b.y0 = Math.min(b.y0, layout[id][1]);
      b.x1 = Math.max(b.x1, layout[id][0] + 220); b.y1 = Math.max(b.y1, layout[id][1] + 110);
    });
    if (b.x0 === Infinity) b = { x0: 0, y0: 0, x1: 1, y1: 1 };
    b.scale = Math.min(MINI_W / (b.x1 - b.x0 + 40), MINI_H / (b.y1 - b.y0 + 40));
    return b;
  }
  function drawMinimap() {
    if (!minimap) return;
    var b = bounds(), parts = [];
    Object.keys(layout).forEach(function (id) {
      if (!(id in nodes())) return;
      var cls = id === current ? "ct-mini-current" : (problemsOf(id).length ? "ct-mini-invalid" : "ct-mini-step");
      parts.push('<rect class="' + cls + '" x="' + ((layout[id][0] - b.x0 + 20) * b.scale).toFixed(1) + '" y="' + ((layout[id][1] - b.y0 + 20) * b.scale).toFixed(1) +
        '" width="' + (220 * b.scale).toFixed(1) + '" height="' + (90 * b.scale).toFixed(1) + '"></rect>');
    });
    // The canvas shows precanvas points from -canvas_x/zoom to (width - canvas_x)/zoom.
    var z = editor.zoom, w = container.clientWidth, h = container.clientHeight;
    var vx = (-editor.canvas_x - w * (1 - z) / 2) / z, vy = (-editor.canvas_y - h * (1 - z) / 2) / z;
    parts.push('<rect class="ct-mini-view" x="' + ((vx - b.x0 + 20) * b.scale).toFixed(1) + '" y="' + ((vy - b.y0 + 20) * b.scale).toFixed(1) +
      '" width="' + (w / z * b.scale).toFixed(1) + '" height="' + (h / z * b.scale).toFixed(1) + '"></rect>');
    minimap.querySelector("svg").innerHTML = parts.join("");
  }
  function panTo(px, py) {
    // Centre the canvas on the precanvas point (px, py).
    var z = editor.zoom, w = container.clientWidth, h = container.clientHeight;
    editor.canvas_x = -(px * z - w / 2) - w * (1 - z) / 2;
    editor.canvas_y = -(py * z - h / 2) - h * (1 - z) / 2;
    editor.precanvas.style.transform = "translate(" + editor.canvas_x + "px, " + editor.canvas_y + "px) scale(" + z + ")";
    drawMinimap();
  }
  if (minimap) minimap.addEventListener("click", function (e) {
    var r = minimap.querySelector("svg").getBoundingClientRect(), b = bounds();
    panTo((e.clientX - r.x) / b.scale + b.x0 - 20, (e.clientY - r.y) / b.scale + b.y0 - 20);
  });
  editor.on("translate", function () { drawMinimap(); });
  editor.on("zoom", function () { drawMinimap(); });

  // Every link's curve from the centres of its two dots: all measured first (one layout),
  // then all drawn, as Drawflow's updateConnectionNodes draws one.
  function placeLinks() {
    var pre = editor.precanvas.getBoundingClientRect(), z = editor.zoom, centres = {};
    Array.prototype.forEach.call(editor.precanvas.querySelectorAll(".drawflow-node"), function (box) {
      Array.prototype.forEach.call(box.querySelectorAll(".input, .output"), function (dot) {
        var r = dot.getBoundingClientRect();
        centres[box.id + " " + dot.classList[1]] = [(r.x - pre.x) / z + r.width / z / 2, (r.y - pre.y) / z + r.height / z / 2];
      });
    });
    Array.prototype.forEach.call(editor.precanvas.querySelectorAll("svg.connection"), function (svg) {
      var c = svg.classList;  // connection node_in_node-<in> node_out_node-<out> output_<k> input_1
      if (c.length < 5) return;  // a link still being dragged: only "connection" so far
      var from = centres[c[2].slice(9) + " " + c[3]], to = centres[c[1].slice(8) + " " + c[4]];
      if (!from || !to) return;
      svg.querySelector(".main-path").setAttributeNS(null, "d", editor.createCurvature(from[0], from[1], to[0], to[1], editor.curvature, "openclose"));
    });
  }

  // Zoom so that the whole flow shows, down to 0.6 (still readable; a bigger flow opens on
  // its start, to pan from, and "Zoom out" goes to 0.3).
  function fit() {
    autoLayout(false);
    var w = 0, h = 0;
    Object.keys(layout).forEach(function (id) { w = Math.max(w, layout[id][0] + 260); h = Math.max(h, layout[id][1] + 160); });
    var zoom = Math.min(1, container.clientWidth / (w || 1), container.clientHeight / (h || 1));
    editor.zoom = Math.max(0.6, Math.round(zoom * 100) / 100);
    editor.zoom_last_value = editor.zoom;
    editor.canvas_x = -(container.clientWidth * (1 - editor.zoom)) / 2;
    editor.canvas_y = -(container.clientHeight * (1 - editor.zoom)) / 2;
  }

  function redrawNode(id) {
    var box = dfIds[id] && $("node-" + dfIds[id]);
    if (!box) return;
    var content = box.querySelector(".drawflow_content_node");
    content.innerHTML = nodeHtml(id);
    editor.drawflow.drawflow.Home.data[dfIds[id]].html = content.innerHTML;
    showProblems();
  }

  // --- Changes, history ----------------------------------------------------------------------

  function snapshot() {
    return JSON.stringify({ def: def, layout: layout, layoutSaved: layoutSaved });
  }
  function restore(text) {
    var s = JSON.parse(text);
    def = s.def; layout = s.layout; layoutSaved = s.layoutSaved;
    if (selected && !(selected in nodes())) selected = null;
    render();
    showPanel();
  }
  function remember() {
    history = history.slice(0, historyAt + 1);
    history.push(snapshot());
    if (history.length > 200) history.shift();
    historyAt = history.length - 1;
    updateHistoryButtons();
  }
  function updateHistoryButtons() {
    $("ct-undo").disabled = historyAt <= 0;
    $("ct-redo").disabled = historyAt >= history.length - 1;
  }
  function undo() {
    if (historyAt <= 0) return;
    historyAt--; restore(history[historyAt]); updateHistoryButtons(); changed(false);
  }
  function redo() {
    if (historyAt >= history.length - 1) return;
    historyAt++; restore(history[historyAt]); updateHistoryButtons(); changed(false);
  }

  // A change is made: remember it (unless it came from undo/redo), check it and save it.
  var checkTimer = null;
  // Every edit counts: a save that ends after a later edit does not say "Saved".
  var edits = 0;
  function changed(record) {
    if (record !== false) remember();
    dirty = true;
    edits++;
    setStatus("Checking…");
    clearTimeout(checkTimer);
    checkTimer = setTimeout(function () { checkAndSave(false); }, 400);
  }

  // Typing in the side panel: the definition changes at once, history once typing pauses.
  var typingTimer = null;
  function typed(structural) {
    edits++;
    dirty = true;  // typing not checked yet is unsaved too
    if (structural) render(); else if (selected) redrawNode(selected);
    clearTimeout(typingTimer);
    typingTimer = setTimeout(function () { changed(); }, 350);
  }

  function serialise() {
    var out = clone(def);
    if (layoutSaved) {
      out.meta = out.meta && typeof out.meta === "object" ? out.meta : {};
      var saved = {};
      Object.keys(out.nodes || {}).forEach(function (id) { if (layout[id]) saved[id] = [Math.round(layout[id][0]), Math.round(layout[id][1])]; });
      out.meta.layout = saved;
    }
    return out;
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": CSRF },
      body: JSON.stringify(body),
    }).then(function (r) { return r.json().then(function (j) { return { status: r.status, body: j }; }); });
  }

  function setStatus(text, kind) {
    var s = $("ct-save-status");
    s.textContent = text;
    s.className = kind ? "ct-status-" + kind : "";
  }

  // One check-and-save at a time, in order: each save names the draft the previous one made.
  var queue = Promise.resolve();
  function checkAndSave(force) {
    queue = queue.then(function () { return checkAndSaveNow(force); });
    return queue;
  }
  function checkAndSaveNow(force) {
    var definition = serialise();
    var text = JSON.stringify(definition);
    var asOf = edits;
    function saved() { if (asOf === edits) setStatus("Saved", "ok"); }
    var run = post(CONFIG.check_url, { definition: definition }).then(function (r) {
      if (r.status !== 200) throw new Error((r.body.error || {}).message || "The check failed.");
      var before = JSON.stringify(problems);
      problems = r.body;
      showProblems();
      if (JSON.stringify(problems) !== before) showPanel();
      var n = problems.errors.length;
      if (n) { setStatus("Not saved: " + n + " problem" + (n > 1 ? "s" : "") + " to fix.", "error"); return; }
      if (!CAN_EDIT) { setStatus(""); return; }
      if (!force && text === lastSaved) { dirty = false; saved(); return; }
      setStatus("Saving…");
      saving = true;
      return post(CONFIG.draft_url, { definition: definition, based_on: basedOn }).then(function (s) {
        saving = false;
        if (s.status === 200) {
          basedOn = s.body.based_on; lastSaved = text;
          if (JSON.stringify(serialise()) === text) dirty = false;
          saved();
        } else {
          setStatus("Not saved: " + ((s.body.error || {}).message || "the server refused it."), "error");
        }
      });
    }).catch(function (e) { saving = false; setStatus("Not saved: " + e.message, "error"); });
    return run;
  }

  // --- Problems on the canvas ----------------------------------------------------------------

  function problemsOf(id) {
    return problems.errors.filter(function (e) { return e.node === id; });
  }

  // A step with ways out and none of them linked: the conversation stops there, idle.
  function deadEnd(node) {
    var outs = outputsOf(node);
    return outs.length > 0 && outs.every(function (o) { return typeof getPath(node, o.field) !== "string"; });
  }

  function showProblems() {
    ids.forEach(function (id) {
      var box = dfIds[id] && $("node-" + dfIds[id]);
      if (!box) return;
      var list = box.querySelector(".ct-node-problems");
      var mine = problemsOf(id);
      var warned = problems.warnings.filter(function (w) { return w.node === id; });
      if (deadEnd(nodes()[id])) warned = warned.concat([{ node: id, field: "", message: "A dead end: the flow stops here (the next message goes to the main step)." }]);
      box.classList.toggle("ct-invalid", mine.length > 0);
      box.classList.toggle("ct-warned", warned.length > 0);
      box.classList.toggle("ct-dead-end", deadEnd(nodes()[id]));
      if (!list) return;
      list.innerHTML = "";
      mine.forEach(function (e) { list.appendChild(el("li", { class: "ct-error", text: (e.field ? e.field + ": " : "") + e.message })); });
      warned.forEach(function (w) { list.appendChild(el("li", { class: "ct-warning", text: w.message })); });
    });
    placeLinks();  // a step's problems change its height, and where its dots are
  }

  // --- Gestures on the canvas ----------------------------------------------------------------

  editor.on("connectionCreated", function (c) {
    if (silent) return;
    var from = ids[c.output_id - 1], to = ids[c.input_id - 1];
    var k = parseInt(c.output_class.replace("output_", ""), 10) - 1;
    var out = outputsOf(nodes()[from])[k];
    if (!out || !to) return;
    setPath(nodes()[from], out.field, to);
    render();   // one target a way out: the old link goes
    changed();
  });

  editor.on("connectionRemoved", function (c) {
    if (silent) return;
    var from = ids[c.output_id - 1];
    var k = parseInt(c.output_class.replace("output_", ""), 10) - 1;
    var node = nodes()[from], out = outputsOf(node)[k];
    if (!out || !node) return;
    deletePath(node, out.field);
    if (!removing) { render(); changed(); }
  });

  var removing = false;
  editor.on("nodeRemoved", function (dfId) {
    if (silent) return;
    var id = ids[parseInt(dfId, 10) - 1];
    if (id) removeNode(id);
  });

  editor.on("nodeMoved", function (dfId) {
    if (silent) return;
    var id = ids[parseInt(dfId, 10) - 1];
    var n = editor.getNodeFromId(dfId);
    if (!id || !n) return;
    if (layout[id] && layout[id][0] === n.pos_x && layout[id][1] === n.pos_y) return;
    layout[id] = [n.pos_x, n.pos_y];
    layoutSaved = true;
    drawMinimap();
    changed();
  });

  editor.on("nodeSelected", function (dfId) {
    if (silent) return;
    selected = ids[parseInt(dfId, 10) - 1] || null;
    panelMode = "node";
    showPanel();
  });

  function newId(kind) {
    var n = 1;
    while ((kind + "_" + n) in nodes()) n++;
    return kind + "_" + n;
  }

  function addNode(kind, x, y) {
    var id = newId(kind);
    nodes()[id] = KINDS[kind].make(id);
    layout[id] = [Math.round(x), Math.round(y)];
    layoutSaved = true;
    selected = id;
    panelMode = "node";
    render();
    showPanel();
    changed();
    return id;
  }

  function removeNode(id) {
    removing = true;
    delete nodes()[id];
    delete layout[id];
    Object.keys(nodes()).forEach(function (other) {
      var node = nodes()[other];
      outputsOf(node).forEach(function (o) { if (getPath(node, o.field) === id) deletePath(node, o.field); });
    });
    removing = false;
    if (selected === id) { selected = null; panelMode = "problems"; }
    render();
    showPanel();
    changed();
  }

  function renameNode(from, to) {
    var renamed = {};
    Object.keys(nodes()).forEach(function (k) { renamed[k === from ? to : k] = nodes()[k]; });
    def.nodes = renamed;
    Object.keys(renamed).forEach(function (k) {
      var node = renamed[k];
      LINK_FIELDS.concat(outputsOf(node).map(function (o) { return o.field; })).forEach(function (f) {
        if (getPath(node, f) === from) setPath(node, f, to);
      });
    });
    ["start", "main"].forEach(function (k) { if (def[k] === from) def[k] = to; });
    Object.keys(def.global_intents || {}).forEach(function (k) { if (def.global_intents[k] === from) def.global_intents[k] = to; });
    layout[to] = layout[from]; delete layout[from];
    selected = to;
  }

  // Where a pressed kind goes: the view's centre, or the nearest place there that no step
  // covers (it was put over the step in the middle), else under the lowest step.
  var NEW_W = 220, NEW_H = 130, GAP = 24, STEP = 40;
  function freeSpot(p) {
    var boxes = ids.map(function (id) {
      var box = dfIds[id] && $("node-" + dfIds[id]), at = layout[id];
      return box && at ? [at[0], at[1], box.offsetWidth, box.offsetHeight] : null;
    }).filter(Boolean);
    function clear(x, y) {
      return boxes.every(function (b) {
        return x + NEW_W + GAP <= b[0] || b[0] + b[2] + GAP <= x || y + NEW_H + GAP <= b[1] || b[1] + b[3] + GAP <= y;
      });
    }
    for (var k = 0; k <= 12; k++) {
      var tries = [[0, k], [k, 0], [-k, 0], [0, -k], [k, k], [-k, k]];
      for (var t = 0; t < tries.length; t++) {
        var x = p[0] + tries[t][0] * STEP, y = p[1] + tries[t][1] * STEP;
        if (clear(x, y)) return [x, y];
      }
    }
    var lowest = boxes.reduce(function (m, b) { return Math.max(m, b[1] + b[3]); }, p[1]);
    return [p[0], lowest + GAP];
  }
  function inView(p) {
    var r = container.getBoundingClientRect(), pre = editor.precanvas.getBoundingClientRect(), z = editor.zoom;
    var left = pre.x + p[0] * z, top = pre.y + p[1] * z;
    return left >= r.x && top >= r.y && left + NEW_W * z <= r.right && top + NEW_H * z <= r.bottom;
  }

  // The palette: drag a kind onto the canvas (or press it: added in view).
  function canvasPoint(clientX, clientY) {
    var rect = editor.precanvas.getBoundingClientRect();
    return [(clientX - rect.x) / editor.zoom, (clientY - rect.y) / editor.zoom];
  }
  var list = $("ct-palette-list");
  Object.keys(KINDS).forEach(function (kind) {
    var button = el("button", {
      type: "button", class: "ct-palette-item", draggable: CAN_EDIT ? "true" : "false", "data-kind": kind,
      "aria-describedby": "ct-kind-" + kind, disabled: !CAN_EDIT,
      on: {
        dragstart: function (e) { e.dataTransfer.setData("text/x-ct-kind", kind); e.dataTransfer.effectAllowed = "copy"; },
        click: function () {
          var r = container.getBoundingClientRect();
          var p = freeSpot(canvasPoint(r.x + r.width / 2 - 100, r.y + r.height / 2 - 50));
          addNode(kind, p[0], p[1]);
          if (!inView(p)) panTo(p[0] + 100, p[1] + 50);
        },
      },
    }, [KINDS[kind].label]);
    list.appendChild(el("li", {}, [button, el("span", { class: "ct-palette-about", id: "ct-kind-" + kind, text: KINDS[kind].about })]));
  });
  container.addEventListener("dragover", function (e) { e.preventDefault(); e.dataTransfer.dropEffect = "copy"; });
  container.addEventListener("drop", function (e) {
    var kind = e.dataTransfer.getData("text/x-ct-kind");
    if (!kind || !KINDS[kind] || !CAN_EDIT) return;
    e.preventDefault();
    var p = canvasPoint(e.clientX, e.clientY);
    addNode(kind, p[0] - 20, p[1] - 20);
  });

  // --- The side panel: a form per kind of step -------------------------------------------------

  var panelTitle = $("ct-panel-title"), panelBody = $("ct-panel-body");
  var uid = 0;

  function fieldErrors(field) {
    if (!selected) return [];
    return problemsOf(selected).filter(function (e) { return e.field === field; });
  }

  function control(label, field, input, help) {
    var id = "ct-f-" + (++uid);
    input.id = id;
    input.setAttribute("data-field", field);
    var errs = fieldErrors(field);
    var described = [];
    var children = [el("label", { for: id, text: label }), input];
    if (help) { described.push(id + "-help"); children.push(el("div", { class: "help", id: id + "-help", text: help })); }
    if (errs.length) {
      input.setAttribute("aria-invalid", "true");
      described.push(id + "-err");
      children.push(el("ul", { class: "errorlist", id: id + "-err" }, errs.map(function (e) { return el("li", { text: e.message }); })));
    }
    if (described.length) input.setAttribute("aria-describedby", described.join(" "));
    if (!CAN_EDIT) input.disabled = true;
    return el("div", { class: "ct-field" + (errs.length ? " ct-field-invalid" : "") }, children);
  }

  function node() { return nodes()[selected]; }

  function textInput(label, field, opts) {
    opts = opts || {};
    var value = getPath(node(), field);
    var input = el(opts.multiline ? "textarea" : "input", opts.multiline ? { rows: opts.rows || 3 } : { type: opts.type || "text" });
    if (opts.list) value = Array.isArray(value) ? value.join(opts.list === "lines" ? "\n" : ", ") : "";
    if (opts.json) value = value === undefined ? "" : JSON.stringify(value, null, 2);
    input.value = value === undefined || value === null ? "" : String(value);
    input.addEventListener("input", function () {
      var raw = input.value, v = raw;
      if (opts.list) v = raw.split(opts.list === "lines" ? "\n" : ",").map(function (s) { return s.trim(); }).filter(Boolean);
      else if (opts.type === "number") v = raw === "" ? undefined : Number(raw);
      else if (opts.json) { try { v = raw.trim() === "" ? undefined : JSON.parse(raw); } catch (e) { return; } }
      if (v === undefined || (v === "" && opts.optional)) deletePath(node(), field); else setPath(node(), field, v);
      typed(opts.structural);
    });
    return control(label, field, input, opts.help);
  }

  function selectInput(label, field, choices, opts) {
    opts = opts || {};
    var input = el("select", {});
    var value = getPath(node(), field);
    if (value === undefined && opts.fallback !== undefined) value = opts.fallback;
    choices.forEach(function (c) {
      var v = Array.isArray(c) ? c[0] : c, text = Array.isArray(c) ? c[1] : c;
      var option = el("option", { value: v, text: text });
      if (String(v) === String(value)) option.selected = true;
      input.appendChild(option);
    });
    input.addEventListener("change", function () {
      if (opts.apply) opts.apply(input.value); else setPath(node(), field, input.value);
      typed(true);
      showPanel();
    });
    return control(label, field, input, opts.help);
  }

  function checkbox(label, field, fallback) {
    var input = el("input", { type: "checkbox" });
    var value = getPath(node(), field);
    input.checked = value === undefined ? fallback : !!value;
    input.addEventListener("change", function () { setPath(node(), field, input.checked); typed(false); });
    var wrap = control(label, field, input);
    wrap.classList.add("ct-field-check");
    return wrap;
  }

  // Rows of an object (variable -> value) or a list of objects, each with its own inputs.
  function rows(title, field, columns, opts) {
    opts = opts || {};
    var box = el("fieldset", { class: "ct-rows" }, [el("legend", { text: title })]);
    var value = getPath(node(), field);
    var isMap = opts.map;
    var entries = isMap ? Object.keys(value || {}).map(function (k) { return [k, value[k]]; }) : (value || []);
    entries.forEach(function (entry, i) {
      var row = el("div", { class: "ct-row" });
      columns.forEach(function (col) {
        var id = "ct-f-" + (++uid);
        var input = el("input", { type: "text", id: id });
        var current = isMap ? entry[col.key === "key" ? 0 : 1] : (entry || {})[col.key];
        input.value = current === undefined ? "" : (typeof current === "string" ? current : JSON.stringify(current));
        var path = field + "." + (isMap ? entry[0] : i + "." + col.key);
        input.setAttribute("data-field", path);
        var errs = fieldErrors(path);
        if (errs.length) input.setAttribute("aria-invalid", "true");
        if (!CAN_EDIT) input.disabled = true;
        input.addEventListener("input", function () {
          var v = input.value;
          if (isMap) {
            var obj = getPath(node(), field) || {};
            var fresh = {};
            Object.keys(obj).forEach(function (k) {
              if (k !== entry[0]) fresh[k] = obj[k];
              else if (col.key === "key") fresh[v] = obj[k];
              else fresh[k] = opts.parse ? opts.parse(v) : v;
            });
            if (col.key === "key") entry[0] = v;
            setPath(node(), field, fresh);
          } else if (v === "" && col.optional) {
            delete getPath(node(), field)[i][col.key];
          } else {
            getPath(node(), field)[i][col.key] = v;
          }
          typed(!!opts.structural);
        });
        row.appendChild(el("span", { class: "ct-row-cell" }, [el("label", { for: id, text: col.label + " " + (i + 1) }), input]));
        errs.forEach(function (e) { row.appendChild(el("p", { class: "errorlist", text: e.message })); });
      });
      if (CAN_EDIT) row.appendChild(el("button", {
        type: "button", class: "button ct-row-remove", text: "Remove " + (opts.noun || "row") + " " + (i + 1),
        on: { click: function () {
          if (isMap) { var obj = getPath(node(), field); delete obj[entry[0]]; }
          else getPath(node(), field).splice(i, 1);
          if (!isMap && !getPath(node(), field).length && opts.dropEmpty) deletePath(node(), field);
          render(); showPanel(); changed();
        } },
      }));
      box.appendChild(row);
    });
    fieldErrors(field).forEach(function (e) { box.appendChild(el("p", { class: "errorlist", text: e.message })); });
    if (CAN_EDIT) box.appendChild(el("button", {
      type: "button", class: "button", text: "Add " + (opts.noun || "row"),
      on: { click: function () {
        if (isMap) { var obj = getPath(node(), field) || {}; var k = "name", n = 1; while ((k + n) in obj) n++; obj[k + n] = ""; setPath(node(), field, obj); }
        else { var arr = getPath(node(), field) || []; arr.push(opts.make()); setPath(node(), field, arr); }
        render(); showPanel(); changed();
      } },
    }));
    return box;
  }

  function parseLoose(v) {
    if (/^(-?\d+(\.\d+)?|true|false|null)$/.test(v.trim())) return JSON.parse(v.trim());
    return v;
  }

  function conditionRules() {
    var box = el("div", { class: "ct-rules" });
    (node().rules || []).forEach(function (rule, r) {
      var set = el("fieldset", { class: "ct-rows" }, [el("legend", { text: "Rule " + (r + 1) + " (then its dot on the step)" })]);
      (rule.when || []).forEach(function (check, c) {
        var base = "rules." + r + ".when." + c;
        var subject = ["variable", "intent", "channel", "business_hours"].filter(function (k) { return k in check; })[0] || "variable";
        set.appendChild(selectInput("Check " + (c + 1) + " of rule " + (r + 1), base, [["variable", "a variable"], ["intent", "the intent"], ["channel", "the channel"], ["business_hours", "business hours"]], {
          fallback: subject,
          apply: function (v) {
            var fresh = { variable: { variable: "answer", op: "set" }, intent: { intent: null }, channel: { channel: "webchat" }, business_hours: { business_hours: true } }[v];
            node().rules[r].when[c] = fresh;
          },
        }));
        if (subject === "variable") {
          set.appendChild(textInput("Variable", base + ".variable"));
          set.appendChild(selectInput("Comparison", base + ".op", OPS, { fallback: "eq" }));
          if (check.op !== "set" && check.op !== "not_set") set.appendChild(textInput("Value", base + ".value"));
        } else if (subject === "intent") {
          set.appendChild(selectInput("Intent", base + ".intent", [["", "(none)"]].concat(intentNames()), {
            fallback: check.intent === null ? "" : check.intent,
            apply: function (v) { node().rules[r].when[c].intent = v === "" ? null : v; },
          }));
        } else if (subject === "channel") {
          set.appendChild(textInput("Channel", base + ".channel"));
        } else {
          set.appendChild(selectInput("Business hours", base + ".business_hours", [["true", "open"], ["false", "closed"]], {
            fallback: String(check.business_hours),
            apply: function (v) { node().rules[r].when[c].business_hours = v === "true"; },
          }));
        }
      });
      fieldErrors("rules." + r + ".next").concat(fieldErrors("rules." + r)).forEach(function (e) { set.appendChild(el("p", { class: "errorlist", text: e.message })); });
      if (CAN_EDIT) {
        set.appendChild(el("button", { type: "button", class: "button", text: "Add a check to rule " + (r + 1), on: { click: function () { node().rules[r].when.push({ variable: "answer", op: "set" }); render(); showPanel(); changed(); } } }));
        set.appendChild(el("button", { type: "button", class: "button", text: "Remove rule " + (r + 1), on: { click: function () { node().rules.splice(r, 1); render(); showPanel(); changed(); } } }));
      }
      box.appendChild(set);
    });
    if (CAN_EDIT) box.appendChild(el("button", { type: "button", class: "button", text: "Add a rule", on: { click: function () { (node().rules = node().rules || []).push({ when: [{ business_hours: true }] }); render(); showPanel(); changed(); } } }));
    return box;
  }

  function kindFields(kind) {
    var n = node(), parts = [];
    switch (kind) {
      case "message":
        parts.push(textInput("Text", "text", { multiline: true, optional: true, help: "Use {{variable}} to say what the conversation learnt." }));
        parts.push(rows("Quick replies", "quick_replies", [{ key: "title", label: "Button" }, { key: "payload", label: "Payload", optional: true }], { noun: "quick reply", structural: true, dropEmpty: true, make: function () { return { title: "New button" }; } }));
        if ((n.quick_replies || []).length) parts.push(textInput("Keep the choice in variable", "variable", { optional: true }));
        break;
      case "question":
        parts.push(textInput("Question", "text", { multiline: true }));
        parts.push(textInput("Keep the answer in variable", "variable"));
        parts.push(selectInput("Validation", "validation", VALIDATIONS, {
          fallback: "text",
          apply: function (v) {
            ["min_length", "max_length", "min", "max", "integer", "choices", "pattern", "ignore_case"].forEach(function (k) { delete n[k]; });
            n.validation = v;
            if (v === "choice") n.choices = ["Yes", "No"];
            if (v === "regex") n.pattern = "";
          },
        }));
        var v = n.validation || "text";
        if (v === "text") { parts.push(textInput("Shortest answer", "min_length", { type: "number" })); parts.push(textInput("Longest answer", "max_length", { type: "number" })); }
        if (v === "number") { parts.push(textInput("Smallest", "min", { type: "number" })); parts.push(textInput("Largest", "max", { type: "number" })); parts.push(checkbox("Whole numbers only", "integer", false)); }
        if (v === "date") { parts.push(textInput("Earliest date", "min", { optional: true, help: "A date (2025-03-14) or today." })); parts.push(textInput("Latest date", "max", { optional: true })); }
        if (v === "choice") parts.push(textInput("Choices (one a line)", "choices", { multiline: true, list: "lines" }));
        if (v === "regex") { parts.push(textInput("Pattern", "pattern", { help: "RE2 syntax; the whole answer must match." })); parts.push(checkbox("Ignore case", "ignore_case", false)); }
        parts.push(textInput("Retry text", "retry_text", { multiline: true, optional: true, help: "Said when an answer is not valid." }));
        parts.push(textInput("Retries", "max_retries", { type: "number", structural: true, help: "Invalid answers that get the retry text (default 2); then the “after N retries” way out." }));
        parts.push(checkbox("Global intents (talk to a person, start over) may interrupt", "interruptible", true));
        break;
      case "condition":
        parts.push(conditionRules());
        break;
      case "set":
        parts.push(rows("Variables", "variables", [{ key: "key", label: "Variable" }, { key: "value", label: "Value" }], { map: true, noun: "variable", parse: parseLoose }));
        break;
      case "router":
        parts.push(el("p", { class: "help", text: "Each intent has a dot on the step: link it to where that intent goes. Edit intents with the Intents button." }));
        break;
      case "http":
        parts.push(selectInput("Method", "method", METHODS, { fallback: "GET" }));
        parts.push(textInput("URL", "url", { help: "http:// or https://; {{variable}} values are encoded." }));
        parts.push(rows("Headers", "headers", [{ key: "key", label: "Header" }, { key: "value", label: "Value" }], { map: true, noun: "header" }));
        parts.push(textInput("Body (JSON)", "body", { multiline: true, json: true, rows: 4 }));
        parts.push(textInput("Timeout (seconds)", "timeout", { type: "number" }));
        parts.push(rows("Keep from the response", "save", [{ key: "key", label: "Variable" }, { key: "value", label: "Path" }], { map: true, noun: "field" }));
        parts.push(textInput("Keep the HTTP status in variable", "status_variable", { optional: true }));
        break;
      case "capture_lead":
        parts.push(textInput("Variables (comma-separated)", "variables", { list: "comma" }));
        break;
      case "handoff":
        parts.push(textInput("Reason", "reason", { help: "A code for reports: lower-case letters, digits, _." }));
        parts.push(textInput("Team", "team", { optional: true }));
        parts.push(textInput("Text", "text", { multiline: true, optional: true }));
        break;
      case "end":
        parts.push(textInput("Text", "text", { multiline: true, optional: true }));
        break;
    }
    return parts;
  }

  function nodeForm() {
    var n = node(), form = el("form", { class: "ct-node-form", "aria-labelledby": "ct-panel-title", on: { submit: function (e) { e.preventDefault(); } } });
    var name = el("input", { type: "text", value: selected, pattern: "[A-Za-z0-9_-]{1,64}" });
    name.addEventListener("change", function () {
      var to = name.value.trim();
      if (to === selected) return;
      if (!/^[A-Za-z0-9_-]{1,64}$/.test(to) || to in nodes()) {
        name.setAttribute("aria-invalid", "true");
        setStatus("“" + to + "” cannot name a step: 1 to 64 letters, digits, _ or -, not taken.", "error");
        return;
      }
      renameNode(selected, to);
      // Redrawn once the key that ended the name (Tab, a click elsewhere) has moved the focus:
      // the panel then gives it back to the field it went to. Redrawn at once, the field that
      // had it was gone as Tab moved on, and the focus fell to the page.
      setTimeout(function () { render(); showPanel(); changed(); }, 0);
    });
    form.appendChild(control("Step name", "@id", name, "Its id in the flow."));
    var start = el("input", { type: "checkbox" });
    start.checked = def.start === selected;
    start.addEventListener("change", function () { if (start.checked) def.start = selected; render(); changed(); });
    var startWrap = control("The conversation starts here", "@start", start);
    startWrap.classList.add("ct-field-check");
    form.appendChild(startWrap);
    kindFields(n.type).forEach(function (p) { form.appendChild(p); });
    form.appendChild(textInput("Note for editors", "note", { multiline: true, optional: true, rows: 2 }));
    // Problems no control shows (a missing link, say) are listed above the form.
    var shown = {};
    Array.prototype.forEach.call(form.querySelectorAll("[data-field]"), function (i) { shown[i.getAttribute("data-field")] = true; });
    var rest = problemsOf(selected).filter(function (e) {
      return !shown[e.field] && !/^(rules\.\d+(\.next)?|quick_replies|variables|headers|save)/.test(e.field) || /(^|\.)next$|^(other|else|fallback|on_failure|on_max_retries)$/.test(e.field);
    });
    if (rest.length) form.insertBefore(el("ul", { class: "errorlist", "aria-label": "Problems of this step" }, rest.map(function (e) {
      return el("li", { text: (e.field ? e.field + ": " : "") + e.message });
    })), form.firstChild);
    if (CAN_EDIT) {
      form.appendChild(el("div", { class: "ct-form-actions" }, [
        el("button", { type: "button", class: "button", text: "Duplicate step", on: { click: duplicate } }),
        el("button", { type: "button", class: "button ct-danger", text: "Delete step", on: { click: function () { removeNode(selected); } } }),
      ]));
    }
    return form;
  }

  function duplicate() {
    var id = newId(node().type);
    var copy = clone(node());
    nodes()[id] = copy;
    layout[id] = [layout[selected][0] + 40, layout[selected][1] + 40];
    layoutSaved = true;
    selected = id;
    render(); showPanel(); changed();
  }

  function intentsForm() {
    var form = el("form", { class: "ct-node-form", "aria-labelledby": "ct-panel-title", on: { submit: function (e) { e.preventDefault(); } } });
    (def.intents || []).forEach(function (intent, i) {
      var set = el("fieldset", { class: "ct-rows" }, [el("legend", { text: "Intent " + (i + 1) })]);
      var name = el("input", { type: "text", value: intent.name || "" });
      name.addEventListener("input", function () { def.intents[i].name = name.value; typed(true); });
      set.appendChild(wrapField("Name", name, "intents." + i + ".name"));
      var phrases = el("textarea", { rows: 4 });
      phrases.value = (intent.phrases || []).join("\n");
      phrases.addEventListener("input", function () { def.intents[i].phrases = phrases.value.split("\n").map(function (s) { return s.trim(); }).filter(Boolean); typed(false); });
      set.appendChild(wrapField("Training phrases (one a line)", phrases, "intents." + i + ".phrases"));
      if (CAN_EDIT) set.appendChild(el("button", { type: "button", class: "button", text: "Remove intent " + (i + 1), on: { click: function () { def.intents.splice(i, 1); render(); showPanel(); changed(); } } }));
      form.appendChild(set);
    });
    if (CAN_EDIT) form.appendChild(el("button", { type: "button", class: "button", text: "Add an intent", on: { click: function () {
      (def.intents = def.intents || []).push({ name: "intent_" + (def.intents.length + 1), phrases: [] }); render(); showPanel(); changed();
    } } }));
    return form;
  }

  function wrapField(label, input, path) {
    var id = "ct-f-" + (++uid);
    input.id = id;
    var errs = problems.errors.filter(function (e) { return !e.node && e.path === path; });
    var children = [el("label", { for: id, text: label }), input];
    if (errs.length) {
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", id + "-err");
      children.push(el("ul", { class: "errorlist", id: id + "-err" }, errs.map(function (e) { return el("li", { text: e.message }); })));
    }
    if (!CAN_EDIT) input.disabled = true;
    return el("div", { class: "ct-field" }, children);
  }

  function problemsList() {
    var box = el("div", {});
    var all = problems.errors.concat(problems.warnings);
    if (!all.length) { box.appendChild(el("p", { text: "No problems. Click a step to edit it." })); return box; }
    box.appendChild(el("ul", { class: "ct-problem-list" }, all.map(function (e) {
      var isError = problems.errors.indexOf(e) >= 0;
      var text = (isError ? "Error" : "Warning") + (e.node ? " in “" + e.node + "”" : "") + ": " + (e.field ? e.field + ": " : "") + e.message;
      if (e.node && e.node in nodes()) {
        return el("li", { class: isError ? "ct-error" : "ct-warning" }, [el("button", { type: "button", class: "ct-linklike", text: text, on: { click: function () { selectNode(e.node); } } })]);
      }
      return el("li", { class: isError ? "ct-error" : "ct-warning", text: text });
    })));
    return box;
  }

  function selectNode(id) {
    selected = id; panelMode = "node";
    Array.prototype.forEach.call(container.querySelectorAll(".drawflow-node.selected"), function (n) { n.classList.remove("selected"); });
    if (dfIds[id]) $("node-" + dfIds[id]).classList.add("selected");
    showPanel();
  }

  function showPanel() {
    var active = document.activeElement;
    var focused = active && panelBody.contains(active) ? active.getAttribute("data-field") : null;
    var caret = focused && typeof active.selectionStart === "number" ? [active.selectionStart, active.selectionEnd] : null;
    panelBody.innerHTML = "";
    if (panelMode === "node" && selected && selected in nodes()) {
      panelTitle.textContent = (KINDS[node().type] || { label: node().type }).label + ": " + selected;
      panelBody.appendChild(nodeForm());
      panelBody.appendChild(el("button", { type: "button", class: "button", text: "Show all problems", on: { click: function () { panelMode = "problems"; selected = null; showPanel(); } } }));
    } else if (panelMode === "intents") {
      panelTitle.textContent = "Intents";
      panelBody.appendChild(intentsForm());
    } else {
      panelTitle.textContent = "Problems";
      panelBody.appendChild(problemsList());
    }
    if (focused) {
      var again = panelBody.querySelector('[data-field="' + focused.replace(/"/g, "") + '"]');
      if (again) {
        again.focus();
        if (caret && typeof again.setSelectionRange === "function") { try { again.setSelectionRange(caret[0], caret[1]); } catch (e) { /* not a text input */ } }
      }
    }
  }

  // Delete on a selected step: removed here, as one change (Drawflow's own removal would report
  // each of its links first, one change each). A selected link is Drawflow's to remove.
  container.parentNode.addEventListener("keydown", function (e) {
    if ((e.key !== "Delete" && e.key !== "Backspace") || !editor.node_selected || !CAN_EDIT) return;
    var id = ids[parseInt(editor.node_selected.id.slice(5), 10) - 1];
    e.stopPropagation();
    e.preventDefault();
    editor.node_selected = null;
    if (id) removeNode(id);
  }, true);

  // Keys typed in the side panel or the palette are theirs, not the canvas's (Delete).
  [$("ct-panel"), $("ct-palette-list")].forEach(function (area) {
    area.addEventListener("keydown", function (e) { e.stopPropagation(); });
  });

  // Typing in a panel field rebuilds the panel only when the structure changes; keep focus.
  var typedRender = typed;
  typed = function (structural) {
    typedRender(structural);
    if (structural) showPanel();
  };

  // --- Toolbar, keys -------------------------------------------------------------------------

  $("ct-undo").addEventListener("click", undo);
  $("ct-redo").addEventListener("click", redo);
  $("ct-zoom-in").addEventListener("click", function () { editor.zoom_in(); });
  $("ct-zoom-out").addEventListener("click", function () { editor.zoom_out(); });
  $("ct-layout").addEventListener("click", function () { autoLayout(true); layoutSaved = true; render(); changed(); });
  $("ct-intents").addEventListener("click", function () { panelMode = "intents"; selected = null; showPanel(); panelTitle.focus(); });
  if ($("ct-save")) $("ct-save").addEventListener("click", function () { clearTimeout(checkTimer); clearTimeout(typingTimer); checkAndSave(true); });
  document.addEventListener("keydown", function (e) {
    var tag = (e.target && e.target.tagName) || "";
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
    var mod = e.ctrlKey || e.metaKey;
    if (mod && e.key.toLowerCase() === "z" && !e.shiftKey) { e.preventDefault(); undo(); }
    else if (mod && (e.key.toLowerCase() === "y" || (e.key.toLowerCase() === "z" && e.shiftKey))) { e.preventDefault(); redo(); }
  });
  // Leaving with an edit not saved yet (being checked or saved, or refused for a problem)
  // asks first: the browser's "Leave site?" (its words; a page cannot set them).
  window.addEventListener("beforeunload", function (e) {
    if (!dirty && !saving) return;
    e.preventDefault();
    e.returnValue = "";
  });
  var publishForm = document.querySelector(".ct-publish-form");
  if (publishForm) publishForm.addEventListener("submit", function (e) {
    if (!dirty && !saving) return;
    e.preventDefault();
    clearTimeout(checkTimer);
    checkAndSave(false).then(function () {
      if (!dirty && !problems.errors.length) publishForm.submit();
      else setStatus("Not published: fix the problems first.", "error");
    });
  });

  // --- The test chat: highlight the step it is on ---------------------------------------------

  function showCurrent() {
    Array.prototype.forEach.call(container.querySelectorAll(".ct-current"), function (n) { n.classList.remove("ct-current"); });
    if (current && dfIds[current]) $("node-" + dfIds[current]).classList.add("ct-current");
    container.setAttribute("data-current", current || "");
  }
  var sandboxKey = "chattonic:" + CONFIG.bot_key + ":sandbox:session";
  var followTimer = null;
  function follow() {
    clearTimeout(followTimer);
    followTimer = setTimeout(function () {
      var token = null;
      try { token = window.localStorage.getItem(sandboxKey); } catch (e) { /* private mode */ }
      if (!token) return;
      fetch(CONFIG.sandbox_url + "?session=" + encodeURIComponent(token), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (j) { current = j.node || null; showCurrent(); drawMinimap(); });
    }, 150);
  }
  function watchWidget(host) {
    if (!host.shadowRoot) return;
    new MutationObserver(follow).observe(host.shadowRoot, { childList: true, subtree: true, characterData: true });
    follow();
  }
  var widget = document.querySelector("chattonic-widget");
  if (widget) watchWidget(widget);
  else new MutationObserver(function (changes, observer) {
    var host = document.querySelector("chattonic-widget");
    if (host) { observer.disconnect(); watchWidget(host); }
  }).observe(document.body, { childList: true });

  // --- Start ---------------------------------------------------------------------------------

  var saved = def.meta && def.meta.layout;
  if (saved && typeof saved === "object") {
    layoutSaved = true;
    Object.keys(saved).forEach(function (id) { if (Array.isArray(saved[id])) layout[id] = saved[id].slice(0, 2); });
    // Positions live in the editor while it is open; serialise() writes them back.
    def = clone(def);
    delete def.meta.layout;
    if (!Object.keys(def.meta).length) delete def.meta;
  }
  fit();
  render();
  remember();
  lastSaved = JSON.stringify(serialise());
  showPanel();
  checkAndSave(false).then(function () { document.body.setAttribute("data-ct-builder", "ready"); });
  if (window.performance && performance.mark) performance.mark("ct-builder-drawn");
  window.ctBuilder = { serialise: serialise, editor: editor };
  }
})();
