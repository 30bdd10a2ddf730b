"""Least privilege in the database: vap-auth and vap-usage log in as roles of their own
(deploy/db-roles.sh), each owning only its schema; neither can read the other's tables,
create schemas or temporary tables. An older install, whose schemas the database owner
holds, moves to the service roles by running the script again, keeping its data."""
import secrets

import pytest

from stack import PgCluster, Stack
from test_agents import admin_token, call, new_otp, otp_token


@pytest.fixture(scope="module")
def cluster():
    c = PgCluster()
    yield c
    c.destroy()


def as_role(cluster, role, sql):
    password = {"vap_auth": cluster.auth_password, "vap_usage": cluster.usage_password}[role]
    return cluster.psql(sql, user=role, password=password, check=False)


def test_each_service_owns_only_its_schema(cluster):
    s = Stack(cluster).start()
    try:
        admin = admin_token(s.url)
        otp = new_otp(s.url, admin, 2)
        token = otp_token(s.url, otp["code"])
        assert call(s.url, "POST", "/api/agents/access", {"agent_type": "hospital"}, token)[0] == 200
        owners = cluster.psql("SELECT nspname || '=' || nspowner::regrole FROM pg_namespace "
                              "WHERE nspname IN ('auth', 'usage') ORDER BY 1",
                              ).stdout
        assert "auth=vap_auth" in owners and "usage=vap_usage" in owners, owners
        users = cluster.psql("SELECT DISTINCT usename FROM pg_stat_activity "
                             "WHERE datname = 'vap' AND usename <> 'postgres'").stdout.split()
        assert set(users) == {"vap_auth", "vap_usage"}, users

        for role, sql in [("vap_usage", "SELECT count(*) FROM auth.otps"),
                          ("vap_usage", "SELECT count(*) FROM auth.admins"),
                          ("vap_auth", "SELECT count(*) FROM usage.accesses"),
                          ("vap_auth", "INSERT INTO usage.accesses (outbox_seq, agent_type, "
                                       "accessed_at) VALUES (999999, 'x', now())")]:
            r = as_role(cluster, role, sql)
            assert r.returncode != 0 and "permission denied" in r.stderr, (role, sql, r.stderr)
        for role in ("vap_auth", "vap_usage"):
            for sql in ("CREATE SCHEMA evil", "CREATE TEMP TABLE t (x int)",
                        "CREATE TABLE public.t (x int)"):
                r = as_role(cluster, role, sql)
                assert r.returncode != 0 and "permission denied" in r.stderr, (role, sql, r.stderr)
        # Its own schema, on the other hand, each may use.
        assert as_role(cluster, "vap_auth", "SELECT count(*) FROM auth.otps").returncode == 0
        assert as_role(cluster, "vap_usage", "SELECT count(*) FROM usage.accesses").returncode == 0
    finally:
        s.stop()


def test_an_install_owned_by_the_database_owner_moves_to_the_service_roles():
    c = PgCluster(service_roles=False)
    try:
        # The old way: every service as the database's owner, which then owns the schemas.
        key = secrets.token_hex(32)
        old = Stack(c, extra_env={"DATABASE_URL_AUTH": c.url, "DATABASE_URL_USAGE": c.url,
                                  "SECRET_KEY": key}).start()
        admin = admin_token(old.url)
        otp = new_otp(old.url, admin, 3)
        token = otp_token(old.url, otp["code"])
        assert call(old.url, "POST", "/api/agents/access", {"agent_type": "hospital"}, token)[0] == 200
        old.stop()
        assert "vap" == c.psql("SELECT nspowner::regrole FROM pg_namespace "
                               "WHERE nspname = 'auth'").stdout.split()[-1]
        c.create_service_roles()
        new = Stack(c, extra_env={"SECRET_KEY": key}).start()
        try:
            admin = admin_token(new.url)
            status, otps = call(new.url, "GET", "/api/otps/", token=admin)
            assert status == 200 and any(o["code"] == otp["code"] for o in otps), otps
            assert call(new.url, "POST", "/api/agents/access", {"agent_type": "hospital"},
                        otp_token(new.url, otp["code"]))[0] == 200
            status, usage = call(new.url, "GET", "/api/agents/usage", token=admin)
            assert status == 200
        finally:
            new.stop()
    finally:
        c.destroy()
