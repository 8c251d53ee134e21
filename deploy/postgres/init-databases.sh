#!/bin/sh
# Creates the three databases of docker-compose.yml on one Postgres server, each owned by a role of
# its own: tend's records (database tend, role tend) apart from Temporal's persistence and
# visibility (temporal, temporal_visibility; role temporal). Neither role can connect to the
# other's databases, so a bug or a leaked password on one side cannot touch the other.
#
# The postgres image runs this once, from /docker-entrypoint-initdb.d, when it initialises an empty
# data directory; a volume that already holds a cluster is left as it is (create the roles and
# databases by hand there, with the same statements). The passwords come from the environment.
set -eu
: "${TEND_DB_PASSWORD:?TEND_DB_PASSWORD is required}"
: "${TEMPORAL_DB_PASSWORD:?TEMPORAL_DB_PASSWORD is required}"

psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
	-v tend_password="$TEND_DB_PASSWORD" -v temporal_password="$TEMPORAL_DB_PASSWORD" <<'SQL'
CREATE ROLE tend LOGIN PASSWORD :'tend_password';
CREATE DATABASE tend OWNER tend;
REVOKE ALL ON DATABASE tend FROM PUBLIC;

CREATE ROLE temporal LOGIN PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
REVOKE ALL ON DATABASE temporal FROM PUBLIC;
REVOKE ALL ON DATABASE temporal_visibility FROM PUBLIC;
SQL
