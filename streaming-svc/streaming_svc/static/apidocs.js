// /api/docs: Swagger UI over the merged document (an external file: the page's CSP has no
// 'unsafe-inline'). "Try it out" sends the page's own cookies, so a signed-in user can call
// GET routes; unsafe methods also need the X-CSRF-Token header (the "csrf" scheme).
(function () {
  "use strict";
  const root = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: false,   // (its links inside the operation buttons are nested controls)
    docExpansion: "none",
    defaultModelsExpandDepth: 0,
  });
})();
