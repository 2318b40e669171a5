// Swagger UI for /docs, started from a file so the page's CSP needs no inline script.
"use strict";
window.ui = SwaggerUIBundle({
  url: document.getElementById("swagger-ui").dataset.specUrl,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null, // the default badge calls an outside validator
  presets: [SwaggerUIBundle.presets.apis],
});
