// Package yamlcheck reads YAML configuration files (sequences, scoring model, sales team) into
// nodes and reports every mistake with its line: unknown or repeated fields, missing fields,
// wrong shapes. The packages that own each file format build their validation on it.
package yamlcheck

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Diagnostic is one mistake in a file.
type Diagnostic struct {
	File string `json:"file"`
	// Line is 1-based; 0 when the YAML parser could not say where.
	Line    int    `json:"line"`
	Message string `json:"message"`
}

// String formats the diagnostic as "file:line: message", the form editors and CI logs link.
func (d Diagnostic) String() string {
	if d.Line <= 0 {
		return fmt.Sprintf("%s: %s", d.File, d.Message)
	}
	return fmt.Sprintf("%s:%d: %s", d.File, d.Line, d.Message)
}

// Diagnostics is every mistake found in a file, in line order.
type Diagnostics []Diagnostic

// Error returns one diagnostic per line.
func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// Checker collects the diagnostics of one file.
type Checker struct {
	File  string
	Diags Diagnostics
}

// Sorted returns the diagnostics in line order (stable: same-line ones keep their order).
func (c *Checker) Sorted() Diagnostics {
	slices.SortStableFunc(c.Diags, func(a, b Diagnostic) int { return a.Line - b.Line })
	return c.Diags
}

// Build decodes data with c and builds a value from the root node. It returns every mistake
// found, in line order; the value is nil whenever there is any.
func Build[T any](c *Checker, data []byte, build func(root *yaml.Node) *T) (*T, Diagnostics) {
	root, ok := c.Decode(data)
	if !ok {
		return nil, c.Diags
	}
	v := build(root)
	if len(c.Sorted()) > 0 {
		return nil, c.Diags
	}
	return v, nil
}

// Load reads the file at path and parses it with parse. A file that cannot be read is an error
// naming what (e.g. "sequences"); an invalid one is its Diagnostics.
func Load[T any](path, what string, parse func(filename string, data []byte) (*T, Diagnostics)) (*T, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", what, err)
	}
	v, diags := parse(path, data)
	if len(diags) > 0 {
		return nil, diags
	}
	return v, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// Decode parses data into its root node; invalid YAML is reported with its line. An empty file is
// an empty mapping, so that the missing fields are what gets reported.
func (c *Checker) Decode(data []byte) (root *yaml.Node, ok bool) {
	var doc yaml.Node
	err := func() (err error) {
		// yaml.v3 has panicked on hostile input before; a bad file must never take the worker down.
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("yaml: %v", r)
			}
		}()
		return yaml.Unmarshal(data, &doc)
	}()
	if err != nil {
		msg := err.Error()
		line := 0
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = msg[len(m[0]):]
		}
		msg = strings.TrimPrefix(msg, "yaml: ")
		c.Diags = append(c.Diags, Diagnostic{File: c.File, Line: line, Message: "invalid YAML: " + msg})
		return nil, false
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		return doc.Content[0], true
	}
	// An empty file is an empty mapping, so that the missing fields are what gets reported.
	return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: 1}, true
}

// Errorf reports a mistake at n's line; ctx, when set, prefixes the message.
func (c *Checker) Errorf(n *yaml.Node, ctx, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if ctx != "" {
		msg = ctx + ": " + msg
	}
	c.Diags = append(c.Diags, Diagnostic{File: c.File, Line: n.Line, Message: msg})
}

// fields checks that n is a mapping holding only known keys, each once, and returns the value of
// every key that has one. A key with an empty value counts as absent. It returns nil when n is not a
// mapping.
func (c *Checker) Fields(n *yaml.Node, ctx string, known []string) map[string]*yaml.Node {
	n = Resolve(n)
	if n.Kind != yaml.MappingNode {
		c.Errorf(n, ctx, "expected a mapping, got %s", Describe(n))
		return nil
	}
	f := map[string]*yaml.Node{}
	keyLines := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := Resolve(n.Content[i]), Resolve(n.Content[i+1])
		name := k.Value
		switch {
		case k.Kind != yaml.ScalarNode || !slices.Contains(known, name):
			c.Errorf(k, ctx, "unknown field %q (valid: %s)", name, strings.Join(known, ", "))
			continue
		case keyLines[name] != 0:
			c.Errorf(k, ctx, "duplicate field %q (first on line %d)", name, keyLines[name])
			continue
		}
		keyLines[name] = k.Line
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			continue
		}
		f[name] = v
	}
	return f
}

