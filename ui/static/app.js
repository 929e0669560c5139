// Lotline's own small script. Progressive enhancement only: every page works without it.
(function () {
  "use strict";
  // Inbox filters: switching a tab submits the filter form at once.
  document.querySelectorAll(".tabs input[type=radio]").forEach(function (radio) {
    radio.addEventListener("change", function () { radio.form.submit(); });
  });
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
})();
