// Package render turns an email template and a lead into a subject, a plain-text body and an HTML
// body. HTML goes through html/template (contextual escaping); templates written by marketers get
// a small, side-effect-free function set. A missing field never renders as "<no value>": the
// lead's fields come with fallbacks, and attributes are read through attr with a fallback.
package render

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	texttemplate "text/template"
)

// Sender is the organisation that sends the email, shown in every footer.
type Sender struct {
	Name          string
	PostalAddress string
}

// Lead holds the lead's fields a template may use.
type Lead struct {
	Name       string
	Company    string
	Email      string
	Attributes map[string]string
}

// Data is what a template sees.
type Data struct {
	// FirstName is the first word of the lead's name, or "there" ("Hi there").
	FirstName string
	// Name is the lead's full name, or "there".
	Name string
	// Company is the lead's company, or "your team".
	Company string
	Email   string
	// Subject is the rendered subject line.
	Subject        string
	UnsubscribeURL string
	// PreferencesURL opens the preference centre (the same page as the unsubscribe link).
	PreferencesURL string
	Sender         Sender
	Attributes     map[string]string
}

// Email is a rendered email.
type Email struct {
	Subject string
	Text    string
	HTML    string
}

// Renderer holds parsed templates. It is safe for concurrent use.
type Renderer struct {
	html map[string]*htmltemplate.Template
	text map[string]*texttemplate.Template
}

// funcs is the small, side-effect-free function set templates get (attr is bound per render).
func funcs() map[string]any {
	return map[string]any{
		"upper": strings.ToUpper,
		"lower": strings.ToLower,
		"default": func(fallback, v string) string {
			if strings.TrimSpace(v) == "" {
				return fallback
			}
			return v
		},
	}
}

// attrFunc is bound per execution so templates can read attributes with a fallback.
func attrFunc(attrs map[string]string) func(key, fallback string) string {
	return func(key, fallback string) string {
		if v := strings.TrimSpace(attrs[key]); v != "" {
			return v
		}
		return fallback
	}
}

// New parses every template in fsys: <name>.html and <name>.txt pairs plus the _layout.html and
// _layout.txt layouts. A name with only one of the two files is an error.
func New(fsys fs.FS) (*Renderer, error) {
	layoutHTML, err := fs.ReadFile(fsys, "_layout.html")
	if err != nil {
		return nil, fmt.Errorf("read HTML layout: %w", err)
	}
	layoutText, err := fs.ReadFile(fsys, "_layout.txt")
	if err != nil {
		return nil, fmt.Errorf("read text layout: %w", err)
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("list templates: %w", err)
	}
	r := &Renderer{html: map[string]*htmltemplate.Template{}, text: map[string]*texttemplate.Template{}}
	names := map[string]int{}
	fm := funcs()
	fm["attr"] = attrFunc(nil)
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, "_") || strings.HasPrefix(n, ".") {
			continue
		}
		ext := path.Ext(n)
		base := strings.TrimSuffix(n, ext)
		body, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		switch ext {
		case ".html":
			t, err := htmltemplate.New(base).Funcs(fm).Parse(string(layoutHTML))
			if err == nil {
				_, err = t.New("content").Parse(string(body))
			}
			if err != nil {
				return nil, fmt.Errorf("template %s: %w", n, err)
			}
			r.html[base] = t
			names[base]++
		case ".txt":
			t, err := texttemplate.New(base).Funcs(fm).Parse(string(layoutText))
			if err == nil {
				_, err = t.New("content").Parse(string(body))
			}
			if err != nil {
				return nil, fmt.Errorf("template %s: %w", n, err)
			}
			r.text[base] = t
			names[base]++
		}
	}
	var missing []string
	for n, c := range names {
		if c != 2 {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("templates need both a .html and a .txt file: %s", strings.Join(missing, ", "))
	}
	return r, nil
}

// Overlay returns a file system that serves files from dir first and from base otherwise, so an
// operator can override single templates.
func Overlay(dir string, base fs.FS) fs.FS {
	if dir == "" {
		return base
	}
	return overlay{top: os.DirFS(dir), base: base}
}

type overlay struct{ top, base fs.FS }

func (o overlay) Open(name string) (fs.File, error) {
	if f, err := o.top.Open(name); err == nil {
		return f, nil
	}
	return o.base.Open(name)
}

func (o overlay) ReadDir(name string) ([]fs.DirEntry, error) {
	seen := map[string]fs.DirEntry{}
	for _, fsys := range []fs.FS{o.base, o.top} {
		es, err := fs.ReadDir(fsys, name)
		if err != nil {
			if fsys == o.top {
				continue
			}
			return nil, err
		}
		for _, e := range es {
			seen[e.Name()] = e
		}
	}
	out := make([]fs.DirEntry, 0, len(seen))
	for _, e := range seen {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// Has reports whether a template of that name exists.
func (r *Renderer) Has(name string) bool {
	_, ok := r.html[name]
	return ok
}

// Names lists the template names.
func (r *Renderer) Names() []string {
	out := make([]string, 0, len(r.html))
	for n := range r.html {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// NewData fills Data from a lead, with fallbacks for missing fields.
func NewData(l Lead, sender Sender, unsubscribeURL string) Data {
	name := strings.TrimSpace(l.Name)
	first := "there"
	if f := strings.Fields(name); len(f) > 0 {
		first = f[0]
	}
	if name == "" {
		name = "there"
	}
	company := strings.TrimSpace(l.Company)
	if company == "" {
		company = "your team"
	}
	attrs := l.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	prefs := unsubscribeURL
	if prefs == "" {
		prefs = "mailto:?subject=preferences" // no tracking configured (tests): still a harmless link
	}
	return Data{FirstName: first, Name: name, Company: company, Email: l.Email, Sender: sender,
		UnsubscribeURL: unsubscribeURL, PreferencesURL: prefs, Attributes: attrs}
}

// Render renders the named template with the given subject template.
func (r *Renderer) Render(name, subject string, d Data) (Email, error) {
	ht, ok := r.html[name]
	if !ok {
		return Email{}, fmt.Errorf("unknown template %q", name)
	}
	tt := r.text[name]
	attr := map[string]any{"attr": attrFunc(d.Attributes)}

	st, err := texttemplate.New("subject").Funcs(funcs()).Funcs(attr).Option("missingkey=zero").Parse(subject)
	if err != nil {
		return Email{}, fmt.Errorf("subject of %s: %w", name, err)
	}
	var sb bytes.Buffer
	if err := st.Execute(&sb, d); err != nil {
		return Email{}, fmt.Errorf("subject of %s: %w", name, err)
	}
	d.Subject = strings.Join(strings.Fields(sb.String()), " ") // one line, no CR/LF

	// Clone so binding attr for this lead never races with another render.
	hc, err := ht.Clone()
	if err != nil {
		return Email{}, err
	}
	var hb bytes.Buffer
	if err := hc.Funcs(attr).ExecuteTemplate(&hb, "layout", d); err != nil {
		return Email{}, fmt.Errorf("render %s.html: %w", name, err)
	}
	tc, err := tt.Clone()
	if err != nil {
		return Email{}, err
	}
	var tb bytes.Buffer
	if err := tc.Funcs(attr).ExecuteTemplate(&tb, "layout", d); err != nil {
		return Email{}, fmt.Errorf("render %s.txt: %w", name, err)
	}
	return Email{Subject: d.Subject, Text: tb.String(), HTML: hb.String()}, nil
}
