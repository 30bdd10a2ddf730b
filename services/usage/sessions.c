/*
 * Voice session records, reported by the workers (at start and at end) and by a
 * gateway when it loses a worker mid-session. A report is an idempotent upsert keyed by
 * session_id: reports may arrive twice, late or out of order, and the record keeps the
 * earliest start, the first end (with its reason) and the largest totals seen. The
 * access record of the grant the session used gets the session id and duration.
 */
#include <inttypes.h>
#include <stdio.h>

#include "err.h"
#include "log.h"
#include "usage.h"
#include "voice.pb-c.h"

#define SQL_UPSERT                                                                          \
    "WITH s AS (INSERT INTO usage.sessions AS t (session_id, grant_id, otp_id, agent_type,"    \
    "   started_at, ended_at, duration_seconds, audio_in_seconds, audio_out_seconds,"         \
    "   llm_tokens_in, llm_tokens_out, turns, end_reason)"                                    \
    " VALUES ($1, nullif($2, '')::uuid, nullif($3::int8, 0), $4,"                             \
    "   to_timestamp($5::float8 / 1000), to_timestamp(nullif($6::float8, 0) / 1000),"          \
    "   CASE WHEN $6::int8 > 0 THEN ($6::int8 - $5::int8) / 1000.0 END,"                      \
    "   $7, $8, $9, $10, $11, nullif($12, ''))"                                               \
    " ON CONFLICT (session_id) DO UPDATE SET"                                                 \
    "   grant_id = coalesce(t.grant_id, excluded.grant_id),"                                  \
    "   otp_id = coalesce(t.otp_id, excluded.otp_id),"                                        \
    "   started_at = least(t.started_at, excluded.started_at),"                               \
    "   ended_at = coalesce(t.ended_at, excluded.ended_at),"                                  \
    "   duration_seconds = coalesce(t.duration_seconds, excluded.duration_seconds),"          \
    "   audio_in_seconds = greatest(t.audio_in_seconds, excluded.audio_in_seconds),"          \
    "   audio_out_seconds = greatest(t.audio_out_seconds, excluded.audio_out_seconds),"       \
    "   llm_tokens_in = greatest(t.llm_tokens_in, excluded.llm_tokens_in),"                   \
    "   llm_tokens_out = greatest(t.llm_tokens_out, excluded.llm_tokens_out),"                \
    "   turns = greatest(t.turns, excluded.turns),"                                           \
    "   end_reason = coalesce(t.end_reason, excluded.end_reason)"                             \
    " RETURNING grant_id, session_id, duration_seconds)"                                      \
    " UPDATE usage.accesses a SET session_id = s.session_id,"                                 \
    "   duration_seconds = s.duration_seconds FROM s WHERE a.grant_id = s.grant_id"

void usage_session_report(void *user, const struct vap_rpc_request *req,
                          struct vap_rpc_response *resp)
{
    struct usage_ctx *ctx = user;
    const Vap__SessionRecord *in = (const Vap__SessionRecord *)req->body;
    char otp[24], started[24], ended[24], ain[32], aout[32], tin[24], tout[24], turns[16];
    const char *params[12] = {in->session_id, in->grant_id, otp,  in->agent_type,
                              started,        ended,        ain,  aout,
                              tin,            tout,         turns, in->end_reason};
    PGconn *conn = NULL;
    int rv;

    if (!in->session_id[0] || !in->agent_type[0] || in->started_at_ms <= 0 ||
        (in->ended_at_ms != 0 && in->ended_at_ms < in->started_at_ms)) {
        vap_rpc_response_error(resp, 400, "incomplete session record");
        return;
    }
    snprintf(otp, sizeof(otp), "%" PRId64, in->otp_id);
    snprintf(started, sizeof(started), "%" PRId64, in->started_at_ms);
    snprintf(ended, sizeof(ended), "%" PRId64, in->ended_at_ms);
    snprintf(ain, sizeof(ain), "%.3f", in->audio_in_seconds);
    snprintf(aout, sizeof(aout), "%.3f", in->audio_out_seconds);
    snprintf(tin, sizeof(tin), "%" PRId64, in->llm_tokens_in);
    snprintf(tout, sizeof(tout), "%" PRId64, in->llm_tokens_out);
    snprintf(turns, sizeof(turns), "%d", in->turns);
    rv = vap_db_acquire(ctx->db, &conn, req->deadline_ms);
    if (rv == 0) {
        rv = vap_db_exec(conn, req->request_id, SQL_UPSERT, 12, params, NULL);
        vap_db_release(ctx->db, conn);
    }
    if (rv == VAP_EUNAVAIL || rv == VAP_ETIMEDOUT)
        vap_rpc_response_error(resp, 503, "Database unavailable");
    else if (rv != 0)
        vap_rpc_response_error(resp, 500, "Internal error");
}
