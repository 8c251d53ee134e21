package content

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/tendhq/tend/internal/db"
)

// SeededBy is the applied_by of a version read from the TEND_* files at start-up.
const SeededBy = "seed"

// FileSeed names the files the first version of each kind is read from: TEND_SEQUENCES,
// TEND_SCORING, TEND_SALES ("off": no sales team) and TEND_TEMPLATES_DIR ("": the built-in
// templates as they are).
type FileSeed struct {
	Sequences, Scoring, Sales, TemplatesDir string
}

// Read reads the files of one kind. Files are named by their base name; the templates are every
// NAME.html and NAME.txt at the top of the directory, which override the built-in ones.
func (f FileSeed) Read(k Kind) (Files, error) {
	one := func(env, p string) (Files, error) {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read %s (%s): %w", k, env, err)
		}
		return Files{filepath.Base(p): string(b)}, nil
	}
	switch k {
	case Sequences:
		return one("TEND_SEQUENCES", f.Sequences)
	case Scoring:
		return one("TEND_SCORING", f.Scoring)
	case Sales:
		if f.Sales == "off" {
			return Files{}, nil
		}
		return one("TEND_SALES", f.Sales)
	case Templates:
		if f.TemplatesDir == "" {
			return Files{}, nil
		}
		files, err := ReadTemplatesDir(f.TemplatesDir)
		if err != nil {
			return nil, fmt.Errorf("read templates (TEND_TEMPLATES_DIR): %w", err)
		}
		return files, nil
	}
	return nil, fmt.Errorf("unknown kind %q", k)
}

// Source reads every kind.
func (f FileSeed) Source() (Source, error) {
	src := Source{}
	for _, k := range Kinds {
		files, err := f.Read(k)
		if err != nil {
			return nil, err
		}
		src[k] = files
	}
	return src, nil
}

