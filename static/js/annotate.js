// Pair screen: keyboard shortcuts, a draft kept in this browser, submit through the API.
// Without JavaScript the form still posts to the page itself.
(function () {
  "use strict";
  var SAVED_KEY = "gcai:annotate:saved";
  var DONE_MESSAGES = {
    submit: "Saved: your judgement on the last pair is recorded.",
    skip: "Skipped: that pair will go to someone else.",
    flag: "Flagged for the researchers. Thank you."
  };

  // The confirmation of the last action, carried across the page change to the next pair.
  (function showSaved() {
    var banner = document.getElementById("saved-banner");
    var message = null;
    try { message = sessionStorage.getItem(SAVED_KEY); sessionStorage.removeItem(SAVED_KEY); } catch (e) { /* ignore */ }
    if (banner && message) { banner.textContent = message; banner.hidden = false; }
  })();

  var form = document.getElementById("annotate-form");
  if (!form) return;
  var touch = window.matchMedia && window.matchMedia("(hover: none) and (pointer: coarse)").matches;

  var reason = document.getElementById("reason");
  var note = document.getElementById("note");
  var errorBox = document.getElementById("form-error");
  var statusBox = document.getElementById("form-status");
  var counter = document.getElementById("reason-count");
  var minLength = parseInt(form.dataset.minLength, 10) || 0;
  var draftKey = form.dataset.draftKey;
  var busy = false;
  var KEYS = { "1": "first", "2": "second", "0": "tie" };

  form.noValidate = true; // our own messages replace the browser's bubbles

  function csrfToken() {
    var field = form.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function chosen() {
    var checked = form.querySelector("input[name=choice]:checked");
    return checked ? checked.value : "";
  }

  function saveDraft() {
    try {
      localStorage.setItem(draftKey, JSON.stringify({ choice: chosen(), reason: reason.value, savedAt: Date.now() }));
    } catch (e) { /* storage full or disabled: the server copy is what counts */ }
  }

  function clearDraft() {
    try { localStorage.removeItem(draftKey); } catch (e) { /* ignore */ }
  }

  function restoreDraft() {
    var draft = null;
    try { draft = JSON.parse(localStorage.getItem(draftKey) || "null"); } catch (e) { draft = null; }
    if (!draft) return;
    var restored = false;
    if (draft.reason && !reason.value) { reason.value = draft.reason; restored = true; }
    if (draft.choice && !chosen()) {
      var radio = document.getElementById("choice-" + draft.choice);
      if (radio) { radio.checked = true; restored = true; }
    }
    if (restored) statusBox.textContent = "Your draft for this pair was restored.";
  }

  function updateCounter() {
    var n = reason.value.trim().length;
    counter.textContent = n < minLength ? n + " / " + minLength + " characters" : n + " characters";
  }

  function markChosen() {
    var value = chosen();
    document.getElementById("response-first").classList.toggle("is-chosen", value === "first");
    document.getElementById("response-second").classList.toggle("is-chosen", value === "second");
  }

  function choose(value) {
    var radio = document.getElementById("choice-" + value);
    if (!radio) return;
    radio.checked = true;
    markChosen();
    saveDraft();
    errorBox.textContent = "";
    reason.focus();
  }

  function validate() {
    if (!chosen()) {
      errorBox.textContent = touch
        ? "Choose which response is better, or a tie."
        : "Choose which response is better (press 1 or 2), or a tie (0).";
      form.querySelector("input[name=choice]").focus();
      return false;
    }
    if (reason.value.trim().length < minLength) {
      errorBox.textContent = "Please explain your choice in at least " + minLength + " characters.";
      reason.focus();
      return false;
    }
    return true;
  }

  function setBusy(value) {
    busy = value;
    form.querySelectorAll("button").forEach(function (b) { b.disabled = value; });
  }

  function detailOf(data, status) {
    if (data && data.detail) return data.detail;
    if (data && typeof data === "object") {
      for (var key in data) {
        if (Array.isArray(data[key]) && data[key].length) return key + ": " + data[key][0];
      }
    }
    if (status === 403 || status === 401) return "Your session has ended. Log in again; your draft is kept.";
    return "Something went wrong (" + status + "). Your draft is kept; try again.";
  }

  function act(kind) {
    if (busy) return;
    if (kind === "submit" && !validate()) return;
    var body = { pair_id: Number(form.dataset.pairId) };
    if (kind === "submit") { body.screen_choice = chosen(); body.reason = reason.value; }
    if (kind === "flag") { body.note = note.value; }
    setBusy(true);
    errorBox.textContent = "";
    statusBox.textContent = "Saving…";
    fetch(form.dataset[kind + "Url"], {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (response.ok) {
          clearDraft();
          try { sessionStorage.setItem(SAVED_KEY, DONE_MESSAGES[kind]); } catch (e) { /* ignore */ }
          statusBox.textContent = "Saved. Loading the next pair…";
          window.location.assign(form.dataset.nextUrl);
          return;
        }
        statusBox.textContent = "";
        errorBox.textContent = detailOf(data, response.status);
        if (data && (data.code === "duplicate" || data.code === "closed")) {
          // Nothing left to do on this pair (another tab finished it): move on.
          clearDraft();
          statusBox.textContent = "Loading the next pair…";
          window.setTimeout(function () { window.location.assign(form.dataset.nextUrl); }, 1500);
          return;
        }
        setBusy(false);
      });
    }).catch(function () {
      statusBox.textContent = "";
      errorBox.textContent = "Could not reach the server. Your draft is kept; try again.";
      setBusy(false);
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var kind = (event.submitter && event.submitter.value) || "submit";
    act(kind);
  });

  form.addEventListener("change", function (event) {
    if (event.target.name === "choice") { markChosen(); saveDraft(); errorBox.textContent = ""; }
  });
  reason.addEventListener("input", function () { updateCounter(); saveDraft(); });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      act("submit");
      return;
    }
    var t = event.target;
    var typing = t.tagName === "TEXTAREA" || t.isContentEditable ||
      (t.tagName === "INPUT" && ["radio", "checkbox", "button", "submit"].indexOf(t.type) === -1);
    if (typing) {
      if (event.key === "Escape") t.blur();
      return; // digits typed into the reason are text, not shortcuts
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (KEYS[event.key]) {
      event.preventDefault();
      choose(KEYS[event.key]);
    }
  });

  // Phones: clip long prompts and responses behind a "Show all" button.
  document.querySelectorAll(".collapsible").forEach(function (section) {
    var body = section.querySelector(".md, .turns");
    if (!body) return;
    var button = document.createElement("button");
    button.type = "button";
    button.className = "expand";
    button.textContent = "Show all";
    button.setAttribute("aria-expanded", "false");
    button.addEventListener("click", function () {
      var open = section.classList.toggle("is-open");
      button.textContent = open ? "Show less" : "Show all";
      button.setAttribute("aria-expanded", open ? "true" : "false");
    });
    section.appendChild(button);
  });
  document.body.classList.add("js-collapse");
  function measure() {
    document.querySelectorAll(".collapsible").forEach(function (section) {
      var body = section.querySelector(".md, .turns");
      // 9.5rem is the clipped height; only longer content gets the button.
      if (body) section.classList.toggle("is-long", body.scrollHeight > 9.5 * 16 + 24);
    });
  }
  measure();
  window.addEventListener("resize", measure);

  restoreDraft();
  markChosen();
  updateCounter();
  form.dataset.ready = "1";
})();
