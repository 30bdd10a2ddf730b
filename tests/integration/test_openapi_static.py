"""Static checks of web/openapi.json, the document the gateway serves at /openapi.json.

No server and no network: this reads the file and checks it against API.md's list of
operations, so a path added to the contract without its documentation (or a typo in one)
fails here. Runs under pytest, or alone with `python3 tests/integration/test_openapi_static.py`.
"""
import json
import os
import re

SPEC_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "web", "openapi.json")

# Every method + path of API.md (the public contract), and who may call it:
# "public" needs no token, "token" any valid token, "admin" an admin token.
API_OPERATIONS = [
    ("POST", "/api/auth/login/admin", "public"),
    ("POST", "/api/auth/login/otp", "public"),
    ("PUT", "/api/auth/change-password", "admin"),
    ("GET", "/api/otps/", "admin"),
    ("POST", "/api/otps/", "admin"),
    ("GET", "/api/otps", "admin"),
    ("POST", "/api/otps", "admin"),
    ("PUT", "/api/otps/{otp_id}", "admin"),
    ("DELETE", "/api/otps/{otp_id}", "admin"),
    ("GET", "/api/agents/list", "token"),
    ("GET", "/api/agents/config/{agent_id}", "token"),
    ("POST", "/api/agents/access", "token"),
    ("GET", "/api/agents/usage", "admin"),
    ("GET", "/api/agents/traffic", "admin"),
    ("GET", "/api/voice-agents/stream", "token"),
    ("GET", "/api/voice-agents/stream/twilio", "token"),  # Twilio drops query strings
    ("GET", "/healthz", "public"),
    ("GET", "/readyz", "public"),
    ("GET", "/metrics", "public"),
    ("GET", "/docs", "public"),
    ("GET", "/redoc", "public"),
    ("GET", "/openapi.json", "public"),
]

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def load_spec():
    with open(SPEC_PATH, encoding="utf-8") as f:
        return json.load(f)


def operations(spec):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS:
                yield method.upper(), path, op


def resolve(spec, ref):
    assert ref.startswith("#/"), ref
    node = spec
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert part in node, f"unresolved $ref {ref}"
        node = node[part]
    return node


def all_refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from all_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from all_refs(value)


def test_is_openapi_3_1():
    spec = load_spec()
    assert spec["openapi"] == "3.1.0"
    assert spec["info"]["title"] == "Voice Agent Portal API"
    assert spec["info"]["version"]


def test_every_contract_operation_is_documented():
    spec = load_spec()
    documented = {(m, p) for m, p, _ in operations(spec)}
    missing = [(m, p) for m, p, _ in API_OPERATIONS if (m, p) not in documented]
    assert not missing, f"operations of API.md missing from web/openapi.json: {missing}"


def test_no_undocumented_extra_operations():
    spec = load_spec()
    contract = {(m, p) for m, p, _ in API_OPERATIONS}
    extra = [(m, p) for m, p, _ in operations(spec) if (m, p) not in contract]
    assert not extra, f"operations not in API.md (add them to API_OPERATIONS if intended): {extra}"


def test_operation_ids_are_unique_and_tags_known():
    spec = load_spec()
    tags = {t["name"] for t in spec["tags"]}
    assert tags == {"auth", "otps", "agents", "voice", "ops"}
    seen = set()
    for method, path, op in operations(spec):
        assert op.get("operationId"), f"{method} {path} has no operationId"
        assert op["operationId"] not in seen, f"duplicate operationId {op['operationId']}"
        seen.add(op["operationId"])
        assert op.get("tags") and set(op["tags"]) <= tags, f"{method} {path} has unknown tags"


def test_every_ref_resolves():
    spec = load_spec()
    for ref in set(all_refs(spec)):
        resolve(spec, ref)


def test_security_schemes():
    spec = load_spec()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["type"] == "http"
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    password = schemes["OAuth2PasswordBearer"]["flows"]["password"]
    assert password["tokenUrl"] == "/api/auth/login/admin"


