package workflows

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The replay corpus (testdata/*.json, replayed by TestReplay) is append-only: one file per
// scenario and code version, named <scenario>-<codeversion>.json, where the code version is the
// short hash of the last commit that changed the workflow code (workflows/*.go, tests aside). A file
// is never rewritten or deleted: a change to the workflow that no longer replays an old history is
// a change that would break the runs in production that recorded it.
//
// To add a scenario (or record an existing one again after a change of the workflow code):
//
//  1. commit the workflow change first (the recorder refuses uncommitted workflow code);
//  2. write the scenario as an e2e test that drives a lead on the real stack and ends with
//     s.recordScenario("<scenario>", leadID) — see e2e/corpus_test.go, TestCorpusHandoffAccept;
//  3. run it with TEND_RECORD_CORPUS=1, e.g.
//     TEND_RECORD_CORPUS=1 go test -count=1 -run TestCorpusHandoffAccept ./e2e/
//     which writes workflows/testdata/<scenario>-<codeversion>.json (and refuses to overwrite one);
//  4. commit the new file. Without TEND_RECORD_CORPUS the e2e test records into a temporary
//     directory and only checks that the history replays.
//
// TestReplayCorpusIsAppendOnly checks the rule against git.

// corpusName is the name of a corpus file: a scenario (lowercase words joined by '-') and the
// code version (a short commit hash).
var corpusName = regexp.MustCompile(`^([a-z0-9]+(?:-[a-z0-9]+)*)-([0-9a-f]{7,12})\.json$`)

// legacyCorpus are the files recorded before the corpus became append-only; they keep their names.
var legacyCorpus = []string{"lead-two-series.json", "lead-two-series-regular-activities.json"}

// TestReplayCorpusIsAppendOnly fails when a corpus file has a name outside the scheme, was changed
// after the commit that added it, or was deleted.
func TestReplayCorpusIsAppendOnly(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		if !slices.Contains(legacyCorpus, name) && !corpusName.MatchString(name) {
			t.Errorf("%s: corpus files are named <scenario>-<codeversion>.json (%s)", f, corpusName)
		}
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed: the history of the corpus can not be checked")
	}
	if out, err := exec.Command("git", "rev-parse", "--is-inside-work-tree").Output(); err != nil || strings.TrimSpace(string(out)) != "true" {
		t.Skip("not a git checkout: the history of the corpus can not be checked")
	}
	git := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("git", args...).Output()
		if err != nil {
			t.Fatalf("git %s: %v", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out))
	}
	for _, f := range files {
		name := filepath.Base(f)
		if slices.Contains(legacyCorpus, name) {
			continue
		}
		if commits := git("log", "--format=%h", "--", f); strings.Count(commits, "\n") > 0 {
			t.Errorf("%s was changed after it was added (commits %s): record a new file instead", f, strings.ReplaceAll(commits, "\n", ", "))
		}
		if st := git("status", "--porcelain", "--", f); st != "" && !strings.HasPrefix(st, "??") && !strings.HasPrefix(st, "A ") {
			t.Errorf("%s is modified (%s): record a new file instead", f, st)
		}
	}
	for _, line := range strings.Split(git("log", "--diff-filter=D", "--name-only", "--format=", "--", "testdata"), "\n") {
		if name := filepath.Base(strings.TrimSpace(line)); corpusName.MatchString(name) {
			if _, err := os.Stat(filepath.Join("testdata", name)); err != nil {
				t.Errorf("corpus file %s was deleted: the corpus is append-only", name)
			}
		}
	}
}
