// Value statements: live character counts, clear messages before submitting, and a
// draft kept in this browser so a reload loses nothing. The server checks everything again.
(function () {
  "use strict";

  var done = document.getElementById("participant-done");
  if (done) {
    // Submitted: the draft is no longer needed.
    try { localStorage.removeItem(done.dataset.draftKey); } catch (e) { /* ignore */ }
    return;
  }

  var form = document.getElementById("statements-form");
  if (!form) return;
  var minCount = parseInt(form.dataset.min, 10);
  var maxCount = parseInt(form.dataset.max, 10);
  var minChars = parseInt(form.dataset.minChars, 10);
  var maxChars = parseInt(form.dataset.maxChars, 10);
  var draftKey = form.dataset.draftKey;
  var errorBox = document.getElementById("form-error");
  var boxes = Array.prototype.slice.call(form.querySelectorAll("textarea"));

  function fieldError(box) {
    var n = box.value.trim().length;
    if (n === 0) return box.dataset.required === "1" ? "This statement is required." : "";
    if (n < minChars) return "Please write at least " + minChars + " characters (now " + n + ").";
    if (box.value.length > maxChars) return "Please keep it under " + maxChars + " characters.";
    return "";
  }

  function updateCounter(box) {
    var n = box.value.trim().length;
    var counter = document.getElementById(box.id + "_count");
    counter.textContent = n + " / " + maxChars + " characters" + (n > 0 && n < minChars ? " (at least " + minChars + ")" : "");
    counter.classList.toggle("bad", n > 0 && n < minChars);
  }

  function saveDraft() {
    var values = {};
    boxes.forEach(function (box) { values[box.name] = box.value; });
    try { localStorage.setItem(draftKey, JSON.stringify(values)); } catch (e) { /* ignore */ }
  }

  function restoreDraft() {
    var values = null;
    try { values = JSON.parse(localStorage.getItem(draftKey) || "null"); } catch (e) { values = null; }
    if (!values) return;
    boxes.forEach(function (box) {
      if (!box.value && values[box.name]) box.value = values[box.name];
    });
  }

  function showError(box, message) {
    var slot = document.getElementById(box.id + "_error");
    slot.textContent = message;
    if (message) box.setAttribute("aria-invalid", "true"); else box.removeAttribute("aria-invalid");
  }

  form.addEventListener("submit", function (event) {
    var firstBad = null;
    var filled = 0;
    boxes.forEach(function (box) {
      var message = fieldError(box);
      showError(box, message);
      if (message && !firstBad) firstBad = box;
      if (box.value.trim().length > 0) filled += 1;
    });
    if (!firstBad && (filled < minCount || filled > maxCount)) {
      errorBox.textContent = minCount === maxCount
        ? "Please write " + minCount + " statement" + (minCount === 1 ? "" : "s") + "."
        : "Please write between " + minCount + " and " + maxCount + " statements.";
      firstBad = boxes[0];
    } else if (firstBad) {
      errorBox.textContent = "Some statements need attention; see the messages below each box.";
    }
    if (firstBad) {
      event.preventDefault();
      firstBad.focus();
      return;
    }
    errorBox.textContent = "";
    document.getElementById("statements-submit").disabled = true; // no double submission
  });

  boxes.forEach(function (box) {
    box.addEventListener("input", function () {
      updateCounter(box);
      if (box.getAttribute("aria-invalid") && !fieldError(box)) showError(box, "");
      saveDraft();
    });
  });

  restoreDraft();
  boxes.forEach(updateCounter);
  form.dataset.ready = "1";
})();
