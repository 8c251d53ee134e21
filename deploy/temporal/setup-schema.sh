#!/bin/sh
# Creates or updates Temporal's two schemas (persistence and visibility) on Postgres, with the
# temporal-sql-tool of the admin-tools image, whose version matches the server's. It runs before
# every start of the Temporal server and is safe to repeat: setup-schema only stamps an empty
# database with version 0.0, and update-schema applies the versions the database does not have
# yet, so after an image upgrade it migrates the schemas and on an ordinary restart it does nothing.
# The databases themselves are created by deploy/postgres/init-databases.sh.
#
# temporal-sql-tool reads SQL_PLUGIN, SQL_HOST, SQL_PORT, SQL_USER and SQL_PASSWORD from the
# environment.
set -eu
: "${SQL_HOST:?SQL_HOST is required}"
: "${SQL_PASSWORD:?SQL_PASSWORD is required}"
schemas=/etc/temporal/schema/postgresql/v12

until nc -z "$SQL_HOST" "${SQL_PORT:-5432}"; do
	echo "waiting for Postgres at $SQL_HOST:${SQL_PORT:-5432}"
	sleep 1
done

temporal-sql-tool --db temporal setup-schema -v 0.0
temporal-sql-tool --db temporal update-schema -d "$schemas/temporal/versioned"
temporal-sql-tool --db temporal_visibility setup-schema -v 0.0
temporal-sql-tool --db temporal_visibility update-schema -d "$schemas/visibility/versioned"
echo "Temporal schemas are up to date"
