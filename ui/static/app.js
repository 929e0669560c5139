// Lotline's own small script. Progressive enhancement only: every page works without it.
(function () {
  "use strict";
  // Inbox filters: switching a tab submits the filter form at once.
  document.querySelectorAll(".tabs input[type=radio]").forEach(function (radio) {
    radio.addEventListener("change", function () { radio.form.submit(); });
  });
  // Decision form: ask for the password only when the chosen outcome signs.
  var form = document.getElementById("decision-form");
  var box = document.getElementById("sign-box");
  if (form && box) {
    var password = box.querySelector("input[type=password]");
    var update = function () {
      var chosen = form.querySelector("input[name=outcome]:checked");
      var signs = chosen && chosen.dataset.signs === "yes";
      box.hidden = chosen ? !signs : false;
      password.required = !!signs;
    };
    form.querySelectorAll("input[name=outcome]").forEach(function (r) { r.addEventListener("change", update); });
    update();
  }
})();
