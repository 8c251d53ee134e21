package content_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/examples"
	"github.com/tendhq/tend/internal/content"
	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/dbtest"
	"github.com/tendhq/tend/internal/pgtest"
	"github.com/tendhq/tend/internal/render"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func example(t *testing.T, name string) string {
	t.Helper()
	b, err := examples.FS.ReadFile(name)
	require.NoError(t, err)
	return string(b)
}

// exampleSource is the content `tend dev` starts with: the example files and the built-in templates.
func exampleSource(t *testing.T) content.Source {
	return content.Source{
		content.Sequences: {"sequences.yaml": example(t, "sequences.yaml")},
		content.Scoring:   {"scoring.yaml": example(t, "scoring.yaml")},
		content.Sales:     {"sales.yaml": example(t, "sales.yaml")},
		content.Templates: {},
	}
}

func diagnostics(t *testing.T, err error) []string {
	t.Helper()
	var ds content.Diagnostics
	require.True(t, errors.As(err, &ds), "want diagnostics, got %v", err)
	var out []string
	for _, d := range ds {
		out = append(out, d.String())
	}
	return out
}

func TestBuildChecksEachKindAgainstTheOthers(t *testing.T) {
	t.Parallel()
	set, err := content.Build(exampleSource(t))
	require.NoError(t, err)
	require.NotNil(t, set.Catalog)
	require.NotNil(t, set.Model)
	require.NotNil(t, set.Team)
	require.True(t, set.Renderer.Has("analytics-1"), "the built-in templates")

	// Sales off: no team, and nothing else changes.
	src := exampleSource(t)
	src[content.Sales] = content.Files{}
	set, err = content.Build(src)
	require.NoError(t, err)
	require.Nil(t, set.Team)

	// A template overridden by the version is the one rendered.
	src = exampleSource(t)
	src[content.Templates] = content.Files{"analytics-1.txt": "Hello {{.FirstName}}, new text.", "analytics-1.html": "<p>Hello {{.FirstName}}, new text.</p>"}
	set, err = content.Build(src)
	require.NoError(t, err)
	email, err := set.Renderer.Render("analytics-1", "Hi", render.Data{FirstName: "Ada"})
	require.NoError(t, err)
	assert.Contains(t, email.Text, "Hello Ada, new text.")
	assert.Contains(t, email.HTML, "<p>Hello Ada, new text.</p>")

	// A sequence naming a template that exists nowhere and a broken scoring model: every mistake
	// at once, each with its file.
	src = exampleSource(t)
	src[content.Sequences] = content.Files{"sequences.yaml": strings.Replace(example(t, "sequences.yaml"), "template: analytics-1", "template: analytics-9", 1)}
	src[content.Scoring] = content.Files{"scoring.yaml": "version: 1\nbands: {warm: x}\n"}
	_, err = content.Build(src)
	ds := strings.Join(diagnostics(t, err), "\n")
	assert.Contains(t, ds, "sequences.yaml:43:")
	assert.Contains(t, ds, "analytics-9")
	assert.Contains(t, ds, "scoring.yaml:")
	// A sales team naming a segment that the sequences do not have.
	src = exampleSource(t)
	src[content.Sales] = content.Files{"sales.yaml": strings.Replace(example(t, "sales.yaml"), "territories: [analytics, general]", "territories: [analytics, gardening]", 1)}
	_, err = content.Build(src)
	ds = strings.Join(diagnostics(t, err), "\n")
	assert.Contains(t, ds, "sales.yaml:19:")
	assert.Contains(t, ds, `"gardening"`)

	// A template that does not parse, a file that cannot be a template, two sequences files.
	src = exampleSource(t)
	src[content.Templates] = content.Files{"analytics-1.html": "{{if}", "analytics-1.txt": "ok", "../evil.html": "x"}
	_, err = content.Build(src)
	assert.Contains(t, strings.Join(diagnostics(t, err), "\n"), "../evil.html")
	src = exampleSource(t)
	src[content.Templates] = content.Files{"analytics-1.html": "{{if}", "analytics-1.txt": "ok"}
	_, err = content.Build(src)
	assert.Contains(t, strings.Join(diagnostics(t, err), "\n"), "analytics-1.html")
	src = exampleSource(t)
	src[content.Sequences]["more.yaml"] = "version: 1"
	_, err = content.Build(src)
	assert.Contains(t, strings.Join(diagnostics(t, err), "\n"), "sequences is one file, got 2 (more.yaml, sequences.yaml)")
}

