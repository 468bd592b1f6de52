#!/bin/sh
# Runs once, when the postgres container initialises an empty volume (/docker-entrypoint-initdb.d):
# the login role the apps and the API connect as (PRICEINTEL_APP_DATABASE_URL; priceintel.db.roles), with its
# own password. `priceintel init-db` / `priceintel apps` then grant it its privileges; it owns nothing.
set -eu
: "${PRICEINTEL_APP_DB_PASSWORD:?set PRICEINTEL_APP_DB_PASSWORD}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v app_password="$PRICEINTEL_APP_DB_PASSWORD" <<'SQL'
CREATE ROLE priceintel_app LOGIN PASSWORD :'app_password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
SQL
