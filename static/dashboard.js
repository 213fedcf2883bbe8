// Bullpen dashboard: the little behaviour htmx does not do by itself. No inline scripts
// anywhere (the CSP forbids them); everything is wired here with addEventListener.
//  - confirmation <dialog> for hx-confirm (focus starts on Cancel), instead of window.confirm
//  - polled parts ([data-poll]) skip their requests while the tab is hidden, a dialog is
//    open, or the keyboard focus is inside them; they refresh as soon as the tab is visible
//  - toasts from the HX-Trigger "dashboard:toast" event, a banner while the server or
//    Redis is unreachable, a dismiss button for #flash, "/" to focus the search box
//  - focus survives htmx swaps: it goes back to the control that replaced the one used
//    (same id, else same accessible name), else to the swapped part
(function () {
  "use strict";

  var dialog = null;
  var pending = null;

  function openDialog() {
    return dialog !== null && dialog.open;
  }

  function fillQuestion(question, form) {
    // Clean forms ask about the values chosen in the form itself, and name how many jobs its
    // preview counted for exactly those values (else "up to N" / "all").
    if (!form || form.tagName !== "FORM") return question;
    var grace = form.querySelector("[name=grace]");
    var limit = form.querySelector("input[name=limit]");
    var preview = form.querySelector("output.clean-match > span[data-match]");
    var n = limit ? parseInt(limit.value, 10) : 0;
    var limitText = n > 0 ? "up to " + n.toLocaleString("en-US") : "all";
    if (grace) {
      var value = grace.value.trim();
      var option = grace.list ? grace.list.querySelector("option[value=\"" + CSS.escape(value) + "\"]") : null;
      var graceText = value === "" || value === "0" ? "at any time"
        : "more than " + (option ? option.textContent : value) + " ago";
      question = question.replace("{grace}", graceText);
    }
    if (preview && grace && limit
        && preview.getAttribute("data-grace") === grace.value && preview.getAttribute("data-limit") === limit.value) {
      question = question.replace("{match}", "the " + parseInt(preview.getAttribute("data-match"), 10).toLocaleString("en-US"));
    }
    return question.replace("{match}", limitText).replace("{limit}", limitText);
  }

  function swapPreviewProblem(evt) {
    // A preview answered 400 (a grace that is not a duration): show its message in place.
    var target = evt.detail.target;
    if (evt.detail.xhr.status === 400 && target && target.classList && target.classList.contains("clean-match")) {
      evt.detail.shouldSwap = true;
      evt.detail.isError = false;
    }
  }

  function askConfirmation(evt) {
    var question = evt.detail.question;
    if (!question || dialog === null) return;
    evt.preventDefault();
    var elt = evt.detail.elt;
    document.getElementById("confirm-message").textContent = fillQuestion(question, elt);
    document.getElementById("confirm-ok").textContent = elt.getAttribute("data-confirm-label") || "Confirm";
    pending = evt.detail;
    dialog.returnValue = "";
    dialog.showModal();
    document.getElementById("confirm-cancel").focus();
  }

  function closedDialog() {
    var detail = pending;
    pending = null;
    if (detail && dialog.returnValue === "ok") detail.issueRequest(true);
  }

  function skipPoll(evt) {
    var elt = evt.detail.elt;
    if (!elt || !elt.hasAttribute || !elt.hasAttribute("data-poll")) return;
    var focused = elt.querySelector(":focus-visible");
    if (document.visibilityState !== "visible" || openDialog() || focused) evt.preventDefault();
  }

  var toastTimer = null;
  function showToast(evt) {
    var box = document.getElementById("toast");
    if (!box || !evt.detail || !evt.detail.message) return;
    box.textContent = evt.detail.message;
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { box.hidden = true; }, 6000);
  }

  function banner(text) {
    var box = document.getElementById("banner");
    if (!box) return;
    box.textContent = text || "";
    box.hidden = !text;
  }

  function onResponseError(evt) {
    var status = evt.detail.xhr ? evt.detail.xhr.status : 0;
    if (status === 503) banner("Redis is unreachable. Showing the last data received; retrying…");
    else banner("The dashboard server answered " + status + ". Retrying…");
  }

  function onAfterRequest(evt) {
    if (evt.detail.successful) banner("");
  }

  function onKey(evt) {
    if (evt.key !== "/" || evt.ctrlKey || evt.metaKey || evt.altKey) return;
    var t = evt.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    var search = document.getElementById("search-q");
    if (search) {
      evt.preventDefault();
      search.focus();
    }
  }

  function onClick(evt) {
    var close = evt.target.closest && evt.target.closest(".flash-close");
    if (!close) return;
    var flash = close.closest(".flash");
    flash.textContent = "";
    flash.className = "flash";
  }

  var lastFocus = null;
  function rememberFocus() {
    var el = document.activeElement;
    lastFocus = el && el !== document.body ? {id: el.id, label: el.getAttribute("aria-label")} : null;
  }

  function restoreFocus(evt) {
    var now = document.activeElement;
    if (!lastFocus || (now && now !== document.body)) return;
    var found = lastFocus.id ? document.getElementById(lastFocus.id) : null;
    if (!found && lastFocus.label) {
      found = document.querySelector("[aria-label=\"" + CSS.escape(lastFocus.label) + "\"]");
    }
    var target = evt.detail && evt.detail.target;  // after an outerHTML swap: the old node
    if (!found && target) found = target.isConnected ? target : document.getElementById(target.id);
    if (!found) return;
    if (found.tabIndex < 0 && !found.hasAttribute("tabindex")) found.setAttribute("tabindex", "-1");
    found.focus({preventScroll: true});
    lastFocus = null;
  }

  function onVisible() {
    if (document.visibilityState === "visible" && window.htmx) {
      window.htmx.trigger(document.body, "dashboard:refresh");
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    dialog = document.getElementById("confirm");
    if (dialog) dialog.addEventListener("close", closedDialog);
    document.body.addEventListener("htmx:confirm", askConfirmation);
    document.body.addEventListener("htmx:beforeRequest", skipPoll);
    document.body.addEventListener("dashboard:toast", showToast);
    document.body.addEventListener("htmx:responseError", onResponseError);
    document.body.addEventListener("htmx:sendError", function () { banner("The dashboard server is unreachable. Retrying…"); });
    document.body.addEventListener("htmx:afterRequest", onAfterRequest);
    document.body.addEventListener("htmx:beforeSwap", swapPreviewProblem);
    document.body.addEventListener("htmx:beforeSwap", rememberFocus);
    document.body.addEventListener("htmx:afterSettle", restoreFocus);
    document.addEventListener("keydown", onKey);
    document.addEventListener("click", onClick);
    document.addEventListener("visibilitychange", onVisible);
  });
})();