func TestDetectKind(t *testing.T) {
	t.Parallel()
	for file, want := range map[string]content.Kind{
		"sequences.yaml": content.Sequences, "sequences-production.yaml": content.Sequences,
		"scoring.yaml": content.Scoring, "sales.yaml": content.Sales, "sales-production.yaml": content.Sales,
	} {
		k, ok := content.DetectKind([]byte(example(t, file)))
		require.True(t, ok, file)
		require.Equal(t, want, k, file)
	}
	_, ok := content.DetectKind([]byte("hello: world\n"))
	require.False(t, ok)
	_, ok = content.DetectKind([]byte("{{{"))
	require.False(t, ok)
}

func TestDiffIsUnified(t *testing.T) {
	t.Parallel()
	old := content.Files{"s.yaml": "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\nm\n", "gone.txt": "bye\n", "same.txt": "same\n"}
	proposed := content.Files{"s.yaml": "a\nb\nc\nD\ne\nf\ng\nh\ni\nj\nk\nl\nm\nn\n", "new.txt": "hi\n", "same.txt": "same\n"}
	got := content.Diff("sequences", 4, old, proposed)
	want := `--- sequences/gone.txt (version 4)
+++ /dev/null
@@ -1,1 +0,0 @@
-bye
--- /dev/null
+++ sequences/new.txt (proposed)
@@ -0,0 +1,1 @@
+hi
--- sequences/s.yaml (version 4)
+++ sequences/s.yaml (proposed)
@@ -1,7 +1,7 @@
 a
 b
 c
-d
+D
 e
 f
 g
@@ -11,3 +11,4 @@
 k
 l
 m
+n
`
	require.Equal(t, want, got)
	require.Empty(t, content.Diff("sequences", 4, old, old))

	// One file for another: a rename, its lines diffed.
	got = content.Diff("sequences", 2, content.Files{"sequences.yaml": "a\nb\n"}, content.Files{"sequences-production.yaml": "a\nc\n"})
	require.Equal(t, "--- sequences/sequences.yaml (version 2)\n+++ sequences/sequences-production.yaml (proposed)\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n", got)
}

// seed reads the example files, as a server started with the TEND_* files does.
func seed(t *testing.T) func(content.Kind) (content.Files, error) {
	src := exampleSource(t)
	return func(k content.Kind) (content.Files, error) { return src[k], nil }
}

// Servers and workers starting together on an empty store publish version 1 of each kind once,
// from the files; later starts use what is stored, whatever the files say.
func TestOpenSeedsOnceFromTheFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)

	var wg sync.WaitGroup
	lives := make([]*content.Live, 4)
	for i := range lives {
		wg.Go(func() {
			l, err := content.Open(ctx, store, seed(t), nil)
			require.NoError(t, err)
			lives[i] = l
		})
	}
	wg.Wait()
	list, err := store.ContentVersions(ctx, "")
	require.NoError(t, err)
	require.Len(t, list, 4, "one version per kind")
	for _, v := range list {
		require.Equal(t, 1, v.Version)
		require.Equal(t, content.SeededBy, v.AppliedBy)
	}
	for _, l := range lives {
		require.Equal(t, 1, l.Current().Version(content.Sequences))
		require.NotNil(t, l.Current().Team)
	}

	// A later start with a sales file that does not build changes nothing: sales is stored.
	broken := func(k content.Kind) (content.Files, error) {
		if k == content.Sales {
			return content.Files{"sales.yaml": "nonsense: ["}, nil
		}
		return seed(t)(k)
	}
	l, err := content.Open(ctx, store, broken, nil)
	require.NoError(t, err)
	require.NotNil(t, l.Current().Team)

	// On an empty store, a seed that does not build publishes nothing.
	empty := dbtest.Store(t)
	_, err = content.Open(ctx, empty, broken, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "sales.yaml")
	list, err = empty.ContentVersions(ctx, "")
	require.NoError(t, err)
	require.Empty(t, list)
}

func TestFileSeedReadsTheConfiguredFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tpl := filepath.Join(dir, "templates")
	require.NoError(t, os.Mkdir(tpl, 0o755))
	for name, text := range map[string]string{"welcome.html": "<p>hi</p>", "welcome.txt": "hi", "notes.md": "not a template"} {
		require.NoError(t, os.WriteFile(filepath.Join(tpl, name), []byte(text), 0o644))
	}
	seq := filepath.Join(dir, "my-sequences.yaml")
	require.NoError(t, os.WriteFile(seq, []byte(example(t, "sequences.yaml")), 0o644))
	fs := content.FileSeed{Sequences: seq, Scoring: filepath.Join(dir, "missing.yaml"), Sales: "off", TemplatesDir: tpl}

	files, err := fs.Read(content.Sequences)
	require.NoError(t, err)
	require.Equal(t, content.Files{"my-sequences.yaml": example(t, "sequences.yaml")}, files)
	files, err = fs.Read(content.Templates)
	require.NoError(t, err)
	require.Equal(t, content.Files{"welcome.html": "<p>hi</p>", "welcome.txt": "hi"}, files, "only templates")
	files, err = fs.Read(content.Sales)
	require.NoError(t, err)
	require.Empty(t, files, "off")
	_, err = fs.Read(content.Scoring)
	require.ErrorContains(t, err, "TEND_SCORING")
}

