/* The lineage explorer (lineage.md): the whole graph, laid out by kb/explorer.py, drawn with the
   vendored cytoscape, which is loaded only on the page that has #kb-explorer. */
(function () {
  "use strict";

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = src;
      s.onload = resolve;
      s.onerror = function () { reject(new Error("cannot load " + src)); };
      document.head.appendChild(s);
    });
  }

  function style(types) {
    var rules = [
      { selector: "node", style: { label: "data(label)", "font-size": 11, "text-valign": "center", "text-halign": "right",
        "text-margin-x": 4, width: 14, height: 14, "background-color": "#3f51b5", color: "#333" } },
      { selector: "node.concept", style: { width: 8, height: 8, "font-size": 9, "background-color": "#9e9e9e", color: "#666" } },
      { selector: "edge", style: { width: 1.4, "curve-style": "bezier", "target-arrow-shape": "triangle",
        "arrow-scale": 0.8, "line-color": "#999", "target-arrow-color": "#999", opacity: 0.8 } },
      { selector: ".faded", style: { opacity: 0.08 } },
      { selector: "node.focus", style: { "border-width": 3, "border-color": "#ff9800", "font-weight": "bold" } },
      { selector: ".hidden", style: { display: "none" } },
    ];
    Object.keys(types).forEach(function (t) {
      rules.splice(3, 0, { selector: 'edge[type = "' + t + '"]', style: { "line-color": types[t].colour,
        "target-arrow-color": types[t].colour, "line-style": types[t].dash ? "dashed" : "solid" } });
    });
    return rules;
  }

  function checked(form, name) {
    return Array.prototype.filter.call(form.querySelectorAll('input[name="' + name + '"]'),
      function (i) { return i.checked; }).map(function (i) { return i.value; });
  }

  function init(root, data) {
    var form = root.querySelector("form");
    var panel = root.querySelector(".kb-explorer__selection");
    var elements = data.nodes.map(function (n) {
      return { group: "nodes", classes: n.kind, position: { x: n.x, y: n.y },
        data: { id: n.id, label: n.label, kind: n.kind, year: n.year, track: n.track, url: n.url, paper: n.paper || "" } };
    }).concat(data.edges.map(function (e, i) {
      return { group: "edges", data: { id: "e" + i, source: e.source, target: e.target, type: e.type } };
    }));
    var cy = window.cytoscape({ container: root.querySelector(".kb-explorer__graph"), elements: elements,
      layout: { name: "preset" }, style: style(data.types), minZoom: 0.05, maxZoom: 4 });
    window.kbExplorer = cy;
    form.elements.from.value = data.years[0]; form.elements.to.value = data.years[1];
    form.elements.from.min = form.elements.to.min = data.years[0];
    form.elements.from.max = form.elements.to.max = data.years[1];
    Array.prototype.forEach.call(form.querySelectorAll('input[name="track"]'), function (i) {
      if (data.tracks.indexOf(i.value) < 0) i.parentNode.hidden = true;
    });
    Array.prototype.forEach.call(form.querySelectorAll('input[name="type"]'), function (i) {
      if (!data.types[i.value]) i.parentNode.hidden = true;
    });

    function filter() {
      var types = checked(form, "type"), tracks = checked(form, "track");
      var lo = +form.elements.from.value || -Infinity, hi = +form.elements.to.value || Infinity;
      var concepts = form.elements.concepts.checked;
      cy.batch(function () {
        cy.nodes().forEach(function (n) {
          var d = n.data();
          var show = tracks.indexOf(d.track) >= 0 && d.year >= lo && d.year <= hi && (concepts || d.kind === "paper");
          n.toggleClass("hidden", !show);
        });
        cy.edges().forEach(function (e) {
          e.toggleClass("hidden", types.indexOf(e.data("type")) < 0 ||
            e.source().hasClass("hidden") || e.target().hasClass("hidden"));
        });
      });
    }

    function clear() {
      cy.elements().removeClass("faded focus");
      panel.textContent = "Click a node. · 點選節點。";
    }

    function select(node) {
      var start = node.union(cy.nodes().filter(function (n) { return n.data("paper") === node.id(); }));
      var up = node.predecessors(), down = start.successors();
      // A concept's paper counts too: b built on a/y, so b also came from a.
      var owners = {};
      up.nodes(".concept").forEach(function (n) { owners[n.data("paper")] = true; });
      up = up.union(cy.nodes().filter(function (n) { return owners[n.id()]; }));
      cy.batch(function () {
        cy.elements().addClass("faded").removeClass("focus");
        start.union(up).union(down).removeClass("faded");
        node.addClass("focus");
      });
      var a = document.createElement("a");
      a.href = node.data("url");
      a.className = "kb-explorer__open";
      a.textContent = "Open " + node.data("label") + " (" + node.data("year") + ") →";
      panel.textContent = "";
      panel.appendChild(a);
      panel.appendChild(document.createTextNode(" · came from " + up.nodes().length + ", led to " +
        down.nodes().length + " · 來源 " + up.nodes().length + "、影響 " + down.nodes().length));
    }

    cy.on("tap", "node", function (evt) { select(evt.target); });
    cy.on("tap", function (evt) { if (evt.target === cy) clear(); });
    cy.on("dbltap", "node", function (evt) { window.location.href = evt.target.data("url"); });
    form.addEventListener("change", filter);
    form.addEventListener("input", filter);
    form.elements.fit.addEventListener("click", function () { cy.fit(cy.elements(":visible"), 30); });
    filter();
    cy.fit(undefined, 30);
    root.dataset.ready = "true";
  }

  function boot() {
    var root = document.getElementById("kb-explorer");
    if (!root || root.dataset.started) return;
    root.dataset.started = "true";
    Promise.all([
      window.cytoscape ? null : loadScript(root.dataset.cytoscape),
      fetch(root.dataset.graph).then(function (r) { return r.json(); }),
    ]).then(function (res) { init(root, res[1]); }, function (err) {
      root.querySelector(".kb-explorer__selection").textContent = "The explorer could not load: " + err.message;
    });
  }

  if (window.document$) window.document$.subscribe(boot);
  else document.addEventListener("DOMContentLoaded", boot);
})();
