/* The channel's add page: only the chosen platform's set-up steps and credential inputs are
   shown (and sent); the others are hidden and disabled. Without this script every platform's
   group is shown, and only the chosen one's inputs are read. */
(function () {
  "use strict";

  function setUp() {
    var kind = document.getElementById("id_kind");
    var groups = document.querySelectorAll("fieldset.ct-kind");
    if (!kind || !groups.length) { return; }

    function show() {
      groups.forEach(function (group) {
        var chosen = group.classList.contains("ct-kind-" + kind.value);
        group.hidden = !chosen;
        group.querySelectorAll("input, select, textarea").forEach(function (input) {
          input.disabled = !chosen;
        });
      });
    }

    kind.addEventListener("change", show);
    show();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUp);
  } else {
    setUp();
  }
})();
