package render

import (
	"testing"

	"github.com/tendhq/tend/templates"
)

// BenchmarkRender renders one nurture email (subject, text and HTML) for a lead.
func BenchmarkRender(b *testing.B) {
	r, err := New(templates.FS)
	if err != nil {
		b.Fatal(err)
	}
	d := NewData(Lead{Name: "Ada Lovelace", Company: "Analytical Engines", Email: "ada@example.com"},
		Sender{Name: "Acme Insights", PostalAddress: "Beispielstraße 1, Berlin"}, "https://t.acme.test/u/x")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Render("analytics-1", "{{.FirstName}}, three numbers every dashboard needs", d); err != nil {
			b.Fatal(err)
		}
	}
}
