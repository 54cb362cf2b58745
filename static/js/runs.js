// Live status for the run page: polls the run's JSON status every 2 seconds while the
// run is queued or running. When the run stops, the page reloads once to show the new
// stage outputs; the reloaded page sees a finished run and does not poll again.
(function () {
  "use strict";
  var root = document.getElementById("run-status");
  if (!root || root.dataset.active !== "true") return;

  var url = root.dataset.statusUrl;
  var storedAtLoad = parseInt(root.dataset.stored || "0", 10);
  var interval = 2000;
  var failures = 0;
  var lastStage = null;

  function text(id, value) {
    var el = document.getElementById(id);
    if (el && value !== undefined && value !== null) el.textContent = String(value);
  }

  function render(s) {
    var badge = document.getElementById("run-status-badge");
    if (badge) {
      badge.textContent = s.status_label + (s.cancel_requested && s.is_active ? " (cancelling)" : "");
      badge.className = "badge" + ({ succeeded: " ok", failed: " err", cancelled: " warn" }[s.status] || "");
    }
    text("run-stage", s.stage_title);
    var p = s.progress || {};
    text("run-progress-done", p.done);
    text("run-progress-total", p.total);
    text("run-progress-percent", p.percent);
    var bar = document.getElementById("run-progress-bar");
    if (bar) bar.style.width = (p.percent || 0) + "%";
    var progress = document.getElementById("run-progress");
    if (progress) progress.setAttribute("aria-valuenow", String(p.percent || 0));
    var o = s.overall;
    if (o) {
      text("run-overall", o.text);
      var done = o.stages.filter(function (st) { return st.state === "done"; }).length;
      var overallBar = document.getElementById("run-overall-bar");
      if (overallBar && o.count) overallBar.style.width = Math.round(100 * done / o.count) + "%";
      var overallProgress = document.getElementById("run-overall-progress");
      if (overallProgress) overallProgress.setAttribute("aria-valuenow", String(done));
      text("run-stages-done", done);
      o.stages.forEach(function (st) {
        var stageBadge = document.getElementById("stage-state-" + st.name);
        if (stageBadge) {
          stageBadge.textContent = st.state_label;
          stageBadge.className = "badge stage-" + st.state;
        }
        text("stage-batches-" + st.name,
          st.state !== "done" && st.batches_stored
            ? st.batches_stored + (st.batches_stored === 1 ? " batch" : " batches") + " stored" : "");
      });
    }
    var u = s.usage || {};
    text("usage-calls", u.calls);
    text("usage-cached", u.cached_calls);
    text("usage-errors", u.errors);
    if (u.prompt_tokens !== undefined) text("usage-tokens", u.prompt_tokens + " / " + u.completion_tokens);
    if (u.cost_usd !== undefined) text("usage-cost", Number(u.cost_usd).toFixed(4));
    // Announce stage changes to screen readers, not every progress tick.
    if (s.stage_title !== lastStage) {
      if (lastStage !== null) text("run-live", "Now: " + (o ? o.text + ", " : "") + s.stage_title);
      lastStage = s.stage_title;
    }
    var fresh = document.getElementById("run-new-stages");
    if (fresh && s.stored_stages > storedAtLoad) fresh.hidden = false;
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (s) {
        failures = 0;
        render(s);
        if (s.is_active) {
          window.setTimeout(poll, interval);
        } else {
          text("run-live", "Run " + s.status_label.toLowerCase() + ". Reloading.");
          window.location.reload();
        }
      })
      .catch(function () {
        // Back off on errors (server restart, network blip); give up after a while.
        failures += 1;
        if (failures < 10) window.setTimeout(poll, interval * Math.min(failures + 1, 8));
      });
  }

  window.setTimeout(poll, interval);
})();
