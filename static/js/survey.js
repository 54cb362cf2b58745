// Survey pages: time on page for participants, live refresh of results for researchers.
// No libraries, nothing study-specific.
(function () {
  "use strict";

  // Forms marked data-timed report how long the page was visible (tab hidden time
  // excluded), which is a truer reading time than the server's clock.
  var visibleMs = 0;
  var since = document.visibilityState === "hidden" ? null : performance.now();
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden" && since !== null) {
      visibleMs += performance.now() - since;
      since = null;
    } else if (document.visibilityState === "visible" && since === null) {
      since = performance.now();
    }
  });
  document.querySelectorAll("form[data-timed]").forEach(function (form) {
    form.addEventListener("submit", function () {
      var field = form.querySelector("input[name=elapsed_ms]");
      if (!field) return;
      var total = visibleMs + (since === null ? 0 : performance.now() - since);
      field.value = String(Math.round(total));
    });
  });

  // Results pages: re-fetch the results body while the survey is open.
  var live = document.querySelector("[data-live-url]");
  if (live) {
    setInterval(function () {
      if (document.visibilityState === "hidden") return;
      fetch(live.getAttribute("data-live-url"))
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) live.innerHTML = html; })
        .catch(function () {});
    }, 15000);
  }
})();
