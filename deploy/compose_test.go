package deploy

import (
	"context"
	"slices"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func load(t *testing.T, env []string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"../docker-compose.yml"}, cli.WithName("tend"), cli.WithWorkingDirectory(".."),
		cli.WithEnv(env))
	require.NoError(t, err)
	return opts.LoadProject(context.Background())
}

// docker-compose.yml is a valid Compose file with the production shape: Postgres, Temporal and its
// UI, an SMTP catcher, a migration that runs first, and tend's server and worker as separate
// services on one environment; it asks for the secrets instead of shipping example values.
func TestComposeFileIsValid(t *testing.T) {
	p, err := load(t, []string{"TEND_API_KEYS=admin:0123456789abcdef0123", "TEND_WEBHOOK_SECRET=0123456789abcdef0123"})
	require.NoError(t, err)
	var names []string
	for name := range p.Services {
		names = append(names, name)
	}
	slices.Sort(names)
	assert.Equal(t, []string{"mailpit", "postgres", "temporal", "temporal-ui", "tend-migrate", "tend-server", "tend-worker"}, names)
	for _, name := range []string{"tend-server", "tend-worker"} {
		s := p.Services[name]
		require.Contains(t, s.DependsOn, "tend-migrate", name)
		assert.Equal(t, types.ServiceConditionCompletedSuccessfully, s.DependsOn["tend-migrate"].Condition, "%s starts after the migration", name)
		assert.Equal(t, p.Services["tend-migrate"].Environment, s.Environment, "%s runs on the same environment", name)
		for _, v := range []string{"DATABASE_URL", "TEMPORAL_ADDRESS", "SMTP_URL", "TEND_API_KEYS", "TEND_WEBHOOK_SECRET", "TEND_SUPPRESSION_KEY"} {
			assert.NotNil(t, s.Environment[v], "%s sets %s", name, v)
		}
	}
	assert.Equal(t, "admin:0123456789abcdef0123", *p.Services["tend-server"].Environment["TEND_API_KEYS"])

	// Without the secrets the file does not load, and says which is missing.
	_, err = load(t, []string{"TEND_WEBHOOK_SECRET=0123456789abcdef0123"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "TEND_API_KEYS")
}