def test_protected_operations_require_a_token():
    spec = load_spec()
    ops = {(m, p): op for m, p, op in operations(spec)}
    for method, path, who in API_OPERATIONS:
        op = ops[(method, path)]
        security = op.get("security", spec.get("security", []))
        names = {name for requirement in security for name in requirement}
        if who == "public":
            assert security == [], f"{method} {path} should be public"
        else:
            assert "HTTPBearer" in names, f"{method} {path} should accept a bearer token"
            if not path.startswith("/api/voice-agents/stream"):  # also takes ?token=
                assert {} not in security, f"{method} {path} must not be anonymous"
            responses = op["responses"]
            if not path.startswith("/api/voice-agents/stream"):  # refusals: close codes
                assert "401" in responses, f"{method} {path} should document 401"
            if who == "admin":
                assert "403" in responses, f"{method} {path} should document 403"


def test_error_responses_have_fastapi_shape():
    spec = load_spec()
    schemas = spec["components"]["schemas"]
    assert schemas["HTTPError"]["properties"]["detail"]["type"] == "string"
    item = schemas["ValidationError"]["properties"]["detail"]["items"]
    assert set(resolve(spec, item["$ref"])["required"]) == {"loc", "msg", "type"}
    for name in ("400", "401", "403", "404", "409", "413", "415", "422", "429", "503"):
        found = False
        for _, _, op in operations(spec):
            if name in op["responses"]:
                found = True
        assert found, f"no operation documents {name}"
    too_many = spec["components"]["responses"]["TooManyRequests"]
    assert "Retry-After" in too_many["headers"]
    unauthorized = spec["components"]["responses"]["Unauthorized"]
    assert "WWW-Authenticate" in unauthorized["headers"]


def test_admin_login_accepts_form_and_json():
    spec = load_spec()
    content = spec["paths"]["/api/auth/login/admin"]["post"]["requestBody"]["content"]
    assert "application/x-www-form-urlencoded" in content
    assert "application/json" in content
    token = spec["components"]["schemas"]["Token"]
    assert set(token["required"]) == {"access_token", "token_type", "expires_in"}


def test_list_and_usage_query_parameters():
    spec = load_spec()

    def param_names(path):
        op = spec["paths"][path]["get"]
        names = set()
        for p in op.get("parameters", []):
            if "$ref" in p:
                p = resolve(spec, p["$ref"])
            names.add(p["name"])
        return names

    assert {"active", "limit", "offset"} <= param_names("/api/otps/")
    assert {"active", "limit", "offset"} <= param_names("/api/otps")
    assert {"agent_type", "since", "limit", "offset", "bucket"} <= param_names("/api/agents/usage")


def test_voice_stream_is_a_websocket_upgrade():
    spec = load_spec()
    op = spec["paths"]["/api/voice-agents/stream"]["get"]
    names = {p["name"] for p in op["parameters"] if p.get("in") == "query"}
    assert {"agent_type", "token", "codec", "sample_rate", "protocol", "resume"} <= names
    assert "101" in op["responses"]
    for code in ("4401", "4403", "4404", "4429", "1013"):
        assert code in op["description"], f"close code {code} not described"
    for event in ("session.started", "transcript.final", "agent.interrupted", "session.ended", "input_text", "playback"):
        assert event in op["description"], f"event {event} not described"


def test_path_parameters_are_declared():
    spec = load_spec()
    for method, path, op in operations(spec):
        wanted = set(re.findall(r"{([^}]+)}", path))
        declared = set()
        for p in spec["paths"][path].get("parameters", []) + op.get("parameters", []):
            if "$ref" in p:
                p = resolve(spec, p["$ref"])
            if p["in"] == "path":
                declared.add(p["name"])
        assert wanted == declared, f"{method} {path}: path parameters {wanted} vs declared {declared}"


if __name__ == "__main__":
    failed = 0
    for name, fn in sorted(globals().items()):
        if name.startswith("test_") and callable(fn):
            try:
                fn()
                print(f"ok   {name}")
            except AssertionError as exc:
                failed += 1
                print(f"FAIL {name}: {exc}")
    raise SystemExit(1 if failed else 0)
