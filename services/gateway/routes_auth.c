/*
 * Authentication routes: admin login (form-urlencoded, as existing frontends and
 * Swagger UI's OAuth2 password flow send it, or JSON), OTP login, and password
 * change. Shapes and ranges are validated here; vap-auth checks credentials,
 * throttles, and issues tokens.
 */
#include <stdlib.h>
#include <string.h>

#include "auth.pb-c.h"
#include "err.h"
#include "gateway.h"
#include "http.h"
#include "log.h"
#include <sodium.h>

#define USERNAME_MAX 64  /* characters; a UTF-8 character is at most 4 bytes */
#define PASSWORD_MAX 128

/* Replies 200 {"access_token","token_type":"bearer","expires_in"} from a TokenReply. */
static void reply_token(struct gw_req *r, const struct vap_rpc_result *res)
{
    const Vap__TokenReply *t = (const Vap__TokenReply *)res->reply;
    gw_add_header(r, "Cache-Control", "no-store");
    gw_reply_json(r, 200,
                  json_pack("{s:s, s:s, s:i}", "access_token", t->access_token, "token_type",
                            "bearer", "expires_in", (int)t->expires_in));
}

/* Reads username/password from a form body; replies and returns -1 on error. */
static int read_form_credentials(struct gw_req *r, char *user, size_t user_size, char *pass,
                                 size_t pass_size)
{
    struct vap_verrors v = {0};
    char *body = NULL;
    size_t len = 0;
    int rv = vap_http_read_body(r->conn, VAP_HTTP_BODY_MAX, &body, &len);
    if (rv == VAP_ETOOBIG) {
        gw_reply_too_large(r);
        return -1;
    }
    if (rv != 0) {
        gw_reply_error(r, 400, "Could not read the request body");
        return -1;
    }
    int un = vap_http_form_field(body, len, "username", user, user_size);
    int pn = vap_http_form_field(body, len, "password", pass, pass_size);
    free(body);
    if (un == -1 || un == 0)
        vap_verrors_add(&v, "username", "field required", "value_error.missing");
    else if (un < 0 || vap_utf8_length(user, (size_t)un) > USERNAME_MAX)
        vap_verrors_add(&v, "username", "length must be between 1 and 64",
                        "value_error.any_str.length");
    if (pn == -1 || pn == 0)
        vap_verrors_add(&v, "password", "field required", "value_error.missing");
    else if (pn < 0 || vap_utf8_length(pass, (size_t)pn) > PASSWORD_MAX)
        vap_verrors_add(&v, "password", "length must be between 1 and 128",
                        "value_error.any_str.length");
    if (vap_verrors_any(&v)) {
        gw_reply_validation(r, &v);
        return -1;
    }
    return 0;
}

void gw_route_login_admin(struct gw_req *r)
{
    Vap__LoginAdminRequest in = VAP__LOGIN_ADMIN_REQUEST__INIT;
    struct vap_rpc_result res;
    char user[4 * USERNAME_MAX + 1], pass[4 * PASSWORD_MAX + 1];
    json_t *body = NULL;
    int rv;

    if (r->ri->content_length > VAP_HTTP_BODY_MAX) {
        gw_reply_too_large(r);
        return;
    }
    if (vap_http_content_type_is(r->conn, "application/x-www-form-urlencoded")) {
        if (read_form_credentials(r, user, sizeof(user), pass, sizeof(pass)) != 0)
            return;
        in.username = user;
        in.password = pass;
    } else {
        struct vap_verrors v = {0};
        const char *u = NULL, *p = NULL;
        if (gw_read_json_body(r, &body) != 0)
            return;
        vap_json_string_field(body, "username", 1, USERNAME_MAX, 1, &u, NULL, &v);
        vap_json_string_field(body, "password", 1, PASSWORD_MAX, 1, &p, NULL, &v);
        if (vap_verrors_any(&v)) {
            json_decref(body);
            gw_reply_validation(r, &v);
            return;
        }
        in.username = (char *)u;
        in.password = (char *)p;
    }
    in.client_addr = r->client_addr;
    rv = vap_rpc_call(r->gw->auth, "auth.login_admin", r->request_id, &in.base,
                      &vap__token_reply__descriptor, gw_deadline(r, r->gw->cfg.login_timeout_ms),
                      &res);
    sodium_memzero(pass, sizeof(pass));
    json_decref(body);
    if (!gw_reply_rpc_failure(r, rv, &res))
        reply_token(r, &res);
    vap_rpc_result_clear(&res);
}

void gw_route_login_otp(struct gw_req *r)
{
    Vap__LoginOtpRequest in = VAP__LOGIN_OTP_REQUEST__INIT;
    struct vap_verrors v = {0};
    struct vap_rpc_result res;
    const char *code = NULL;
    json_t *body = NULL;
    int rv;

    if (gw_read_json_body(r, &body) != 0)
        return;
    vap_json_string_field(body, "otp_code", 1, 32, 1, &code, NULL, &v);
    if (vap_verrors_any(&v)) {
        json_decref(body);
        gw_reply_validation(r, &v);
        return;
    }
    in.code = (char *)code;
    in.client_addr = r->client_addr;
    rv = vap_rpc_call(r->gw->auth, "auth.login_otp", r->request_id, &in.base,
                      &vap__token_reply__descriptor, gw_deadline(r, r->gw->cfg.rpc_timeout_ms),
                      &res);
    json_decref(body);
    if (!gw_reply_rpc_failure(r, rv, &res))
        reply_token(r, &res);
    vap_rpc_result_clear(&res);
}

void gw_route_change_password(struct gw_req *r)
{
    Vap__ChangePasswordRequest in = VAP__CHANGE_PASSWORD_REQUEST__INIT;
    struct vap_verrors v = {0};
    struct vap_rpc_result res;
    const char *cur = NULL, *next = NULL;
    json_t *body = NULL;
    int rv;

    if (gw_read_json_body(r, &body) != 0)
        return;
    vap_json_string_field(body, "current_password", 1, PASSWORD_MAX, 1, &cur, NULL, &v);
    vap_json_string_field(body, "new_password", 8, PASSWORD_MAX, 1, &next, NULL, &v);
    if (cur && next && strcmp(cur, next) == 0)
        vap_verrors_add(&v, "new_password", "must differ from the current password",
                        "value_error");
    if (vap_verrors_any(&v)) {
        json_decref(body);
        gw_reply_validation(r, &v);
        return;
    }
    in.username = r->claims.sub;
    in.current_password = (char *)cur;
    in.new_password = (char *)next;
    in.client_addr = r->client_addr;
    rv = vap_rpc_call(r->gw->auth, "auth.change_password", r->request_id, &in.base, NULL,
                      gw_deadline(r, r->gw->cfg.login_timeout_ms), &res);
    json_decref(body);
    if (!gw_reply_rpc_failure(r, rv, &res))
        gw_reply_json(r, 200, json_pack("{s:s}", "message", "Password changed successfully"));
    vap_rpc_result_clear(&res);
}
