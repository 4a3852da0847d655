/* The lineage explorer (lineage.md): the whole graph, laid out by kb/site/explorer.py, drawn with
   the vendored cytoscape, which is loaded only on the page that has #kb-explorer.
   Labels keep one size on screen whatever the zoom (LABEL_PX), so they can be read at "Fit";
   concepts are hidden until asked for (papers then close up, using the layout's y2). */
(function () {
  "use strict";
  var LABEL_PX = 13, CONCEPT_PX = 11, NODE_PX = 10;

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = src;
      s.onload = resolve;
      s.onerror = function () { reject(new Error("cannot load " + src)); };
      document.head.appendChild(s);
    });
  }

  function style(types, zoom) {
    var fg = getComputedStyle(document.body).getPropertyValue("--md-default-fg-color").trim() || "#333";
    var rules = [
      { selector: "node", style: { label: "data(short)", "font-size": function () { return LABEL_PX / zoom(); },
        "text-valign": "center", "text-halign": "right", "text-margin-x": function () { return 4 / zoom(); },
        width: function () { return Math.max(12, NODE_PX / zoom()); },
        height: function () { return Math.max(12, NODE_PX / zoom()); },
        "background-color": "#3f51b5", color: fg, "min-zoomed-font-size": 0 } },
      { selector: "node.concept", style: { "font-size": function () { return CONCEPT_PX / zoom(); },
        width: function () { return Math.max(7, 0.6 * NODE_PX / zoom()); },
        height: function () { return Math.max(7, 0.6 * NODE_PX / zoom()); }, "background-color": "#9e9e9e" } },
      { selector: "edge", style: { width: function () { return Math.max(1, 1.4 / zoom()); },
        "curve-style": "bezier", "target-arrow-shape": "triangle", "arrow-scale": 0.8,
        "line-color": "#999", "target-arrow-color": "#999", opacity: 0.8 } },
      { selector: ".faded", style: { opacity: 0.08 } },
      { selector: "node.focus", style: { "border-width": function () { return 3 / zoom(); },
        "border-color": "#ff9800", "font-weight": "bold" } },
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
    var byId = {};
    data.nodes.forEach(function (n) { byId[n.id] = n; });
    var elements = data.nodes.map(function (n) {
      return { group: "nodes", classes: n.kind, position: { x: n.x, y: n.y },
        data: { id: n.id, label: n.label, short: n.short, kind: n.kind, year: n.year, track: n.track,
          url: n.url, paper: n.paper || "" } };
    }).concat(data.edges.map(function (e, i) {
      return { group: "edges", data: { id: "e" + i, source: e.source, target: e.target, type: e.type,
        en: e.en, zh: e.zh } };
    }));
    var cy;
    var zoom = function () { return cy ? cy.zoom() : 1; };
    cy = window.cytoscape({ container: root.querySelector(".kb-explorer__graph"), elements: elements,
      layout: { name: "preset" }, style: style(data.types, zoom), minZoom: 0.05, maxZoom: 4 });
    window.kbExplorer = cy;
    var pending = false;
    cy.on("zoom", function () {          // labels keep their size on screen
      if (pending) return;
      pending = true;
      requestAnimationFrame(function () { pending = false; cy.style().update(); });
    });
    form.elements.from.value = data.years[0]; form.elements.to.value = data.years[1];
    form.elements.from.min = form.elements.to.min = data.years[0];
    form.elements.from.max = form.elements.to.max = data.years[1];
    Array.prototype.forEach.call(form.querySelectorAll('input[name="track"]'), function (i) {
      if (data.tracks.indexOf(i.value) < 0) i.parentNode.hidden = true;
    });
    Array.prototype.forEach.call(form.querySelectorAll('input[name="type"]'), function (i) {
      if (!data.types[i.value]) i.parentNode.hidden = true;
    });
    var focusOn = null;   // the node whose lineage alone is shown (focus mode), or null

    function lineageOf(node) {
      var start = node.union(cy.nodes().filter(function (n) { return n.data("paper") === node.id(); }));
      var up = node.predecessors(), down = start.successors();
      // A concept's paper counts too: b built on a/y, so b also came from a.
      var owners = {};
      up.nodes(".concept").forEach(function (n) { owners[n.data("paper")] = true; });
      up = up.union(cy.nodes().filter(function (n) { return owners[n.id()]; }));
      return { start: start, up: up, down: down };
    }

    function filter() {
      var types = checked(form, "type"), tracks = checked(form, "track");
      var lo = +form.elements.from.value || -Infinity, hi = +form.elements.to.value || Infinity;
      var concepts = form.elements.concepts.checked;
      var keep = focusOn ? (function (l) { return l.start.union(l.up).union(l.down); })(lineageOf(focusOn)) : null;
      cy.batch(function () {
        cy.nodes().forEach(function (n) {
          var d = n.data();
          var show = tracks.indexOf(d.track) >= 0 && d.year >= lo && d.year <= hi &&
            (concepts || d.kind === "paper" || (keep && focusOn.id() === d.id)) && (!keep || keep.has(n));
          n.toggleClass("hidden", !show);
          if (d.kind === "paper") n.position("y", concepts ? byId[d.id].y : byId[d.id].y2);
        });
        cy.edges().forEach(function (e) {
          e.toggleClass("hidden", types.indexOf(e.data("type")) < 0 ||
            e.source().hasClass("hidden") || e.target().hasClass("hidden"));
        });
      });
    }

    function fit() { cy.stop(); cy.fit(cy.elements(":visible"), 30); }

    function clear() {
      cy.elements().removeClass("faded focus");
      panel.textContent = "Click a node, or find one by name. · 點選節點，或依名稱尋找。";
    }

    function select(node) {
      var l = lineageOf(node);
      cy.batch(function () {
        cy.elements().addClass("faded").removeClass("focus");
        l.start.union(l.up).union(l.down).removeClass("faded");
        node.addClass("focus");
      });
      var a = document.createElement("a");
      a.href = node.data("url");
      a.className = "kb-explorer__open";
      a.textContent = "Open " + node.data("label") + " (" + node.data("year") + ") →";
      panel.textContent = "";
      panel.appendChild(a);
      panel.appendChild(document.createTextNode(" · came from " + l.up.nodes().length + ", led to " +
        l.down.nodes().length + " · 來源 " + l.up.nodes().length + "、影響 " + l.down.nodes().length));
      form.elements.focus.disabled = false;
      root.dataset.selected = node.id();
    }

    function find() {
      var q = form.elements.find.value.trim().toLowerCase();
      if (!q) return;
      var hit = cy.nodes().filter(function (n) { return n.id() === q; }).first();
      if (!hit.length) hit = cy.nodes().filter(function (n) {
        return n.id().indexOf(q) >= 0 || (n.data("label") || "").toLowerCase().indexOf(q) >= 0;
      }).first();
      if (!hit.length) { panel.textContent = "No node matches “" + q + "”. · 找不到符合的節點。"; return; }
      if (hit.hasClass("concept") && !form.elements.concepts.checked) {
        form.elements.concepts.checked = true;
        filter();
      }
      select(hit);
      cy.stop();
      cy.center(hit);
    }

    function toggleFocus() {
      var chosen = root.dataset.selected && cy.$id(root.dataset.selected);
      focusOn = focusOn ? null : (chosen && chosen.length ? chosen : null);
      root.dataset.focus = focusOn ? focusOn.id() : "";
      form.elements.focus.textContent = focusOn ? "Show all · 顯示全部" : "Focus · 聚焦";
      filter();
      fit();
      if (focusOn) select(focusOn);
    }

    cy.on("tap", "node", function (evt) { select(evt.target); });
    cy.on("tap", function (evt) { if (evt.target === cy) clear(); });
    cy.on("dbltap", "node", function (evt) { window.location.href = evt.target.data("url"); });
    cy.on("mouseover", "edge", function (evt) {
      var e = evt.target;
      panel.textContent = e.data("en") + " · " + e.data("zh");
    });
    cy.on("mouseover", "node", function (evt) {
      evt.target.scratch("_title", true);
      root.querySelector(".kb-explorer__graph").title = evt.target.data("label") + " (" + evt.target.data("year") + ")";
    });
    form.addEventListener("change", function (evt) { if (evt.target.name !== "find") filter(); });
    form.addEventListener("input", function (evt) { if (evt.target.name !== "find") filter(); });
    form.elements.fit.addEventListener("click", fit);
    form.elements.focus.addEventListener("click", toggleFocus);
    form.elements.go.addEventListener("click", find);
    form.elements.find.addEventListener("keydown", function (evt) { if (evt.key === "Enter") find(); });
    filter();
    fit();
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
