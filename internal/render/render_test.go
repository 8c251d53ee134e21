package render_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/render"
	"github.com/tendhq/tend/templates"
)

var sender = render.Sender{Name: "Acme Insights", PostalAddress: "Acme Insights GmbH, Beispielstraße 1, 10115 Berlin"}

func builtin(t *testing.T) *render.Renderer {
	t.Helper()
	r, err := render.New(templates.FS)
	require.NoError(t, err)
	require.NotEmpty(t, r.Names())
	return r
}

func TestEveryTemplateRendersForAnEmptyLead(t *testing.T) {
	t.Parallel()
	r := builtin(t)
	d := render.NewData(render.Lead{Email: "anon@example.com"}, sender, "https://tend.test/u/abc")
	for _, name := range r.Names() {
		t.Run(name, func(t *testing.T) {
			e, err := r.Render(name, "{{.FirstName}}, a note for {{.Company}}", d)
			require.NoError(t, err)
			assert.Equal(t, "there, a note for your team", e.Subject)
			for part, body := range map[string]string{"text": e.Text, "html": e.HTML} {
				assert.NotContains(t, body, "<no value>", part)
				assert.Contains(t, body, "Hi there,", part)
				assert.Contains(t, body, "https://tend.test/u/abc", part)
			}
		})
	}
}

func TestFallbacksAppearWhereTheTemplateUsesThem(t *testing.T) {
	t.Parallel()
	r := builtin(t)
	d := render.NewData(render.Lead{}, sender, "")
	e, err := r.Render("general-1", "Welcome", d)
	require.NoError(t, err)
	assert.Contains(t, e.Text, "teams like your team")
	assert.Contains(t, e.HTML, "teams like your team")
	// Without an unsubscribe URL the footer still tells the reader how to stop the emails.
	assert.Contains(t, e.Text, `Reply with "unsubscribe"`)
	assert.Contains(t, e.HTML, "Reply with &ldquo;unsubscribe&rdquo;")
}

func TestFirstNameIsTheFirstWordOfTheName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, first, full string }{
		{"Ada Lovelace", "Ada", "Ada Lovelace"},
		{"  Grace   Brewster Hopper ", "Grace", "Grace   Brewster Hopper"},
		{"Cher", "Cher", "Cher"},
		{"   ", "there", "there"},
	} {
		d := render.NewData(render.Lead{Name: tc.name, Company: "Initech"}, sender, "")
		assert.Equal(t, tc.first, d.FirstName, "first name of %q", tc.name)
		assert.Equal(t, tc.full, d.Name, "name of %q", tc.name)
		assert.Equal(t, "Initech", d.Company)
	}

	r := builtin(t)
	e, err := r.Render("general-1", "{{.FirstName}}, welcome", render.NewData(render.Lead{Name: "Ada Lovelace"}, sender, ""))
	require.NoError(t, err)
	assert.Equal(t, "Ada, welcome", e.Subject)
	assert.Contains(t, e.Text, "Hi Ada,")
	assert.Contains(t, e.HTML, "<p>Hi Ada,</p>")
}

func TestHTMLEscapesLeadData(t *testing.T) {
	t.Parallel()
	r := builtin(t)
	const evil = "<script>alert(1)</script>"
	d := render.NewData(render.Lead{Name: evil, Company: `"><img src=x onerror=alert(2)>`}, sender, "")
	e, err := r.Render("general-1", "Hello {{.Name}}", d)
	require.NoError(t, err)

	assert.NotContains(t, e.HTML, "<script>")
	assert.NotContains(t, e.HTML, "<img")
	// The body greets with the (escaped) first word and the <title> carries the escaped subject.
	assert.Contains(t, e.HTML, "Hi &lt;script&gt;alert(1)&lt;/script&gt;,")
	assert.Contains(t, e.HTML, "<title>Hello &lt;script&gt;alert(1)&lt;/script&gt;</title>")
	assert.Contains(t, e.HTML, "teams like &#34;&gt;&lt;img src=x onerror=alert(2)&gt;")

	// The Subject header and the text part are plain text: the reader sees what the lead typed,
	// not HTML entities.
	assert.Equal(t, "Hello "+evil, e.Subject)
	assert.Contains(t, e.Text, "Hi "+evil+",")
}

func TestAttrWithFallback(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"_layout.html":  {Data: []byte(`{{define "layout"}}{{template "content" .}}{{end}}`)},
		"_layout.txt":   {Data: []byte(`{{define "layout"}}{{template "content" .}}{{end}}`)},
		"industry.html": {Data: []byte(`<p>News for {{attr "industry" "your industry"}}</p>`)},
		"industry.txt":  {Data: []byte(`News for {{attr "industry" "your industry"}}`)},
	}
	r, err := render.New(fsys)
	require.NoError(t, err)
	const subject = `{{attr "industry" "your industry"}} trends`

	e, err := r.Render("industry", subject, render.NewData(render.Lead{}, sender, ""))
	require.NoError(t, err)
	assert.Equal(t, "your industry trends", e.Subject)
	assert.Equal(t, "<p>News for your industry</p>", e.HTML)
	assert.Equal(t, "News for your industry", e.Text)

	e, err = r.Render("industry", subject, render.NewData(render.Lead{Attributes: map[string]string{"industry": "Fintech & Banking"}}, sender, ""))
	require.NoError(t, err)
	assert.Equal(t, "Fintech & Banking trends", e.Subject)
	assert.Equal(t, "<p>News for Fintech &amp; Banking</p>", e.HTML)
	assert.Equal(t, "News for Fintech & Banking", e.Text)

	// A blank attribute counts as missing.
	e, err = r.Render("industry", subject, render.NewData(render.Lead{Attributes: map[string]string{"industry": "  "}}, sender, ""))
	require.NoError(t, err)
	assert.Equal(t, "your industry trends", e.Subject)
}

