// The task pages: poll status.json every 1.5 s while a shown task is waiting or running, and update
// its state badge, progress bar and times in place. Plain JS, no build step. Stops when all have ended;
// the task page reloads once when its task ends, to show the result or the error.
(function () {
  "use strict";

  var INTERVAL_MS = 1500;
  var ENDED = { finished: true, error: true, canceled: true };

  function pending(root) {
    var found = root.hasAttribute("data-task-id") ? [root] :
      Array.prototype.slice.call(root.querySelectorAll("[data-task-id]"));
    return found.filter(function (element) { return !ENDED[element.getAttribute("data-state")]; });
  }

  function field(element, name) { return element.querySelector('[data-field="' + name + '"]'); }

  function update(element, status) {
    var changed = element.getAttribute("data-state") !== status.state;
    element.setAttribute("data-state", status.state);
    var state = field(element, "state");
    if (state && changed) {
      var badge = document.createElement("span");
      badge.className = "state state-" + status.state;
      badge.textContent = status.state;
      state.textContent = "";
      state.appendChild(badge);
    }
    if (state && status.cancel_requested && !status.ended && !state.querySelector(".badge")) {
      var stopping = document.createElement("span");
      stopping.className = "badge";
      stopping.textContent = "stopping";
      state.appendChild(document.createTextNode(" "));
      state.appendChild(stopping);
    }
    var bar = field(element, "bar");
    if (bar) {
      bar.max = status.progress.max;
      if (status.progress.value === null) { bar.removeAttribute("value"); } else { bar.value = status.progress.value; }
      bar.textContent = status.progress.percent === null ? "" : status.progress.percent + " %";
    }
    var label = field(element, "label");
    if (label) { label.textContent = status.progress.label; }
    var steps = field(element, "steps");
    if (steps && status.steps.length) {
      steps.textContent = "";
      status.steps.forEach(function (step) {
        var row = document.createElement("tr");
        var name = document.createElement("th");
        name.scope = "row";
        name.textContent = step.step || "\u2014";
        row.appendChild(name);
        [step.done, step.total].forEach(function (value) {
          var cell = document.createElement("td");
          cell.className = "num";
          cell.textContent = value === null || value === undefined ? "\u2014" : value;
          row.appendChild(cell);
        });
        steps.appendChild(row);
      });
    }
    ["started", "finished"].forEach(function (name) {
      var cell = field(element, name);
      if (cell && status[name]) { cell.textContent = status[name]; }
    });
  }

  function poll(root) {
    var url = root.getAttribute("data-task-poll");
    var reload = root.hasAttribute("data-reload-when-ended");
    function tick() {
      var shown = pending(root);
      if (!shown.length) { return; }
      var ids = shown.map(function (element) { return element.getAttribute("data-task-id"); });
      fetch(url + "?ids=" + encodeURIComponent(ids.join(",")), {
        credentials: "same-origin", headers: { "Accept": "application/json" }
      }).then(function (response) {
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.json();
      }).then(function (body) {
        var ended = false;
        body.tasks.forEach(function (status) {
          shown.forEach(function (element) {
            if (element.getAttribute("data-task-id") === status.task_id) {
              update(element, status);
              ended = ended || status.ended;
            }
          });
        });
        if (reload && ended) { window.location.reload(); return; }
        window.setTimeout(tick, INTERVAL_MS);
      }).catch(function () {
        window.setTimeout(tick, INTERVAL_MS * 4);  // the server is busy or gone: slow down
      });
    }
    window.setTimeout(tick, INTERVAL_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-task-poll]"), poll);
  });
}());
