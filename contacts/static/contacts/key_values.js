/* Names and values as rows (a contact's attributes, a lead's fields): add and remove rows.
   Without this script the form still works: the stored rows and one empty row. */
(function () {
  "use strict";

  function setUp(pairs) {
    var rows = pairs.querySelector(".ct-pairs-rows");
    var add = pairs.querySelector(".ct-pairs-add");
    var noun = pairs.getAttribute("data-ct-noun");

    function renumber() {
      rows.querySelectorAll(".ct-pairs-row").forEach(function (row, index) {
        var inputs = row.querySelectorAll("input");
        inputs[0].id = inputs[0].id.replace(/_\d+_key$/, "_" + index + "_key");
        inputs[1].id = inputs[1].id.replace(/_\d+_value$/, "_" + index + "_value");
        inputs[0].setAttribute("aria-label", "Name of " + noun + " " + (index + 1));
        inputs[1].setAttribute("aria-label", "Value of " + noun + " " + (index + 1));
        row.querySelector(".ct-pairs-remove").setAttribute(
          "aria-label", "Remove " + noun + " " + (index + 1));
      });
    }

    function bindRemove(row) {
      var remove = row.querySelector(".ct-pairs-remove");
      remove.hidden = false;
      remove.addEventListener("click", function () {
        if (rows.children.length === 1) {
          row.querySelectorAll("input").forEach(function (input) { input.value = ""; });
          row.querySelector("input").focus();
          return;
        }
        row.remove();
        renumber();
        add.focus();
      });
    }

    rows.querySelectorAll(".ct-pairs-row").forEach(bindRemove);
    add.hidden = false;
    add.addEventListener("click", function () {
      var empty = Array.prototype.find.call(
        rows.querySelectorAll(".ct-pairs-row"), function (row) {
          return !row.querySelectorAll("input")[0].value.trim() &&
            !row.querySelectorAll("input")[1].value.trim();
        });
      if (empty) { empty.querySelector("input").focus(); return; }
      var row = rows.lastElementChild.cloneNode(true);
      row.querySelectorAll("input").forEach(function (input) { input.value = ""; });
      rows.appendChild(row);
      renumber();
      bindRemove(row);
      row.querySelector("input").focus();
    });
  }

  function start() { document.querySelectorAll("[data-ct-pairs]").forEach(setUp); }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
