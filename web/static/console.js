// The console works without this file. With it: a vote button cannot be
// clicked twice, and an idle inbox refreshes itself every 30 seconds.
"use strict";
document.addEventListener("submit", function (e) {
  var form = e.target;
  // Disable after the submission has started, so the clicked button's
  // formaction still applies.
  setTimeout(function () {
    form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
  }, 0);
});
if (document.querySelector("[data-approval], #empty")) {
  setInterval(function () {
    var busy = document.hidden || Array.prototype.some.call(
      document.querySelectorAll("textarea"), function (t) { return t.value !== "" || t === document.activeElement; });
    if (!busy) { window.location.reload(); }
  }, 30000);
}
