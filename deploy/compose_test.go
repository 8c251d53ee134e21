package deploy

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/pgcluster"
)

// secrets are the variables docker-compose.yml refuses to start without, with values of the
// shape the README's commands generate.
var secrets = map[string]string{
	"POSTGRES_PASSWORD":    "5f0c2b9e8d7a6c5b4a3928171605f4e3",
	"TEND_DB_PASSWORD":     "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
	"TEMPORAL_DB_PASSWORD": "f9e8d7c6b5a4938271605f4e3d2c1b0a",
	"TEND_API_KEYS":        "admin:0123456789abcdef0123",
	"TEND_TRACKING_KEYS":   "k1:3q2+7w==aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	"TEND_SUPPRESSION_KEY": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
	"TEND_WEBHOOK_SECRET":  "0123456789abcdef0123",
}

func env(except string) []string {
	var out []string
	for k, v := range secrets {
		if k != except {
			out = append(out, k+"="+v)
		}
	}
	return out
}

func load(t *testing.T, env []string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"../docker-compose.yml"}, cli.WithName("tend"), cli.WithWorkingDirectory(".."),
		cli.WithEnv(env))
	require.NoError(t, err)
	return opts.LoadProject(context.Background())
}

func loadValid(t *testing.T) *types.Project {
	t.Helper()
	p, err := load(t, env(""))
	require.NoError(t, err)
	return p
}

