#!/bin/sh
# Run once by the postgres image at the first start of an empty data volume
# (/docker-entrypoint-initdb.d/): gives vap-auth and vap-usage their own roles, each
# owning only its schema (deploy/db-roles.sh), with the passwords from the environment.
set -eu
/usr/local/share/vap/db-roles.sh "$AUTH_DB_PASSWORD" "$USAGE_DB_PASSWORD" |
    psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB"
