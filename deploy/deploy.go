// Package deploy holds what operators deploy tend with beside the binary: the Grafana dashboard
// (grafana-dashboard.json) here, and the repository's docker-compose.yml, which this package's
// test validates with the Compose specification's own parser.
package deploy
