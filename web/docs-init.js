/*
 * Starts Swagger UI on /docs (web/docs.html). Kept out of the HTML so the page runs under
 * a Content-Security-Policy of script-src 'self' (no inline script). Needs
 * /vendor/swagger-ui/swagger-ui-bundle.js loaded first; reads the spec from /openapi.json.
 */
(function () {
    "use strict";

    var root = document.getElementById("swagger-ui");
    document.body.style.margin = "0";

    if (typeof window.SwaggerUIBundle !== "function") {
        root.textContent = "Swagger UI assets are missing (run scripts/install-web-assets.sh). " +
            "The API description itself is at /openapi.json.";
        return;
    }

    /*
     * persistAuthorization keeps the Authorize dialog's state in localStorage. For the
     * OAuth2 password flow that state would include the admin's password in clear text;
     * keep only the token (and the username, for the dialog's "Authorized as" line).
     */
    function ForgetPasswordPlugin() {
        return {
            statePlugins: {
                auth: {
                    wrapActions: {
                        authorizeOauth2: function (next) {
                            return function (payload) {
                                if (payload && payload.auth) {
                                    var auth = Object.assign({}, payload.auth);
                                    delete auth.password;
                                    delete auth.clientSecret;
                                    payload = Object.assign({}, payload, { auth: auth });
                                }
                                return next(payload);
                            };
                        }
                    }
                }
            }
        };
    }

    window.ui = window.SwaggerUIBundle({
        url: "/openapi.json",
        dom_id: "#swagger-ui",
        layout: "BaseLayout",
        presets: [window.SwaggerUIBundle.presets.apis],
        plugins: [window.SwaggerUIBundle.plugins.DownloadUrl, ForgetPasswordPlugin],
        deepLinking: true,
        // Keep the token from the Authorize dialog across reloads (browser localStorage).
        persistAuthorization: true,
        tryItOutEnabled: true,
        displayRequestDuration: true,
        displayOperationId: false,
        defaultModelsExpandDepth: 1,
        docExpansion: "list",
        filter: true,
        showExtensions: false,
        // Never ask validator.swagger.io (an external host) to badge the spec.
        validatorUrl: "none",
        // Ignore ?url= / ?configUrl= so a link cannot point this page at another spec.
        queryConfigEnabled: false
    });
}());
