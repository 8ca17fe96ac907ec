// The console's shared script: copy buttons and confirmations. No build step, no dependencies.
(function () {
  "use strict";

  // Copy with the clipboard API where the browser allows it (HTTPS or localhost); over plain HTTP,
  // select the text and fall back to execCommand, or tell the user to press Ctrl+C.
  function copyFrom(button) {
    var source = document.getElementById(button.getAttribute("data-copy-target"));
    if (!source) { return; }
    var status = document.getElementById(source.id + "-status");
    var say = function (text) { if (status) { status.textContent = text; } };
    var text = source.value !== undefined ? source.value : source.textContent;
    var selectIt = function () {
      var hidden = source.classList.contains("visually-hidden");
      if (hidden) { source.classList.remove("visually-hidden"); }
      source.focus(); source.select();
      var copied = false;
      try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
      if (hidden && copied) { source.classList.add("visually-hidden"); button.focus(); }
      say(copied ? "Copied" : "Press Ctrl+C to copy");
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { say("Copied"); }, selectIt);
    } else {
      selectIt();
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest(".copy-button");
    if (button) { event.preventDefault(); copyFrom(button); }
  });

  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) { event.preventDefault(); }
  });

  window.consoleCsrfToken = function () {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  };
}());