// Required reports every name missing from f, the fields of mapping n.
func (c *Checker) Required(n *yaml.Node, f map[string]*yaml.Node, ctx string, names ...string) {
	for _, name := range names {
		if f[name] == nil {
			c.Errorf(Resolve(n), ctx, "missing required field %q", name)
		}
	}
}

// List returns the items of a sequence node, or nil after reporting that n is not a list.
func (c *Checker) List(n *yaml.Node, ctx, field string) []*yaml.Node {
	n = Resolve(n)
	if n.Kind != yaml.SequenceNode {
		c.Errorf(n, ctx, "%s: expected a list, got %s", field, Describe(n))
		return nil
	}
	items := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		items[i] = Resolve(c)
	}
	return items
}

// Scalar returns the text of a scalar node, or false after reporting that n is not one.
func (c *Checker) Scalar(n *yaml.Node, ctx, field string) (string, bool) {
	n = Resolve(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		c.Errorf(n, ctx, "%s: expected a string, got %s", field, Describe(n))
		return "", false
	}
	return n.Value, true
}

// Duration reads a duration such as 2h, 30d or 2w; positive says whether zero is refused too.
func (c *Checker) Duration(n *yaml.Node, ctx, field string, positive bool) (time.Duration, bool) {
	s, ok := c.Scalar(n, ctx, field)
	if !ok {
		return 0, false
	}
	d, err := ParseDuration(s)
	switch {
	case err != nil:
		c.Errorf(n, ctx, "%s: %v", field, err)
		return 0, false
	case d < 0 || (positive && d == 0):
		what := "must be positive"
		if !positive {
			what = "must not be negative"
		}
		c.Errorf(n, ctx, "%s: %s, got %s", field, what, s)
		return 0, false
	}
	return d, true
}

// IDPattern is what an id looks like in every configuration file.
var IDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ID reads an id field, which must match IDPattern; it returns "" (and reports why) when it does
// not. kind names the item in the message ("segment", "rule").
func (c *Checker) ID(n *yaml.Node, ctx, kind string) string {
	s, ok := c.Scalar(n, ctx, "id")
	if !ok {
		return ""
	}
	if !IDPattern.MatchString(s) {
		c.Errorf(n, ctx, "invalid %s id %q: use up to 63 lowercase letters, digits, \"-\" and \"_\", starting with a letter or digit", kind, s)
		return ""
	}
	return s
}

// Unique reports id (read from n) when seen, which maps the ids read so far to their lines,
// already has it, and records it otherwise. An empty id (one that was invalid) is skipped.
func (c *Checker) Unique(n *yaml.Node, ctx, kind, id string, seen map[string]int) {
	if id == "" {
		return
	}
	if first, dup := seen[id]; dup {
		c.Errorf(n, ctx, "duplicate %s id %q (first on line %d)", kind, id, first)
		return
	}
	seen[id] = n.Line
}

// Name is how messages call item n: `what "id"` when it has a valid id, else fallback (its
// position), so that a message can name the item before its fields are checked.
func Name(n *yaml.Node, what, fallback string) string {
	if id := PeekID(n); id != "" {
		return fmt.Sprintf("%s %q", what, id)
	}
	return fallback
}

// PeekID returns the id of mapping n when it is valid, without reporting anything.
func PeekID(n *yaml.Node) string {
	n = Resolve(n)
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "id" {
			if v := Resolve(n.Content[i+1]); v.Kind == yaml.ScalarNode && IDPattern.MatchString(v.Value) {
				return v.Value
			}
			return ""
		}
	}
	return ""
}

// resolve follows an alias to the node it names.
func Resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// Describe names what a node is, for "expected X, got Y" messages.
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "something else"
}
