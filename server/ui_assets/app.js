// berth web interface: small additions to server-rendered pages that work without this script.
// Copy buttons next to pull commands, and filtering of the rows shown as one types.
"use strict";

function addCopyButtons() {
  document.querySelectorAll("[data-copy]").forEach(function (el) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "copy";
    b.textContent = "Copy";
    b.setAttribute("aria-label", "Copy: " + el.textContent);
    b.addEventListener("click", function () {
      var done = function () {
        b.textContent = "Copied";
        setTimeout(function () { b.textContent = "Copy"; }, 1500);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(el.textContent).then(done);
      } else {
        var range = document.createRange();
        range.selectNodeContents(el);
        var sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        if (document.execCommand("copy")) done();
      }
    });
    el.insertAdjacentElement("afterend", b);
  });
}

function liveFilter() {
  var input = document.getElementById("q");
  var table = document.querySelector("table.list");
  if (!input || !table) return;
  input.addEventListener("input", function () {
    var want = input.value.toLowerCase();
    table.querySelectorAll("tbody tr").forEach(function (tr) {
      var first = tr.firstElementChild;
      tr.hidden = want !== "" && first.textContent.toLowerCase().indexOf(want) < 0;
    });
  });
}

document.addEventListener("DOMContentLoaded", function () {
  addCopyButtons();
  liveFilter();
});
