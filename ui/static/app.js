// Lotline's own small script. Progressive enhancement only: every page works without it.
(function () {
  "use strict";
  var store = null;
  try { store = window.sessionStorage; } catch (e) { store = null; }
  // Inbox filters: switching a tab submits the filter form at once. The focus comes back to the
  // chosen tab after the reload, so someone moving through the tabs with the arrow keys stays
  // where they were instead of starting again from the top of the page.
  var focusKey = "lotline-focus-tab";
  document.querySelectorAll(".tabs input[type=radio]").forEach(function (radio) {
    radio.addEventListener("change", function () {
      if (store) { store.setItem(focusKey, radio.name); }
      radio.form.submit();
    });
  });
  var tabName = store && store.getItem(focusKey);
  if (tabName) {
    store.removeItem(focusKey);
    var chosenTab = Array.prototype.filter.call(
      document.querySelectorAll(".tabs input[type=radio]:checked"),
      function (r) { return r.name === tabName; })[0];
    if (chosenTab) { chosenTab.focus(); }
  }
  // Decision form: ask for the password only when the chosen outcome signs, and mark the fields
  // the chosen outcome needs (e.g. a reason to reject) as required before the form is sent.
  var form = document.getElementById("decision-form");
  if (form) {
    var box = document.getElementById("sign-box");
    var password = box ? box.querySelector("input[type=password]") : null;
    var initiallyRequired = {};
    form.querySelectorAll("[name^=field_]").forEach(function (el) {
      initiallyRequired[el.name] = el.required;
    });
    var update = function () {
      var chosen = form.querySelector("input[name=outcome]:checked");
      if (box && password) {
        var signs = chosen && chosen.dataset.signs === "yes";
        box.hidden = chosen ? !signs : false;
        password.required = !!signs;
      }
      var needed = chosen && chosen.dataset.requires ? chosen.dataset.requires.split(",") : [];
      form.querySelectorAll("[name^=field_]").forEach(function (el) {
        el.required = initiallyRequired[el.name] || needed.indexOf(el.name.slice(6)) >= 0;
      });
    };
    form.querySelectorAll("input[name=outcome]").forEach(function (r) { r.addEventListener("change", update); });
    update();
  }
  // New request: k only matters for "k different approvers".
  var rule = document.getElementById("rule");
  var kField = document.getElementById("k-field");
  if (rule && kField) {
    var showK = function () { kField.hidden = rule.value !== "k_of_n"; };
    rule.addEventListener("change", showK);
    showK();
  }
  // New change request: each action row shows the fields its kind uses (part number for the
  // supplier list, a revision for parts and documents, a status for suppliers); a row that does
  // nothing shows only its kind. Hidden fields are disabled so a value typed before switching the
  // kind is not sent.
  document.querySelectorAll("[data-action-row]").forEach(function (row) {
    var kind = row.querySelector("[data-action-kind]");
    if (!kind) { return; }
    var showFields = function () {
      row.querySelectorAll("[data-for]").forEach(function (box) {
        var used = box.dataset.for.split(" ").indexOf(kind.value) >= 0;
        box.hidden = !used;
        box.querySelectorAll("input, select").forEach(function (el) { el.disabled = !used; });
      });
    };
    kind.addEventListener("change", showFields);
    showFields();
  });
  // Forms that start something: one click, one request (the button waits for the answer).
  document.querySelectorAll("form[data-submit-once]").forEach(function (f) {
    f.addEventListener("submit", function () {
      f.querySelectorAll("button[type=submit]").forEach(function (b) {
        b.disabled = true;
        b.dataset.label = b.textContent;
        b.textContent = document.body.dataset.sending || "Sending…";  // in the reader's language
      });
    });
  });
  window.addEventListener("pageshow", function () {  // back to a page whose button waited
    document.querySelectorAll("form[data-submit-once] button[type=submit]").forEach(function (b) {
      b.disabled = false;
      if (b.dataset.label) { b.textContent = b.dataset.label; }
    });
  });
  // A page waiting for something that happens in a moment (a change being registered, its next
  // task being opened) reloads itself every few seconds, and after a while stops and says so.
  var waitKey = "lotline-waiting:" + location.pathname;
  var waiting = document.querySelector("[data-reload-after]");
  if (waiting) {
    var since = Number(store && store.getItem(waitKey)) || Date.now();
    if (store) { store.setItem(waitKey, String(since)); }
    var limit = Number(waiting.dataset.reloadGivesUp || 60) * 1000;
    if (Date.now() - since > limit) {
      if (store) { store.removeItem(waitKey); }
      var gaveUp = document.getElementById("reload-gave-up");
      if (gaveUp) { gaveUp.hidden = false; }
    } else {
      window.setTimeout(function () { location.reload(); },
        Number(waiting.dataset.reloadAfter || 2) * 1000);
    }
  } else if (store) {
    store.removeItem(waitKey);
  }
  // A supply process's page, while the process runs: every few seconds it asks the server for
  // the parts that change (step, open tasks, timeline) and puts the new ones in place, so a task
  // opened a moment after a receipt shows up without a reload (and what is typed in a form stays).
  // It stops when the process ends (the new open tasks no longer say where to ask) or the session
  // does (the answer is the login page), and skips its turn while the tab is hidden.
  var swapPart = function (shown, fresh) {
    if (shown.outerHTML === fresh.outerHTML) { return; }
    Array.prototype.slice.call(shown.attributes).forEach(function (a) {
      if (!fresh.hasAttribute(a.name)) { shown.removeAttribute(a.name); }
    });
    Array.prototype.slice.call(fresh.attributes).forEach(function (a) {
      shown.setAttribute(a.name, a.value);
    });
    if (shown.innerHTML !== fresh.innerHTML) { shown.innerHTML = fresh.innerHTML; }
  };
  var refreshProgress = function () {
    var source = document.querySelector("[data-progress-url]");
    if (!source) { return; }
    var every = Number(source.dataset.progressEvery || 5) * 1000;
    if (document.hidden) { window.setTimeout(refreshProgress, every); return; }
    fetch(source.dataset.progressUrl, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.redirected) { return null; }
        if (!response.ok) { throw new Error("progress: HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        fresh.querySelectorAll("[data-progress-part][id]").forEach(function (part) {
          var shown = document.getElementById(part.id);
          if (shown) { swapPart(shown, part); }
        });
        window.setTimeout(refreshProgress, every);
      })
      .catch(function () { window.setTimeout(refreshProgress, every * 4); });
  };
  var progressSource = document.querySelector("[data-progress-url]");
  if (progressSource && window.fetch && window.DOMParser) {
    window.setTimeout(refreshProgress, Number(progressSource.dataset.progressEvery || 5) * 1000);
  }
})();
