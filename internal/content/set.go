package content

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing/fstest"

	"gopkg.in/yaml.v3"

	"github.com/tendhq/tend/internal/render"
	"github.com/tendhq/tend/internal/sales"
	"github.com/tendhq/tend/internal/score"
	"github.com/tendhq/tend/internal/sequence"
	"github.com/tendhq/tend/internal/yamlcheck"
	"github.com/tendhq/tend/templates"
)

// Files is one kind's files: each file's name and text.
type Files map[string]string

// Source is the files of every kind: what a Set is built from and what the store keeps.
// Templates are the files that override the built-in ones (none: the built-in templates as they
// are); sales with no file is sales handoff switched off.
type Source map[Kind]Files

// Diagnostic is one mistake in a content file ("file:line: message").
type Diagnostic = yamlcheck.Diagnostic

// Diagnostics is every mistake found in the content; it is an error.
type Diagnostics = yamlcheck.Diagnostics

// ParseKind returns the kind named s, or an error listing the kinds.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown kind %q (kinds: sequences, scoring, sales, templates)", s)
}

// DetectKind tells which kind a YAML content file is by its top-level fields: a sequences file
// has segments, a scoring model bands or rules (behaviour, fit, negative), a sales team reps.
func DetectKind(data []byte) (Kind, bool) {
	var top map[string]any
	if err := yaml.Unmarshal(data, &top); err != nil {
		return "", false
	}
	has := func(fields ...string) bool {
		for _, f := range fields {
			if _, ok := top[f]; ok {
				return true
			}
		}
		return false
	}
	switch {
	case has("segments", "default_segment"):
		return Sequences, true
	case has("reps", "calendars", "managers"):
		return Sales, true
	case has("bands", "behaviour", "fit", "negative", "mql_threshold"):
		return Scoring, true
	}
	return "", false
}

// Clone returns a copy of src that shares no map with it.
func (src Source) Clone() Source {
	out := Source{}
	for k, fs := range src {
		c := Files{}
		for n, t := range fs {
			c[n] = t
		}
		out[k] = c
	}
	return out
}

// Build parses every kind and checks each against the others, as a start-up does: the templates
// first, the sequences against the templates that exist, the scoring model, then the sales team
// against the segments and the event types. It reports every mistake of every kind as
// Diagnostics; the Set is nil whenever there is any. Every kind must be in src.
func Build(src Source) (*Set, error) {
	var diags Diagnostics
	bad := func(file, format string, args ...any) {
		diags = append(diags, Diagnostic{File: file, Message: fmt.Sprintf(format, args...)})
	}
	for k := range src {
		if _, err := ParseKind(string(k)); err != nil {
			bad(string(k), "%v", err)
		}
	}
	for _, k := range Kinds {
		if _, ok := src[k]; !ok {
			bad(string(k), "no %s given", k)
		}
	}
	if len(diags) > 0 {
		return nil, diags
	}
	set := &Set{Source: src.Clone(), Versions: map[Kind]int{}}

	r, err := renderer(src[Templates])
	if err != nil {
		bad("templates", "%v", err)
	}
	set.Renderer = r

	opts := sequence.Options{}
	if r != nil {
		opts.TemplateExists = r.Has
	}
	if name, data, ok := single(Sequences, src[Sequences], bad, true); ok {
		c, ds := sequence.Parse(name, data, opts)
		diags = append(diags, ds...)
		set.Catalog = c
	}
	if name, data, ok := single(Scoring, src[Scoring], bad, true); ok {
		m, ds := score.Parse(name, data)
		diags = append(diags, ds...)
		set.Model = m
	}
	if name, data, ok := single(Sales, src[Sales], bad, false); ok {
		so := sales.Options{EventTypes: score.EventTypes()}
		if set.Catalog != nil {
			so.Segments = []string{}
			for _, s := range set.Catalog.Segments {
				so.Segments = append(so.Segments, s.ID)
			}
		}
		t, ds := sales.Parse(name, data, so)
		diags = append(diags, ds...)
		set.Team = t
	}
	if len(diags) > 0 {
		return nil, diags
	}
	return set, nil
}

// single returns the one file of a kind that has exactly one; sales may have none (off).
func single(k Kind, files Files, bad func(file, format string, args ...any), required bool) (string, []byte, bool) {
	if len(files) == 0 && !required {
		return "", nil, false
	}
	if len(files) != 1 {
		names := make([]string, 0, len(files))
		for n := range files {
			names = append(names, n)
		}
		slices.Sort(names)
		bad(string(k), "%s is one file, got %d (%s)", k, len(files), strings.Join(names, ", "))
		return "", nil, false
	}
	for n, t := range files {
		return n, []byte(t), true
	}
	return "", nil, false
}

// renderer parses the built-in templates with the files of the version over them.
func renderer(files Files) (*render.Renderer, error) {
	// An in-memory file system: the built-in files, then the version's, which replace them by name.
	fsys := fstest.MapFS{}
	err := fs.WalkDir(templates.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(templates.FS, p)
		fsys[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read the built-in templates: %w", err)
	}
	var wrong []string
	for n, t := range files {
		if !templateFile(n) {
			wrong = append(wrong, n)
			continue
		}
		fsys[n] = &fstest.MapFile{Data: []byte(t)}
	}
	if len(wrong) > 0 {
		slices.Sort(wrong)
		return nil, fmt.Errorf("not template files (NAME.html or NAME.txt, no directory): %s", strings.Join(wrong, ", "))
	}
	return render.New(fsys)
}

// templateFile reports whether name can be a template: NAME.html or NAME.txt, in no directory.
func templateFile(name string) bool {
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return false
	}
	ext := path.Ext(name)
	return (ext == ".html" || ext == ".txt") && len(name) > len(ext)
}

// ReadTemplatesDir reads every NAME.html and NAME.txt at the top of dir.
func ReadTemplatesDir(dir string) (Files, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	files := Files{}
	for _, e := range entries {
		if e.IsDir() || !templateFile(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		files[e.Name()] = string(b)
	}
	return files, nil
}
