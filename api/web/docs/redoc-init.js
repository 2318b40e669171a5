// Redoc for /redoc, started from a file so the page's CSP needs no inline script.
"use strict";
const element = document.getElementById("redoc");
Redoc.init(element.dataset.specUrl, { hideDownloadButton: false }, element);
