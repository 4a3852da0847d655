/* Typeset the math pymdownx.arithmatex (generic) leaves as \( … \) and \[ … \], with the vendored KaTeX. */
(function () {
  "use strict";
  function typeset(body) {
    if (!window.renderMathInElement) return;
    window.renderMathInElement(body || document.body, {
      delimiters: [
        { left: "\\(", right: "\\)", display: false },
        { left: "\\[", right: "\\]", display: true },
      ],
      throwOnError: false,
    });
  }
  if (window.document$) window.document$.subscribe(function (doc) { typeset(doc.body); });
  else document.addEventListener("DOMContentLoaded", function () { typeset(document.body); });
})();