// tendServices are the long-running tend services: every server and worker.
func tendServices(p *types.Project) []string {
	var names []string
	for name, s := range p.Services {
		if len(s.Command) == 1 && (s.Command[0] == "server" || s.Command[0] == "worker") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

func image(s types.ServiceConfig) (name, tag string) {
	name, tag, _ = strings.Cut(s.Image, ":")
	return name, tag
}

// docker-compose.yml is a valid Compose file with the production shape: Postgres, Temporal's
// schema set up and its namespace registered by one-shots, Temporal and its UI, an SMTP catcher,
// a migration that runs first, two tend servers and three workers on one environment; it asks
// for the secrets instead of shipping example values.
func TestComposeFileIsValid(t *testing.T) {
	p := loadValid(t)
	var names []string
	for name := range p.Services {
		names = append(names, name)
	}
	slices.Sort(names)
	assert.Equal(t, []string{"mailpit", "postgres", "temporal", "temporal-namespace", "temporal-schema", "temporal-ui",
		"tend-migrate", "tend-server-1", "tend-server-2", "tend-worker"}, names)
	assert.Equal(t, []string{"tend-server-1", "tend-server-2", "tend-worker"}, tendServices(p))

	migrate := p.Services["tend-migrate"]
	for _, name := range tendServices(p) {
		s := p.Services[name]
		for _, dep := range []string{"tend-migrate", "temporal-namespace"} {
			require.Contains(t, s.DependsOn, dep, name)
			assert.Equal(t, types.ServiceConditionCompletedSuccessfully, s.DependsOn[dep].Condition, "%s starts after %s", name, dep)
		}
		env := maps(s.Environment)
		delete(env, "TEND_METRICS_ADDR")
		assert.Equal(t, maps(migrate.Environment), env, "%s runs on the migration's environment", name)
		for _, v := range []string{"DATABASE_URL", "TEMPORAL_ADDRESS", "SMTP_URL", "TEND_API_KEYS", "TEND_WEBHOOK_SECRET", "TEND_SUPPRESSION_KEY", "TEND_TRACKING_KEYS"} {
			assert.NotEmpty(t, env[v], "%s sets %s", name, v)
		}
	}
	assert.Equal(t, "admin:0123456789abcdef0123", *p.Services["tend-server-1"].Environment["TEND_API_KEYS"])
	assert.Equal(t, []string{"8080", "8081"}, []string{p.Services["tend-server-1"].Ports[0].Published, p.Services["tend-server-2"].Ports[0].Published},
		"each server on a host port of its own")
	w := p.Services["tend-worker"]
	require.NotNil(t, w.Deploy)
	require.NotNil(t, w.Deploy.Replicas)
	assert.Equal(t, 3, *w.Deploy.Replicas, "three workers")
	assert.Empty(t, w.Ports, "workers publish nothing, so replicas do not collide")
}

// Without any one of the secrets the file does not load, and the error says which is missing.
func TestComposeFileAsksForEverySecret(t *testing.T) {
	for name := range secrets {
		_, err := load(t, env(name))
		require.Error(t, err, "loads without %s", name)
		assert.Contains(t, err.Error(), name)
	}
}

// Temporal runs on its current images: no deprecated auto-setup, admin-tools at the server's
// version, the schema one-shot before the server, the namespace one-shot after it, and tend
// talking to that namespace.
func TestComposeTemporalIsSetUpByOneShots(t *testing.T) {
	p := loadValid(t)
	for name, s := range p.Services {
		assert.NotContains(t, s.Image, "auto-setup", "%s uses the deprecated temporalio/auto-setup image", name)
	}
	server, schema, ns := p.Services["temporal"], p.Services["temporal-schema"], p.Services["temporal-namespace"]
	img, serverTag := image(server)
	assert.Equal(t, "temporalio/server", img)
	for _, s := range []types.ServiceConfig{schema, ns} {
		img, tag := image(s)
		assert.Equal(t, "temporalio/admin-tools", img, s.Name)
		assert.Equal(t, serverTag, tag, "%s runs the admin tools of the server's version", s.Name)
	}

	require.Contains(t, server.DependsOn, "temporal-schema")
	assert.Equal(t, types.ServiceConditionCompletedSuccessfully, server.DependsOn["temporal-schema"].Condition,
		"the server starts only after the schema one-shot succeeded")
	require.Contains(t, schema.DependsOn, "postgres")
	assert.Equal(t, types.ServiceConditionHealthy, schema.DependsOn["postgres"].Condition)
	require.Contains(t, ns.DependsOn, "temporal")
	assert.Equal(t, types.ServiceConditionHealthy, ns.DependsOn["temporal"].Condition, "the namespace is registered once the server answers")
	assert.NotNil(t, server.HealthCheck, "the namespace one-shot and the UI wait for this check")

	// The one-shots run the scripts of deploy/temporal, mounted from this repository.
	script := func(s types.ServiceConfig) string {
		t.Helper()
		require.NotEmpty(t, s.Command, s.Name)
		host := hostPath(t, s, s.Command[0])
		b, err := os.ReadFile(host)
		require.NoError(t, err, "%s runs %s", s.Name, s.Command[0])
		return string(b)
	}
	setup := script(schema)
	for _, db := range []string{"temporal", "temporal_visibility"} {
		assert.Contains(t, setup, "--db "+db+" setup-schema", "the schema one-shot sets up %s", db)
		assert.Contains(t, setup, "--db "+db+" update-schema", "and brings %s up to the server's version", db)
	}
	assert.Equal(t, "postgres12", *schema.Environment["SQL_PLUGIN"])
	assert.Equal(t, "temporal", *schema.Environment["SQL_USER"])
	assert.Contains(t, script(ns), "temporal operator namespace create")

	assert.Equal(t, "postgres12", *server.Environment["DB"])
	assert.Equal(t, "temporal", *server.Environment["POSTGRES_USER"])
	assert.Equal(t, *schema.Environment["SQL_PASSWORD"], *server.Environment["POSTGRES_PWD"])
	dc := *server.Environment["DYNAMIC_CONFIG_FILE_PATH"]
	_, err := os.Stat(hostPath(t, server, filepath.Join("/etc/temporal", dc)))
	assert.NoError(t, err, "the dynamic config file %s is mounted", dc)

	tendNS := *p.Services["tend-worker"].Environment["TEMPORAL_NAMESPACE"]
	assert.Equal(t, tendNS, *ns.Environment["TEMPORAL_NAMESPACE"], "the one-shot registers the namespace tend uses")
	assert.Equal(t, tendNS, *p.Services["temporal-ui"].Environment["TEMPORAL_DEFAULT_NAMESPACE"])
}

// tend's database is its own: another database and another role than Temporal's, on the Postgres
// server whose init script creates all three.
func TestComposeTendDatabaseIsApartFromTemporals(t *testing.T) {
	p := loadValid(t)
	u, err := url.Parse(*p.Services["tend-worker"].Environment["DATABASE_URL"])
	require.NoError(t, err)
	assert.Equal(t, "postgres", u.Hostname())
	assert.Equal(t, "/tend", u.Path)
	assert.Equal(t, "tend", u.User.Username())
	pw, _ := u.User.Password()
	assert.Equal(t, secrets["TEND_DB_PASSWORD"], pw)

	server := p.Services["temporal"]
	assert.Equal(t, "postgres", *server.Environment["POSTGRES_SEEDS"], "one Postgres server for both")
	assert.NotEqual(t, u.User.Username(), *server.Environment["POSTGRES_USER"], "tend and Temporal connect as different roles")
	for _, k := range []string{"DBNAME", "VISIBILITY_DBNAME"} {
		assert.NotEqual(t, "tend", *server.Environment[k], k)
	}
	pg := p.Services["postgres"]
	initScript := hostPath(t, pg, "/docker-entrypoint-initdb.d/init-databases.sh")
	b, err := os.ReadFile(initScript)
	require.NoError(t, err)
	for _, stmt := range []string{"CREATE DATABASE tend OWNER tend", "CREATE DATABASE " + *server.Environment["DBNAME"] + " OWNER temporal",
		"CREATE DATABASE " + *server.Environment["VISIBILITY_DBNAME"] + " OWNER temporal"} {
		assert.Contains(t, string(b), stmt)
	}
}

// Every tend server and worker serves its operator endpoints on TEND_METRICS_ADDR, and Compose
// checks its /readyz there with `tend healthcheck`, since the distroless image has no shell or wget.
func TestComposeTendServicesHaveMetricsAndReadiness(t *testing.T) {
	p := loadValid(t)
	dockerfile, err := os.ReadFile("../Dockerfile")
	require.NoError(t, err)
	assert.Contains(t, string(dockerfile), "COPY --from=build /out/tend /usr/local/bin/tend", "the image has tend where the healthchecks run it")
	for _, name := range tendServices(p) {
		s := p.Services[name]
		addr := s.Environment["TEND_METRICS_ADDR"]
		require.NotNil(t, addr, "%s sets TEND_METRICS_ADDR", name)
		_, port, ok := strings.Cut(*addr, ":")
		require.True(t, ok, "%s: TEND_METRICS_ADDR %q has a port", name, *addr)
		require.NotNil(t, s.HealthCheck, "%s has a healthcheck", name)
		test := strings.Join(s.HealthCheck.Test, " ")
		assert.Contains(t, test, "http://127.0.0.1:"+port+"/readyz", "%s checks /readyz on its metrics address", name)
		assert.Equal(t, "CMD", s.HealthCheck.Test[0], name)
		assert.Equal(t, []string{"/usr/local/bin/tend", "healthcheck"}, []string(s.HealthCheck.Test[1:3]), "%s runs the image's own tend healthcheck", name)
		require.NotNil(t, s.StopGracePeriod, name)
	}
	assert.Greater(t, time.Duration(*p.Services["tend-worker"].StopGracePeriod), 30*time.Second,
		"a stopping worker gets longer than TEND_WORKER_STOP_TIMEOUT to finish its activities")
}

// The files tend is configured with are the production-style examples baked into the image
// (the Dockerfile copies examples/ to /etc/tend/examples), not the minute-wait ones tend dev uses.
func TestComposeUsesProductionExamples(t *testing.T) {
	p := loadValid(t)
	env := p.Services["tend-worker"].Environment
	for k, want := range map[string]string{"TEND_SEQUENCES": "sequences-production.yaml", "TEND_SALES": "sales-production.yaml", "TEND_SCORING": "scoring.yaml"} {
		v := *env[k]
		require.True(t, strings.HasPrefix(v, "/etc/tend/examples/"), "%s=%s", k, v)
		assert.Equal(t, want, filepath.Base(v), k)
		_, err := os.Stat(filepath.Join("..", "examples", filepath.Base(v)))
		assert.NoError(t, err, "%s names a file of examples/", k)
	}
}

// init-databases.sh, run as the postgres image runs it, leaves tend and Temporal a database and a
// role each that cannot reach the other's, and tend's migrations run as its own role.
func TestInitDatabasesScript(t *testing.T) {
	if _, err := exec.LookPath("psql"); err != nil {
		t.Fatalf("psql is needed to run the postgres image's init script: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A cluster of its own: the script creates roles, which belong to the whole cluster.
	c, err := pgcluster.Start(ctx, pgcluster.Config{Ephemeral: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop() })

	run := func(env ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, "sh", "postgres/init-databases.sh")
		cmd.Env = append(os.Environ(), append([]string{"POSTGRES_USER=" + pgcluster.Superuser, "PGHOST=127.0.0.1",
			fmt.Sprintf("PGPORT=%d", c.Port())}, env...)...)
		return cmd.CombinedOutput()
	}
	out, err := run("TEND_DB_PASSWORD=")
	require.Error(t, err, "runs without TEND_DB_PASSWORD")
	assert.Contains(t, string(out), "TEND_DB_PASSWORD")
	out, err = run("TEND_DB_PASSWORD=tend-pw-o'quote", "TEMPORAL_DB_PASSWORD=temporal-pw")
	require.NoError(t, err, "%s", out)

	connect := func(role, database string) error {
		conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", role, c.Port(), database))
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "CREATE TABLE probe (id int); DROP TABLE probe")
		return err
	}
	for _, d := range []string{"temporal", "temporal_visibility"} {
		assert.NoError(t, connect("temporal", d), "temporal owns %s", d)
		assert.ErrorContains(t, connect("tend", d), "permission denied for database", "tend cannot reach %s", d)
	}
	assert.ErrorContains(t, connect("temporal", "tend"), "permission denied for database", "temporal cannot reach tend's database")

	store, err := db.Open(ctx, fmt.Sprintf("postgres://tend@127.0.0.1:%d/tend?sslmode=disable", c.Port()))
	require.NoError(t, err)
	defer store.Close()
	applied, err := store.Migrate(ctx)
	require.NoError(t, err, "tend migrate runs as the tend role, no superuser needed")
	assert.NotEmpty(t, applied)

	var hasPassword bool
	admin, err := pgx.Connect(ctx, c.URL("postgres"))
	require.NoError(t, err)
	defer admin.Close(ctx)
	require.NoError(t, admin.QueryRow(ctx, `SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = 'tend'`).Scan(&hasPassword))
	assert.True(t, hasPassword, "the tend role has the password from TEND_DB_PASSWORD")
}

// hostPath is the file of this repository that s sees at path inside its container, through a
// bind mount.
func hostPath(t *testing.T, s types.ServiceConfig, path string) string {
	t.Helper()
	path = filepath.Clean(path)
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if rel, err := filepath.Rel(v.Target, path); err == nil && !strings.HasPrefix(rel, "..") {
			return filepath.Join(v.Source, rel)
		}
	}
	t.Fatalf("%s mounts nothing at %s", s.Name, path)
	return ""
}

func maps(m types.MappingWithEquals) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}
