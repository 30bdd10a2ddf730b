/*
 * fuzz_protobuf: bytes from a peer service -> protobuf-c decoding of every message type
 * (proto/<name>.proto; the list is generated from protoc-c's headers, fuzz_descriptors.h), and
 * -> the RPC server's envelope handling in common/rpc.c (serve_one: RpcRequest decode,
 * method lookup, body decode with the method's descriptor, the handler, RpcReply pack).
 * The services decode what arrives on nng this way: RPC requests and replies, pub/sub
 * events (revocations.c, sync.c), heartbeats and media-link frames (voice_workers.c,
 * link.c, session.c), session records (report.c).
 *
 * Input: a first line naming the message ("vap.Otp"; "rpc.serve" for the server
 * envelope; a name that matches nothing picks a message by its hash), then the bytes.
 * A message that decodes must pass protobuf_c_message_check and (when it has no unknown
 * fields) survive pack -> unpack -> pack unchanged.
 *
 * common/rpc.c is compiled into this target (#include below) because serve_one is
 * static; the library's copy of rpc.o is then not linked (its transports, rpc_stream.o
 * and rpc_nng.o, are).
 */
#include "fuzz.h"

#include "../../common/rpc.c"

#include "fuzz_descriptors.h"

/* The methods vap-auth and vap-usage serve (services/auth/main.c, services/usage/main.c),
 * with a handler that answers with the decoded body packed again. */
static void echo_handler(void *user, const struct vap_rpc_request *req,
                         struct vap_rpc_response *resp)
{
    (void)user;
    FUZZ_CHECK(req->body != NULL, "handler called without a body");
    FUZZ_CHECK(protobuf_c_message_check(req->body), "decoded request fails its check");
    if (vap_rpc_response_body(resp, req->body) != 0)
        vap_rpc_response_error(resp, 500, "out of memory");
}

static const struct vap_rpc_method methods[] = {
    {"auth.login_admin", &vap__login_admin_request__descriptor, echo_handler, 0},
    {"auth.change_password", &vap__change_password_request__descriptor, echo_handler, 0},
    {"auth.login_otp", &vap__login_otp_request__descriptor, echo_handler, 0},
    {"auth.otp_list", &vap__otp_list_request__descriptor, echo_handler, 0},
    {"auth.otp_create", &vap__otp_create_request__descriptor, echo_handler, 0},
    {"auth.otp_update", &vap__otp_update_request__descriptor, echo_handler, 0},
    {"auth.otp_delete", &vap__otp_delete_request__descriptor, echo_handler, 0},
    {"auth.access", &vap__access_request__descriptor, echo_handler, 0},
    {"auth.outbox", &vap__outbox_request__descriptor, echo_handler, 0},
    {"auth.grant_claim", &vap__grant_claim_request__descriptor, echo_handler, 0},
    {"auth.grant_release", &vap__grant_claim_reply__descriptor, echo_handler, 0},
    {"auth.revocations", &vap__empty__descriptor, echo_handler, 0},
    {"usage.list", &vap__usage_list_request__descriptor, echo_handler, 0},
    {"usage.traffic", &vap__traffic_request__descriptor, echo_handler, 0},
    {"usage.session", &vap__session_record__descriptor, echo_handler, 0},
    {"usage.ping", &vap__empty__descriptor, echo_handler, 0},
    {NULL, NULL, NULL, 0},
};
#define N_METHODS (sizeof(methods) / sizeof(methods[0]) - 1)

static struct vap_rpc_server server;
static struct vap_histogram *seconds[N_METHODS];
static struct vap_counter *errors[N_METHODS];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    vap_log_init("fuzz", VAP_LOG_DEBUG);
    for (size_t i = 0; i < N_METHODS; i++) {
        char labels[96];
        snprintf(labels, sizeof(labels), "method=\"%s\"", methods[i].name);
        seconds[i] = vap_histogram("vap_rpc_server_seconds", "fuzz", labels);
        errors[i] = vap_counter("vap_rpc_server_errors_total", "fuzz", labels);
    }
    server.methods = methods;
    server.seconds = seconds;
    server.errors = errors;
    return 0;
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(*len ? *len : 1);
    FUZZ_CHECK(buf != NULL, "out of memory");
    FUZZ_CHECK(protobuf_c_message_pack(m, buf) == *len, "pack wrote another size than promised");
    return buf;
}

/* Whether m or a message inside it kept unknown fields. */
static int has_unknown(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (m->n_unknown_fields > 0)
        return 1;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *at = (const char *)m + f->offset;
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
            ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *)at;
            for (size_t k = 0; k < n; k++)
                if (has_unknown(arr[k]))
                    return 1;
        } else if (*(ProtobufCMessage *const *)at && has_unknown(*(ProtobufCMessage *const *)at)) {
            return 1;
        }
    }
    return 0;
}

static void one_message(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, data), *again;
    uint8_t *first, *second;
    size_t first_len, second_len;

    if (!m)
        return;
    FUZZ_CHECK(m->descriptor == desc, "decoded with another descriptor");
    FUZZ_CHECK(protobuf_c_message_check(m), "decoded message fails its check");
    if (has_unknown(m)) {
        /* protobuf-c keeps unknown fields as it read them, field number 0 included, and
         * then refuses its own output: a library quirk the services never meet, as none
         * of them packs a message it decoded. */
        protobuf_c_message_free_unpacked(m, NULL);
        return;
    }
    first = pack(m, &first_len);
    again = protobuf_c_message_unpack(desc, NULL, first_len, first);
    FUZZ_CHECK(again != NULL, "a packed message does not decode");
    second = pack(again, &second_len);
    FUZZ_CHECK(first_len == second_len && memcmp(first, second, first_len) == 0,
               "pack -> unpack -> pack changed the bytes");
    free(second);
    free(first);
    protobuf_c_message_free_unpacked(again, NULL);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void serve(const uint8_t *data, size_t len)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    Vap__RpcReply *reply;

    /* Received "now" with a day to spare, so a budget of 0 still reaches the handler:
     * dropping requests that expired while queued is tested end to end
     * (test_usage_faults.py), the decoding paths here. */
    if (serve_one(&server, data, len, vap_now_ms() + 86400000, &out, &out_len) != 0)
        return; /* an envelope that does not decode is dropped */
    reply = vap__rpc_reply__unpack(NULL, out_len, out);
    FUZZ_CHECK(reply != NULL, "the server's own reply does not decode");
    FUZZ_CHECK(reply->status == 200 || reply->status == 400 || reply->status == 501 ||
                   reply->status == 500,
               "unexpected reply status");
    vap__rpc_reply__free_unpacked(reply, NULL);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    const uint8_t *name;
    size_t name_len;
    uint32_t h = 2166136261u;

    if (!fuzz_line(&in, &name, &name_len))
        return 0;
    if (name_len == 9 && memcmp(name, "rpc.serve", 9) == 0) {
        serve(in.p, in.n);
        return 0;
    }
    for (size_t i = 0; i < FUZZ_N_DESCRIPTORS; i++) {
        const char *full = fuzz_descriptors[i]->name;
        if (strlen(full) == name_len && memcmp(full, name, name_len) == 0) {
            one_message(fuzz_descriptors[i], in.p, in.n);
            return 0;
        }
    }
    for (size_t i = 0; i < name_len; i++)
        h = (h ^ name[i]) * 16777619u;
    one_message(fuzz_descriptors[h % FUZZ_N_DESCRIPTORS], in.p, in.n);
    return 0;
}
