// Package deploy holds what operators deploy tend with beside the binary: the Grafana dashboard
// (grafana-dashboard.json), and the files the repository's docker-compose.yml mounts — the
// Postgres init script (postgres/) and Temporal's schema and namespace one-shots and dynamic
// config (temporal/). This package's tests validate docker-compose.yml with the Compose
// specification's own parser and run the init script on a real Postgres.
package deploy
