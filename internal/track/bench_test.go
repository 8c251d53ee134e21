package track

import (
	"strings"
	"testing"
)

// BenchmarkVerify is the cost of checking one tracking token, paid on every open and click.
func BenchmarkVerify(b *testing.B) {
	keys, err := ParseKeys(GenerateKey("k2") + "," + GenerateKey("k1"))
	if err != nil {
		b.Fatal(err)
	}
	tok := keys.Sign(Token{Kind: KindClick, SendID: [16]byte{1, 2, 3}, Link: 3})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := keys.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRewrite rewrites a typical email (HTML and text, 10 links) for tracking.
func BenchmarkRewrite(b *testing.B) {
	var h, t strings.Builder
	h.WriteString("<html><body><p>Hello</p>")
	for i := range 10 {
		h.WriteString(`<p><a href="https://acme.test/guide/` + string(rune('a'+i)) + `" data-tag="analytics">Read more</a> and some text to carry it.</p>`)
		t.WriteString("Read more: https://acme.test/guide/" + string(rune('a'+i)) + "\n")
	}
	h.WriteString("</body></html>")
	html, text := h.String(), t.String()
	click := func(i int) string {
		return "https://t.acme.test/t/c/k1.AAAAAAAAAAAAAAAAAAAAAAAB.BBBBBBBBBBBBBBBBBBBBBB"
	}
	b.ReportAllocs()
	for b.Loop() {
		_, _, _ = Rewrite(html, text, click, "https://t.acme.test/t/o/k1.x.y")
	}
}
