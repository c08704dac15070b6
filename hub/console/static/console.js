// The console's own script: keeps each live view's status line true, and moves focus to the
// first invalid field after a form comes back with errors. No inline script anywhere (CSP).
(function () {
  "use strict";

  function statusLine(source) {
    var root = source && source.closest ? source.closest("[sse-connect]") : null;
    return root ? root.querySelector("[data-live-status]") : null;
  }

  function say(source, text, state) {
    var line = statusLine(source);
    if (!line || line.dataset.state === "ended") {
      return;
    }
    if (line.textContent !== text) {
      line.textContent = text;
    }
    line.dataset.state = state;
  }

  document.addEventListener("htmx:sseOpen", function (event) {
    say(event.detail.elt || event.target, "Live: updates as they happen", "live");
  });
  document.addEventListener("htmx:sseError", function (event) {
    say(event.detail.elt || event.target, "Not live: reconnecting… (figures may be out of date)", "down");
  });
  document.addEventListener("htmx:sseMessage", function (event) {
    if (event.detail && event.detail.type === "session-ended") {
      say(event.target, "Not live: your session has ended", "ended");
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var invalid = document.querySelector("main [aria-invalid='true']");
    if (invalid) {
      invalid.focus();
    }
  });
})();
