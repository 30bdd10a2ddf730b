#!/bin/sh
# Prints the SQL that gives vap-auth and vap-usage each a database role of its own:
# vap_auth owns schema auth and nothing else, vap_usage owns schema usage and nothing
# else; neither may create schemas, use temporary tables or read the other's tables
# (usage learns of accesses over RPC, never from auth's tables). Idempotent: run it on
# a new database or on one whose schemas another role owns (an older install: ownership
# of the schema and everything in it moves to the service's role).
#
#   deploy/db-roles.sh AUTH_PASSWORD USAGE_PASSWORD | psql -U postgres -d vap
#
# Used by ./portal (private cluster), the integration tests (tests/integration/stack.py)
# and the compose PostgreSQL's init script (deploy/postgres-init.sh). Then point each
# service at its role: DATABASE_URL_AUTH=postgresql://vap_auth@host/vap and
# DATABASE_URL_USAGE=postgresql://vap_usage@host/vap (see docs/SECURITY.md).
set -eu
if [ $# -ne 2 ] || [ -z "$1" ] || [ -z "$2" ]; then
    echo "usage: $0 AUTH_PASSWORD USAGE_PASSWORD | psql -d DATABASE" >&2
    exit 2
fi
quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"; }
cat <<EOF
SELECT 'CREATE ROLE vap_auth LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vap_auth')
\\gexec
SELECT 'CREATE ROLE vap_usage LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vap_usage')
\\gexec
ALTER ROLE vap_auth PASSWORD $(quote "$1");
ALTER ROLE vap_usage PASSWORD $(quote "$2");
DO \$\$
DECLARE
    r record;
    svc record;
BEGIN
    -- Nobody connects or makes temporary tables unless granted; the services only connect.
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO vap_auth, vap_usage', current_database());
    REVOKE CREATE ON SCHEMA public FROM PUBLIC;
    FOR svc IN SELECT * FROM (VALUES ('auth', 'vap_auth'), ('usage', 'vap_usage')) AS v(nsp, role)
    LOOP
        IF NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = svc.nsp) THEN
            EXECUTE format('CREATE SCHEMA %I AUTHORIZATION %I', svc.nsp, svc.role);
        END IF;
        EXECUTE format('ALTER SCHEMA %I OWNER TO %I', svc.nsp, svc.role);
        FOR r IN SELECT c.relname, c.relkind FROM pg_class c
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = svc.nsp AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
                   AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid
                                   AND d.deptype IN ('a', 'i') AND c.relkind = 'S')
        LOOP
            IF r.relkind = 'S' THEN
                EXECUTE format('ALTER SEQUENCE %I.%I OWNER TO %I', svc.nsp, r.relname, svc.role);
            ELSE
                EXECUTE format('ALTER TABLE %I.%I OWNER TO %I', svc.nsp, r.relname, svc.role);
            END IF;
        END LOOP;
    END LOOP;
END
\$\$;
EOF
