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

  // Unsent answers are kept in this browser (localStorage) while the participant works,
  // so a reload or a crashed tab loses nothing; answers the server sent back (after a
  // partial submit) win over the stored copy.
  document.querySelectorAll("form[data-draft-key]").forEach(function (form) {
    var key = form.getAttribute("data-draft-key");
    function fields() { return form.querySelectorAll("input[type=radio], textarea"); }
    function read() {
      try { return JSON.parse(localStorage.getItem(key) || "{}") || {}; } catch (e) { return {}; }
    }
    function save() {
      var draft = {};
      fields().forEach(function (el) {
        if (el.type === "radio") { if (el.checked) draft[el.name] = el.value; }
        else if (el.value) { draft[el.name] = el.value; }
      });
      try { localStorage.setItem(key, JSON.stringify(draft)); } catch (e) { /* storage off */ }
    }
    var draft = read();
    var answered = {};
    fields().forEach(function (el) {
      if (el.type === "radio" && el.checked) answered[el.name] = true;
      if (el.type !== "radio" && el.value) answered[el.name] = true;
    });
    var restored = 0;
    fields().forEach(function (el) {
      if (answered[el.name] || !(el.name in draft)) return;
      if (el.type === "radio" && el.value === draft[el.name]) { el.checked = true; restored += 1; }
      if (el.type !== "radio") { el.value = draft[el.name]; restored += 1; }
    });
    if (restored) {
      var note = document.createElement("p");
      note.className = "muted small";
      note.setAttribute("role", "status");
      note.textContent = "Your earlier answers on this page were restored.";
      form.insertBefore(note, form.firstChild);
    }
    form.addEventListener("change", save);
    form.addEventListener("input", save);
    form.addEventListener("submit", function () {
      // A complete page is accepted by the server: forget the copy. An incomplete one
      // comes back with its errors, so keep the copy for a reload after that.
      var names = {};
      var groups = form.querySelectorAll("input[type=radio]");
      groups.forEach(function (el) { names[el.name] = names[el.name] || el.checked; });
      var complete = Object.keys(names).every(function (n) { return names[n]; });
      if (complete) { try { localStorage.removeItem(key); } catch (e) { /* ignore */ } }
    });
  });

  // After a partial submit, the summary of what is missing takes the focus.
  var summary = document.getElementById("error-summary");
  if (summary) summary.focus();

  // Phones: a bar at the bottom reopens either constitution over the questions.
  var bar = document.getElementById("reopen-bar");
  if (bar && window.HTMLDialogElement) {
    var narrow = window.matchMedia("(max-width: 800px)");
    var showBar = function () { bar.hidden = !narrow.matches; };
    showBar();
    if (narrow.addEventListener) narrow.addEventListener("change", showBar);
    bar.querySelectorAll("button[data-open]").forEach(function (button) {
      button.addEventListener("click", function () {
        var sheet = document.getElementById(button.getAttribute("data-open"));
        if (sheet) sheet.showModal();
      });
    });
    document.querySelectorAll("dialog.sheet").forEach(function (sheet) {
      // A tap on the backdrop closes the sheet too.
      sheet.addEventListener("click", function (event) {
        if (event.target === sheet || event.target.hasAttribute("data-close")) sheet.close();
      });
    });
  }

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
