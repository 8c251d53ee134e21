package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"

	"github.com/tendhq/tend/workflows"
)

// recordScenario saves the history of the lead's workflow, as it is now, as the replay corpus file
// of scenario and replays it against the current code. With TEND_RECORD_CORPUS=1 the file goes to
// workflows/testdata/<scenario>-<codeversion>.json (see workflows/corpus_test.go for the rules);
// an existing file is never overwritten. Without it the file goes to a temporary directory.
func (s *stack) recordScenario(scenario, leadID string) string {
	s.t.Helper()
	return s.recordHistory(scenario, s.historyJSON(leadID))
}

// recordHistory is recordScenario for a history already fetched (e.g. a run before it continued
// as new).
func (s *stack) recordHistory(scenario string, history []byte) string {
	s.t.Helper()
	require.Regexp(s.t, `^[a-z0-9]+(-[a-z0-9]+)*$`, scenario, "scenario names are lowercase words joined by '-'")
	dir := s.t.TempDir()
	version := "0000000"
	if os.Getenv("TEND_RECORD_CORPUS") == "1" {
		dir = filepath.Join("..", "workflows", "testdata")
		version = workflowCodeVersion(s.t)
	}
	path := filepath.Join(dir, scenario+"-"+version+".json")
	if _, err := os.Stat(path); err == nil {
		s.t.Fatalf("%s exists: the corpus is append-only (a new code version records a new file)", path)
	}
	require.NoError(s.t, os.WriteFile(path, history, 0o644))
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflow(workflows.Lead)
	require.NoError(s.t, r.ReplayWorkflowHistoryFromJSONFile(nil, path), "the recorded history replays")
	s.t.Logf("recorded %s", path)
	return path
}

// workflowCodeVersion is the short hash of the last commit that changed the workflow code; it
// refuses uncommitted changes to it, whose histories no commit could replay.
func workflowCodeVersion(t *testing.T) string {
	t.Helper()
	spec := []string{"--", "../workflows/*.go", ":(exclude)../workflows/*_test.go"}
	out, err := exec.Command("git", append([]string{"status", "--porcelain"}, spec...)...).Output()
	require.NoError(t, err, "git status of the workflow code")
	require.Empty(t, strings.TrimSpace(string(out)), "commit the workflow code before recording its histories")
	out, err = exec.Command("git", append([]string{"log", "-1", "--format=%h"}, spec...)...).Output()
	require.NoError(t, err, "git log of the workflow code")
	v := strings.TrimSpace(string(out))
	require.Regexp(t, regexp.MustCompile(`^[0-9a-f]{7,12}$`), v, "a short commit hash")
	return v
}
