/*
 * Starts ReDoc on /redoc (web/redoc.html). Kept out of the HTML so the page runs under a
 * Content-Security-Policy of script-src 'self' (no inline script). Needs
 * /vendor/redoc/redoc.standalone.js loaded first; reads the spec from /openapi.json.
 * Fonts are system stacks so nothing is fetched from a font CDN.
 */
(function () {
    "use strict";

    var root = document.getElementById("redoc-container");
    var sans = "system-ui, -apple-system, \"Segoe UI\", Roboto, \"Helvetica Neue\", Arial, sans-serif";
    var mono = "ui-monospace, SFMono-Regular, Menlo, Consolas, \"Liberation Mono\", monospace";
    document.body.style.margin = "0";

    if (!window.Redoc || typeof window.Redoc.init !== "function") {
        root.textContent = "ReDoc assets are missing (run scripts/install-web-assets.sh). " +
            "The API description itself is at /openapi.json.";
        return;
    }

    window.Redoc.init("/openapi.json", {
        expandResponses: "200,201",
        jsonSampleExpandLevel: 3,
        hideHostname: true,
        pathInMiddlePanel: true,
        requiredPropsFirst: true,
        sortPropsAlphabetically: false,
        theme: {
            typography: {
                fontFamily: sans,
                headings: { fontFamily: sans },
                code: { fontFamily: mono }
            }
        }
    }, root, function (err) {
        if (err) {
            root.textContent = "Could not load /openapi.json: " + (err.message || err);
        }
    });
}());
