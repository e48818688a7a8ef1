/* The dashboard's bot pages: rows of allowed origins, the business hours' ranges, copy buttons,
   the status of a version in training.
   Without this script the forms still work: one empty origin row, each day's first range. */
(function () {
  "use strict";

  function show(elements) {
    elements.forEach(function (element) { element.hidden = false; });
  }

  // --- Allowed origins: add and remove rows -------------------------------------------------
  function setUpList(list) {
    var rows = list.querySelector(".ct-list-rows");
    var add = list.querySelector(".ct-list-add");
    var label = list.getAttribute("data-ct-label");

    function renumber() {
      rows.querySelectorAll(".ct-list-row").forEach(function (row, index) {
        var input = row.querySelector("input");
        var base = input.id.replace(/_\d+$/, "");
        input.id = base + "_" + index;
        input.setAttribute("aria-label", label + " " + (index + 1));
        row.querySelector(".ct-list-remove").setAttribute(
          "aria-label", "Remove " + label.toLowerCase() + " " + (index + 1));
      });
    }

    function bindRemove(row) {
      var remove = row.querySelector(".ct-list-remove");
      remove.hidden = false;
      remove.addEventListener("click", function () {
        if (rows.children.length === 1) {
          row.querySelector("input").value = "";
          row.querySelector("input").removeAttribute("aria-invalid");
          row.querySelector("input").focus();
          return;
        }
        row.remove();
        renumber();
        add.focus();
      });
    }

    rows.querySelectorAll(".ct-list-row").forEach(bindRemove);
    add.hidden = false;
    add.addEventListener("click", function () {
      var empty = Array.prototype.find.call(
        rows.querySelectorAll("input"), function (input) { return !input.value.trim(); });
      if (empty) { empty.focus(); return; }
      var row = rows.lastElementChild.cloneNode(true);
      var input = row.querySelector("input");
      input.value = "";
      input.removeAttribute("aria-invalid");
      rows.appendChild(row);
      renumber();
      bindRemove(row);
      input.focus();
    });
  }

  // --- Business hours: open or closed, ranges added and removed -----------------------------
  function setUpDay(day) {
    var open = day.querySelector(".ct-day-open input");
    var ranges = day.querySelector(".ct-ranges");
    var add = day.querySelector(".ct-range-add");

    function bindRemove(range) {
      var remove = range.querySelector(".ct-range-remove");
      remove.hidden = false;
      remove.addEventListener("click", function () {
        if (ranges.children.length === 1) {
          open.checked = false;  // the last range of a day: the day closes (CSS hides it)
          open.focus();
          return;
        }
        range.remove();
        add.focus();
      });
    }

    ranges.querySelectorAll(".ct-range").forEach(bindRemove);
    add.hidden = false;
    add.addEventListener("click", function () {
      var last = ranges.lastElementChild;
      var range = last.cloneNode(true);
      var times = range.querySelectorAll("input");
      // The new range starts where the last one ends.
      times[0].value = last.querySelectorAll("input")[1].value || "";
      times[1].value = "";
      ranges.appendChild(range);
      bindRemove(range);
      times[0].focus();
    });
  }

  // --- Copy buttons -------------------------------------------------------------------------
  function setUpCopy(button) {
    var target = document.getElementById(button.getAttribute("data-ct-copy"));
    var status = document.getElementById(button.getAttribute("aria-describedby"));
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = target.textContent;
      function done(message) { if (status) { status.textContent = message; } }
      function select() {
        var range = document.createRange();
        range.selectNodeContents(target);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        done("Selected: press Ctrl+C (⌘C) to copy.");
      }
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () { done("Copied."); }, select);
      } else {
        select();
      }
    });
  }

  // --- A version in training: the status follows it until it is live (or failed) ----------
  function followTraining(live) {
    function check() {
      fetch(window.location.href, {credentials: "same-origin"}).then(function (response) {
        return response.ok ? response.text() : Promise.reject(response.status);
      }).then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var then = fresh.getElementById("ct-versions");
        if (then) { live.innerHTML = then.innerHTML; }
        if (then && then.hasAttribute("data-ct-training")) {
          window.setTimeout(check, 1500);
        } else {
          live.removeAttribute("data-ct-training");
        }
      }, function () { window.setTimeout(check, 5000); });
    }
    window.setTimeout(check, 1000);
  }

  // --- The diagram: fitted to the window when it is wider; "Actual size" to read it closely --
  // (at actual size a wide flow ran off the page's edge with nothing to say it scrolls).
  function setUpDiagram(box) {
    var svg = box.querySelector("svg");
    var tools = document.querySelector("[data-ct-diagram-tools]");
    if (!svg || !tools) return;
    var actual = tools.querySelector("[data-ct-diagram-actual]");
    var hint = tools.querySelector("[data-ct-diagram-hint]");
    var natural = Number(svg.getAttribute("width")) || 0;
    if (natural <= box.clientWidth) return;  // it fits as it is: nothing to offer
    tools.hidden = false;
    function show(atActualSize) {
      box.classList.toggle("ct-diagram--fit", !atActualSize);
      actual.setAttribute("aria-pressed", String(atActualSize));
      hint.hidden = !atActualSize;
    }
    actual.addEventListener("click", function () {
      show(actual.getAttribute("aria-pressed") !== "true");
    });
    show(false);
  }

  function setUp() {
    document.querySelectorAll("[data-ct-diagram]").forEach(setUpDiagram);
    document.querySelectorAll("[data-ct-training]").forEach(followTraining);
    document.querySelectorAll("[data-ct-list]").forEach(setUpList);
    document.querySelectorAll("[data-ct-day]").forEach(setUpDay);
    document.querySelectorAll("[data-ct-copy]").forEach(setUpCopy);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUp);
  } else {
    setUp();
  }
})();