// Open returns the published content, live. Each kind the store has no version of yet is first
// published as version 1 from seed (applied by "seed") — after the whole Set, stored kinds and
// seeded ones, was checked to build, so a bad file never becomes a version. A kind the store
// has is used as stored: seed is not even read for it, except to warn when its file differs from
// the published text (the file is then not what runs: `tend apply` publishes it).
func Open(ctx context.Context, store *db.Store, seed func(Kind) (Files, error), log *slog.Logger) (*Live, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	latest, err := store.LatestContentVersions(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the published content: %w", err)
	}
	var missing []Kind
	for _, k := range Kinds {
		if latest[string(k)] == 0 {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		src, _, err := loadSource(ctx, store, nil, missing)
		if err != nil {
			return nil, err
		}
		for _, k := range missing {
			if src[k], err = seed(k); err != nil {
				return nil, err
			}
		}
		if _, err := Build(src); err != nil {
			return nil, fmt.Errorf("the content files do not build, nothing was published:\n%w", err)
		}
		for _, k := range missing {
			ok, err := store.SeedContentVersion(ctx, db.NewContentVersion{Kind: string(k), Files: src[k], AppliedBy: SeededBy})
			if err != nil {
				return nil, fmt.Errorf("publish the first %s version: %w", k, err)
			}
			if ok {
				log.Info("published the first content version from the files", "kind", k)
			}
		}
	}
	set, err := Load(ctx, store)
	var diags Diagnostics
	if errors.As(err, &diags) {
		// The published content does not build (written past apply, or checked by an older tend).
		// Refusing to start would leave no server to publish a fix through; the files run instead,
		// loudly, until a version that builds is published (the watcher takes it at once).
		fallback, ferr := seedSet(seed)
		if ferr != nil {
			return nil, err
		}
		log.Error("the published content does not build; running on the TEND_* files until a version that builds is published",
			"err", err)
		return Static(fallback), nil
	}
	if err != nil {
		return nil, err
	}
	for _, k := range Kinds {
		if slices.Contains(missing, k) {
			continue
		}
		if files, err := seed(k); err == nil && db.ContentChecksum(files) != db.ContentChecksum(set.Source[k]) {
			log.Warn("the content file differs from the published version, which is the one in use; `tend apply` publishes the file",
				"kind", k, "version", set.Version(k))
		}
	}
	return Static(set), nil
}

// seedSet builds the Set of the files alone; its Versions are 0, so that a watcher replaces it
// with the first published version that builds.
func seedSet(seed func(Kind) (Files, error)) (*Set, error) {
	src := Source{}
	for _, k := range Kinds {
		files, err := seed(k)
		if err != nil {
			return nil, err
		}
		src[k] = files
	}
	return Build(src)
}

// Load builds the Set of the newest version of every kind.
func Load(ctx context.Context, store *db.Store) (*Set, error) { return LoadAt(ctx, store, nil) }

// LoadAt builds the Set of the given version of each kind (the newest for a kind not in at),
// e.g. the content a pinned lead runs.
func LoadAt(ctx context.Context, store *db.Store, at map[Kind]int) (*Set, error) {
	src, versions, err := loadSource(ctx, store, at, nil)
	if err != nil {
		return nil, err
	}
	set, err := Build(src)
	if err != nil {
		return nil, fmt.Errorf("the published content (versions %v) does not build:\n%w", versions, err)
	}
	set.Versions = versions
	return set, nil
}

// loadSource reads the files of every kind but skip from the store, at the given versions (the
// newest otherwise).
func loadSource(ctx context.Context, store *db.Store, at map[Kind]int, skip []Kind) (Source, map[Kind]int, error) {
	src, versions := Source{}, map[Kind]int{}
	for _, k := range Kinds {
		if slices.Contains(skip, k) {
			continue
		}
		var v db.ContentVersion
		var err error
		if n := at[k]; n > 0 {
			v, err = store.ContentVersion(ctx, string(k), n)
		} else {
			v, err = store.LatestContent(ctx, string(k))
		}
		if errors.Is(err, db.ErrNotFound) {
			if n := at[k]; n > 0 {
				return nil, nil, fmt.Errorf("%s version %d does not exist", k, n)
			}
			return nil, nil, fmt.Errorf("no %s version is published yet: a tend server or worker publishes the TEND_* files when it starts", k)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", k, err)
		}
		src[k], versions[k] = v.Files, v.Version
	}
	return src, versions, nil
}

// Plan is a proposed change checked against the published content: every kind rebuilt with the
// proposed kinds in place of the published ones.
type Plan struct {
	// Current is the published content the change was checked against. When that content does
	// not build, Current holds its Source and Versions only (Catalog and the rest are nil).
	Current *Set
	// Proposed is the content once published; its Versions are the new numbers after Publish.
	Proposed *Set
	// Changed are the kinds whose files differ from the published ones: what Publish publishes.
	Changed []Kind
	// Unchanged are the proposed kinds whose files are the published ones already.
	Unchanged []Kind
	// Diffs are the unified diffs of the changed kinds against the published files.
	Diffs map[Kind]string

	rollbackOf map[Kind]int
}

// NewPlan checks proposed (the kinds to replace, each with all its files) against the published
// content. A change that does not build returns its Diagnostics, every mistake of every kind.
func NewPlan(ctx context.Context, store *db.Store, proposed Source) (*Plan, error) {
	var diags Diagnostics
	for k := range proposed {
		if _, err := ParseKind(string(k)); err != nil {
			diags = append(diags, Diagnostic{File: string(k), Message: err.Error()})
		}
	}
	if len(diags) > 0 {
		return nil, diags
	}
	curSrc, versions, err := loadSource(ctx, store, nil, nil)
	if err != nil {
		return nil, err
	}
	cur, err := Build(curSrc)
	if err != nil {
		// The published content does not build (see Open): a fix must still be publishable. The
		// plan's Current then carries the published text and versions only.
		cur = &Set{Source: curSrc}
	}
	cur.Versions = versions
	src := cur.Source.Clone()
	maps.Copy(src, proposed.Clone())
	next, err := Build(src)
	if err != nil {
		return nil, err
	}
	next.Versions = maps.Clone(cur.Versions)
	p := &Plan{Current: cur, Proposed: next, Diffs: map[Kind]string{}}
	for _, k := range Kinds {
		if _, ok := proposed[k]; !ok {
			continue
		}
		if db.ContentChecksum(proposed[k]) == db.ContentChecksum(cur.Source[k]) {
			p.Unchanged = append(p.Unchanged, k)
			continue
		}
		p.Changed = append(p.Changed, k)
		p.Diffs[k] = Diff(string(k), cur.Version(k), cur.Source[k], proposed[k])
	}
	return p, nil
}

// NewRollback plans publishing an old version of each kind in to again, as new versions: kinds
// changed together (a segment renamed in the sequences and the sales team) roll back together.
func NewRollback(ctx context.Context, store *db.Store, to map[Kind]int) (*Plan, error) {
	if len(to) == 0 {
		return nil, errors.New("no version to roll back to")
	}
	src := Source{}
	for k, n := range to {
		if _, err := ParseKind(string(k)); err != nil {
			return nil, err
		}
		v, err := store.ContentVersion(ctx, string(k), n)
		if errors.Is(err, db.ErrNotFound) {
			return nil, fmt.Errorf("%s version %d does not exist", k, n)
		}
		if err != nil {
			return nil, err
		}
		src[k] = v.Files
	}
	p, err := NewPlan(ctx, store, src)
	if err != nil {
		return nil, err
	}
	p.rollbackOf = maps.Clone(to)
	return p, nil
}

// Publish publishes the changed kinds as new versions, applied by by; pinned keeps running leads
// on the versions they run. Nothing changed publishes nothing. When another publish came first
// the error is db.ErrContentChanged and nothing is published: plan again.
func (p *Plan) Publish(ctx context.Context, store *db.Store, by string, pinned bool) ([]db.ContentVersion, error) {
	if len(p.Changed) == 0 {
		return nil, nil
	}
	expect := map[string]int{}
	for _, k := range Kinds {
		expect[string(k)] = p.Current.Version(k)
	}
	var vs []db.NewContentVersion
	for _, k := range p.Changed {
		vs = append(vs, db.NewContentVersion{Kind: string(k), Files: p.Proposed.Source[k], AppliedBy: by, Pinned: pinned, RollbackOf: p.rollbackOf[k]})
	}
	out, err := store.InsertContentVersions(ctx, vs, expect)
	if err != nil {
		return nil, err
	}
	for _, v := range out {
		p.Proposed.Versions[Kind(v.Kind)] = v.Version
	}
	return out, nil
}

// Publish checks proposed against the published content and publishes what changed: the
// function `tend apply` and the admin API share. A change that does not build returns its
// Diagnostics and publishes nothing.
func Publish(ctx context.Context, store *db.Store, proposed Source, by string, pinned bool) (*Plan, []db.ContentVersion, error) {
	p, err := NewPlan(ctx, store, proposed)
	if err != nil {
		return nil, nil, err
	}
	vs, err := p.Publish(ctx, store, by, pinned)
	return p, vs, err
}

// DryRunner tells what a change would do to the leads in flight, before it is published.
type DryRunner interface {
	DryRun(ctx context.Context, current, proposed *Set) (any, error)
}

// Rollout moves the leads in flight onto a newly published (not pinned) version; version is the
// sequences version now published.
type Rollout interface {
	Follow(ctx context.Context, version int, current, proposed *Set) error
}

// Resumer releases the sends held while a sequence or step was paused, spread over ramp, once
// the pause is lifted; it returns how many it released.
type Resumer interface {
	Resume(ctx context.Context, sequenceID, stepID string, ramp time.Duration) (int, error)
}
