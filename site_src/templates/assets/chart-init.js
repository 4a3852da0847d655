/* The runnable's measured curve on a course page: the paper's idea against its ablation, drawn
   with the vendored Chart.js from the JSON the build put in data-curve (results/<id>.json). */
(function () {
  "use strict";
  function draw(root) {
    if (!window.Chart) return;
    root.querySelectorAll(".kb-chart[data-curve]").forEach(function (box) {
      if (box.dataset.drawn) return;
      var c = JSON.parse(box.dataset.curve);
      var fg = getComputedStyle(document.body).getPropertyValue("--md-default-fg-color") || "#222";
      var x = c.idea.map(function (_, i) { return c.x + " " + (i + 1); });
      new window.Chart(box.querySelector("canvas"), {
        type: "line",
        data: { labels: x, datasets: [
          { label: "idea · 論文的想法", data: c.idea, borderColor: "#2e7d32", backgroundColor: "#2e7d32" },
          { label: c.ablation_name + " · 消融", data: c.ablation, borderColor: "#c62828",
            backgroundColor: "#c62828", borderDash: [6, 4] }] },
        options: { responsive: true, maintainAspectRatio: false, animation: false,
          color: fg, plugins: { title: { display: true, color: fg,
            text: c.metric + " (" + c.gate + ") · " + c.device + " · " + c.commit + " · " + c.date } },
          scales: { x: { ticks: { color: fg } }, y: { ticks: { color: fg } } } }
      });
      box.dataset.drawn = "1";
    });
  }
  if (window.document$) window.document$.subscribe(function (doc) { draw(doc.body); });
  else document.addEventListener("DOMContentLoaded", function () { draw(document.body); });
})();