func TestBuiltInAttrTemplateUsesAttributeOrFallback(t *testing.T) {
	t.Parallel()
	r := builtin(t)
	e, err := r.Render("analytics-3", "Case study", render.NewData(render.Lead{}, sender, ""))
	require.NoError(t, err)
	assert.Contains(t, e.Text, "team lead")
	assert.Contains(t, e.HTML, "team lead")

	e, err = r.Render("analytics-3", "Case study", render.NewData(render.Lead{Attributes: map[string]string{"role": "Head of Data"}}, sender, ""))
	require.NoError(t, err)
	assert.Contains(t, e.Text, "Head of Data")
	assert.Contains(t, e.HTML, "Head of Data")
	assert.NotContains(t, e.Text, "team lead")
}

func TestSubjectIsOneLine(t *testing.T) {
	t.Parallel()
	r := builtin(t)
	d := render.NewData(render.Lead{Name: "Eve\r\nBcc: victim@example.com", Company: "Evil\nCorp"}, sender, "")
	e, err := r.Render("general-1", "Hi {{.Name}} at {{.Company}}\r\n", d)
	require.NoError(t, err)
	assert.NotContains(t, e.Subject, "\r")
	assert.NotContains(t, e.Subject, "\n")
	assert.Equal(t, "Hi Eve Bcc: victim@example.com at Evil Corp", e.Subject)
}

func TestFooterCarriesPostalAddress(t *testing.T) {
	t.Parallel()
	r := builtin(t)
	for _, name := range r.Names() {
		e, err := r.Render(name, "s", render.NewData(render.Lead{}, sender, "https://tend.test/u/1"))
		require.NoError(t, err)
		assert.Contains(t, e.Text, sender.PostalAddress, name)
		assert.Contains(t, e.HTML, sender.PostalAddress, name)
		assert.Contains(t, e.Text, "You receive this email from Acme Insights", name)
		assert.Contains(t, e.HTML, "You receive this email from Acme Insights", name)
	}
}

func TestOverlayOverridesAndAddsTemplates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	write("general-1.html", `<p>Overridden for {{.FirstName}}</p>`)
	write("general-1.txt", `Overridden for {{.FirstName}}`)
	write("webinar.html", `<p>Join our webinar, {{.FirstName}}</p>`)
	write("webinar.txt", `Join our webinar, {{.FirstName}}`)

	r, err := render.New(render.Overlay(dir, templates.FS))
	require.NoError(t, err)
	assert.True(t, r.Has("webinar"))
	assert.True(t, r.Has("general-2"), "built-in templates that are not overridden stay available")

	d := render.NewData(render.Lead{Name: "Ada"}, sender, "")
	e, err := r.Render("general-1", "s", d)
	require.NoError(t, err)
	assert.Contains(t, e.Text, "Overridden for Ada")
	assert.Contains(t, e.HTML, "<p>Overridden for Ada</p>")
	assert.NotContains(t, e.Text, "Thanks for signing up")
	// Overrides are still wrapped in the built-in layout with its footer.
	assert.Contains(t, e.Text, sender.PostalAddress)

	e, err = r.Render("webinar", "s", d)
	require.NoError(t, err)
	assert.Contains(t, e.Text, "Join our webinar, Ada")
	assert.Contains(t, e.HTML, sender.PostalAddress)

	e, err = r.Render("general-2", "s", d)
	require.NoError(t, err)
	assert.NotContains(t, e.Text, "Overridden")

	// Without a directory the built-in set is used as is.
	plain, err := render.New(render.Overlay("", templates.FS))
	require.NoError(t, err)
	assert.False(t, plain.Has("webinar"))
}

func TestTemplateWithoutTextPartIsRejected(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "promo.html"), []byte(`<p>Hi</p>`), 0o644))
	_, err := render.New(render.Overlay(dir, templates.FS))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "promo")
	assert.Contains(t, err.Error(), ".txt")
}

func TestTemplateWithSyntaxErrorIsRejected(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "broken.html"), []byte(`<p>{{.FirstName</p>`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "broken.txt"), []byte(`ok`), 0o644))
	_, err := render.New(render.Overlay(dir, templates.FS))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "broken.html")
}

func TestUnknownTemplate(t *testing.T) {
	t.Parallel()
	r := builtin(t)
	assert.False(t, r.Has("nope"))
	_, err := r.Render("nope", "s", render.NewData(render.Lead{}, sender, ""))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"nope"`)
}

func TestBadSubjectTemplate(t *testing.T) {
	t.Parallel()
	r := builtin(t)
	_, err := r.Render("general-1", "{{.FirstName", render.NewData(render.Lead{}, sender, ""))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "subject of general-1")
}

func TestConcurrentRenders(t *testing.T) {
	t.Parallel()
	r := builtin(t)
	names := r.Names()
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range 20 {
				name := names[(w+i)%len(names)]
				who := fmt.Sprintf("Lead%d-%d Smith", w, i)
				e, err := r.Render(name, "{{.FirstName}} {{attr \"plan\" \"free\"}}", render.NewData(
					render.Lead{Name: who, Attributes: map[string]string{"plan": fmt.Sprintf("plan%d", w)}}, sender, ""))
				if err != nil {
					errs <- err
					return
				}
				// Each render sees its own lead and attributes, never another goroutine's.
				want := fmt.Sprintf("Lead%d-%d plan%d", w, i, w)
				if e.Subject != want || !strings.Contains(e.Text, fmt.Sprintf("Hi Lead%d-%d,", w, i)) {
					errs <- fmt.Errorf("worker %d render %d of %s: subject %q", w, i, name, e.Subject)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
