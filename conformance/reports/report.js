// Inlined into report.html and the compare matrix. Plain JS, no dependencies, works from file://.
(function () {
  "use strict";
  var bar = document.getElementById("filters");
  if (!bar) return;

  function checked(name) {
    var boxes = bar.querySelectorAll('input[name="' + name + '"]');
    if (!boxes.length) return null; // this page has no such filter
    var set = {};
    boxes.forEach(function (b) { if (b.checked) set[b.value] = true; });
    return set;
  }

  function apply() {
    var verdicts = checked("verdict"), versions = checked("version");
    var sectionSel = document.getElementById("f-section");
    var section = sectionSel ? sectionSel.value : "";
    var textBox = document.getElementById("f-text");
    var text = textBox ? textBox.value.trim().toLowerCase() : "";
    var diffBox = document.getElementById("f-diff");
    var onlyDiff = diffBox ? diffBox.checked : false;
    var counts = {};

    document.querySelectorAll(".f").forEach(function (el) {
      var d = el.dataset;
      var ok = (!verdicts || verdicts[d.verdict] || (d.verdicts && d.verdicts.split(" ").some(function (v) { return verdicts[v]; })))
        && (!versions || versions[d.version])
        && (!section || d.section === section)
        && (!onlyDiff || d.differs === "1")
        && (!text || el.textContent.toLowerCase().indexOf(text) >= 0);
      el.hidden = !ok;
      var kind = d.kind || "rows";
      counts[kind] = counts[kind] || [0, 0];
      counts[kind][1] += 1;
      if (ok) counts[kind][0] += 1;
    });
    // A group (section table, version heading) disappears when the filters leave it empty.
    document.querySelectorAll(".fg").forEach(function (g) {
      g.hidden = !g.querySelector(".f:not([hidden])");
    });
    var shown = document.getElementById("shown");
    if (shown) {
      shown.textContent = Object.keys(counts).sort().map(function (k) {
        return counts[k][0] + " of " + counts[k][1] + " " + k;
      }).join(" \u00b7 ") + " shown";
    }
  }

  // After the user narrows the view, open the groups that still have matches so they are not missed.
  function applyAndOpen() {
    apply();
    document.querySelectorAll("details.group.fg:not([hidden])").forEach(function (d) { d.open = true; });
  }
  bar.addEventListener("input", applyAndOpen);
  bar.addEventListener("change", applyAndOpen);
  bar.querySelectorAll("[data-toggle]").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var open = btn.dataset.toggle === "open";
      document.querySelectorAll(btn.dataset.target).forEach(function (d) { d.open = open; });
    });
  });
  bar.querySelectorAll("[data-reset]").forEach(function (btn) {
    btn.addEventListener("click", function () {
      bar.querySelectorAll("input[type=checkbox]").forEach(function (b) { b.checked = b.defaultChecked; });
      bar.querySelectorAll("select, input[type=search]").forEach(function (s) { s.value = ""; });
      apply();
    });
  });
  // Following a link to a case opens it even when its card is collapsed.
  function reveal() {
    var target = location.hash && document.getElementById(location.hash.slice(1));
    if (target && target.tagName === "DETAILS") target.open = true;
  }
  window.addEventListener("hashchange", reveal);
  reveal();
  apply();
})();