// A change is checked with the rest of the published content, publishes only the kinds that
// changed, and refuses, publishing nothing, with every mistake; a rollback republishes old text.
func TestPublishChecksAgainstThePublishedContent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)
	_, err := content.Open(ctx, store, seed(t), nil)
	require.NoError(t, err)

	// Removing the analytics segment breaks the published sales team, which names it.
	seqs := example(t, "sequences.yaml")
	noAnalytics := strings.Replace(seqs, "  - id: analytics\n", "  - id: insights\n", 1)
	_, _, err = content.Publish(ctx, store, content.Source{content.Sequences: {"sequences.yaml": noAnalytics}}, "marketing", false)
	ds := strings.Join(diagnostics(t, err), "\n")
	assert.Contains(t, ds, "sales.yaml")
	assert.Contains(t, ds, `"analytics"`)
	latest, err := store.LatestContentVersions(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, latest["sequences"], "nothing published")

	// The same change with the team fixed in the same apply publishes both.
	team := strings.ReplaceAll(example(t, "sales.yaml"), "analytics", "insights")
	p, vs, err := content.Publish(ctx, store, content.Source{
		content.Sequences: {"sequences.yaml": noAnalytics}, content.Sales: {"sales.yaml": team},
		content.Scoring: {"scoring.yaml": example(t, "scoring.yaml")}}, "marketing", true)
	require.NoError(t, err)
	require.Equal(t, []content.Kind{content.Sequences, content.Sales}, p.Changed)
	require.Equal(t, []content.Kind{content.Scoring}, p.Unchanged, "the same text publishes no version")
	require.Len(t, vs, 2)
	for _, v := range vs {
		require.Equal(t, 2, v.Version)
		require.Equal(t, "marketing", v.AppliedBy)
		require.True(t, v.Pinned)
	}
	assert.Contains(t, p.Diffs[content.Sequences], "-  - id: analytics\n+  - id: insights\n")
	require.Equal(t, 2, p.Proposed.Version(content.Sequences))
	require.Equal(t, 1, p.Current.Version(content.Sequences))
	_, ok := p.Proposed.Catalog.Segment("insights")
	require.True(t, ok)

	// Rolling the team back alone would name a segment the sequences no longer have: refused.
	_, err = content.NewRollback(ctx, store, map[content.Kind]int{content.Sales: 1})
	assert.Contains(t, strings.Join(diagnostics(t, err), "\n"), `"analytics"`)
	// Rolling both back works, and is recorded as a rollback.
	rb, err := content.NewRollback(ctx, store, map[content.Kind]int{content.Sales: 1, content.Sequences: 1})
	require.NoError(t, err)
	_, err = rb.Publish(ctx, store, "ops", false)
	require.NoError(t, err)
	v, err := store.LatestContent(ctx, "sales")
	require.NoError(t, err)
	require.Equal(t, 3, v.Version)
	require.Equal(t, 1, *v.RollbackOf)
	require.Equal(t, example(t, "sales.yaml"), v.Files["sales.yaml"])
	_, err = content.NewRollback(ctx, store, map[content.Kind]int{content.Sales: 7})
	require.ErrorContains(t, err, "sales version 7 does not exist")

	// A plan overtaken by another publish publishes nothing.
	late, err := content.NewPlan(ctx, store, content.Source{content.Scoring: {"scoring.yaml": example(t, "scoring.yaml") + "\n# late\n"}})
	require.NoError(t, err)
	_, _, err = content.Publish(ctx, store, content.Source{content.Scoring: {"scoring.yaml": example(t, "scoring.yaml") + "\n# first\n"}}, "a", false)
	require.NoError(t, err)
	_, err = late.Publish(ctx, store, "b", false)
	require.ErrorIs(t, err, db.ErrContentChanged)

	// An unknown kind is named.
	_, err = content.NewPlan(ctx, store, content.Source{"segments": {"x": "y"}})
	assert.Contains(t, strings.Join(diagnostics(t, err), "\n"), `unknown kind "segments"`)
}
