// The live progress bar of a run: reads the run's progress (kept in Redis, so any admin
// process answers) twice a second, and shows the result page when the run ends.
(function () {
  "use strict";
  var box = document.getElementById("run");
  if (!box) { return; }
  var bar = document.getElementById("bar");
  var percent = document.getElementById("percent");
  var state = document.getElementById("state");
  var url = box.getAttribute("data-url");
  var finished = bar.getAttribute("value") === "100" && !state.textContent.match(/…/);
  if (finished) { return; }
  function show(data) {
    bar.value = data.percent;
    bar.textContent = data.percent + " %";
    percent.textContent = data.percent + " %";
    if (data.state !== "running") {
      state.textContent = data.state === "finished" ? box.getAttribute("data-done-text")
                                                    : box.getAttribute("data-failed-text");
      window.location.reload();
      return;
    }
    state.textContent = data.total ? data.phase + ": " + data.done + " / " + data.total
                                   : box.getAttribute("data-reading-text");
    window.setTimeout(poll, 500);
  }
  function poll() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json(); })
      .then(show)
      .catch(function () { window.setTimeout(poll, 2000); });
  }
  poll();
})();
