package track

import (
	"html"
	"net/url"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	// MaxLinks is the most distinct links Rewrite tracks in one email; links beyond it are left
	// as they are (they still work, untracked).
	MaxLinks = 100
	// MaxURLLen is the longest URL Rewrite tracks; a longer one is left as it is, so that the
	// stored redirect targets stay bounded.
	MaxURLLen = 4096
)

// Link is one tracked link of an email. The click redirect for (send, Index) goes to URL and
// nowhere else.
type Link struct {
	// Index numbers the email's distinct links from 1 in order of first appearance, HTML body
	// first; 0 never names a link.
	Index int
	// URL is the target as a browser would follow it: character references decoded, surrounding
	// spaces and embedded tabs and newlines removed.
	URL string
	// Tag is the data-tag attribute of the first <a> for this URL that has one, e.g. "pricing"
	// (scoring can weigh a pricing click more), or "".
	Tag string
}

// Rewrite prepares an email for tracking. It replaces every absolute http(s) link with a click
// URL and adds an open pixel to the HTML body.
//
// In htmlBody, it rewrites the href of each <a> whose href is an absolute http or https URL with
// a host, and removes that tag's data-tag attribute (its value becomes Link.Tag) and any
// duplicate href. Every other byte is kept: other tags and attributes, quoting, case, comments,
// and links that are not http(s) (mailto:, tel:, #anchors, relative, javascript: — html/template
// has already neutralised the last). Text inside comments, <script>, <style>, <title> and
// <textarea> is not markup and is not touched. The pixel, an <img> of pixelURL, goes before the
// last </body> (else </html>, else at the end, but before a tag or comment that the end of the
// body cuts off); there is none when pixelURL or htmlBody is empty.
//
// In text, it rewrites every http:// or https:// URL that starts a word. A URL ends at a space,
// '<', '>', '"' or '`'; trailing . , ; : ! ? ' " are not part of it, nor a ) or ] without its
// opening bracket inside the URL, so "(see https://x.com/a)." keeps its punctuation.
//
// The same URL in both bodies, or twice in one, is one Link with one index. At most MaxLinks
// distinct URLs are tracked; later new ones are left as they are. clickURL(i) gives the URL
// that replaces link i (it is called once per link and must return an absolute URL); it is
// HTML-escaped in the HTML body.
func Rewrite(htmlBody, text string, clickURL func(index int) string, pixelURL string) (outHTML, outText string, links []Link) {
	ls := &linkSet{byURL: map[string]int{}, clickURL: clickURL}
	outHTML = ls.rewriteHTML(htmlBody, pixelURL)
	outText = ls.rewriteText(text)
	return outHTML, outText, ls.links
}

type linkSet struct {
	byURL    map[string]int // URL → position in links
	links    []Link
	targets  []string // clickURL(links[i].Index)
	clickURL func(int) string
}

// add returns the click URL for u, adding u as a new link if there is room.
func (ls *linkSet) add(u, tag string) (string, bool) {
	if i, ok := ls.byURL[u]; ok {
		if ls.links[i].Tag == "" {
			ls.links[i].Tag = tag
		}
		return ls.targets[i], true
	}
	if len(ls.links) >= MaxLinks {
		return "", false
	}
	l := Link{Index: len(ls.links) + 1, URL: u, Tag: tag}
	ls.byURL[u] = len(ls.links)
	ls.links = append(ls.links, l)
	ls.targets = append(ls.targets, ls.clickURL(l.Index))
	return ls.targets[len(ls.targets)-1], true
}

type edit struct {
	span
	with string
}

func (ls *linkSet) rewriteHTML(s, pixelURL string) string {
	var edits []edit
	bodyEnd, htmlEnd := -1, -1
	textEnd := scanTags(s, func(t tag) {
		if t.end {
			switch t.name {
			case "body":
				bodyEnd = t.whole.start
			case "html":
				htmlEnd = t.whole.start
			}
			return
		}
		if t.name != "a" {
			return
		}
		href, tagAttr := -1, -1
		for i, a := range t.attrs {
			switch {
			case a.name == "href" && href < 0:
				href = i
			case a.name == "data-tag" && tagAttr < 0:
				tagAttr = i
			}
		}
		if href < 0 {
			return
		}
		h := t.attrs[href]
		u, ok := trackableURL(attrValue(s[h.value.start:h.value.end]))
		if !ok {
			return
		}
		var label string
		if tagAttr >= 0 {
			v := t.attrs[tagAttr].value
			label = strings.TrimSpace(attrValue(s[v.start:v.end]))
		}
		target, ok := ls.add(u, label)
		if !ok {
			return
		}
		if h.quote != 0 {
			edits = append(edits, edit{h.value, html.EscapeString(target)})
		} else {
			edits = append(edits, edit{h.value, `"` + html.EscapeString(target) + `"`})
		}
		for i, a := range t.attrs {
			if a.name == "data-tag" || a.name == "href" && i != href {
				edits = append(edits, edit{removal(s, t, a), ""})
			}
		}
	})

	if len(edits) == 0 && (s == "" || pixelURL == "") {
		return s
	}
	if s != "" && pixelURL != "" {
		at := textEnd // not after a cut-off tag or comment, which would swallow the pixel
		switch {
		case bodyEnd >= 0:
			at = bodyEnd
		case htmlEnd >= 0:
			at = htmlEnd
		}
		edits = append(edits, edit{span{at, at}, pixelTag(pixelURL)})
	}
	sort.SliceStable(edits, func(i, j int) bool { return edits[i].start < edits[j].start })

	var b strings.Builder
	b.Grow(len(s) + len(edits)*64)
	last := 0
	for _, e := range edits {
		b.WriteString(s[last:e.start])
		b.WriteString(e.with)
		last = e.end
	}
	b.WriteString(s[last:])
	return b.String()
}

// removal is the span to delete to drop attribute a from tag t: the attribute and the spaces
// before it.
func removal(s string, t tag, a attr) span {
	start := a.whole.start
	for start > t.whole.start && isSpace(s[start-1]) {
		start--
	}
	return span{start, a.whole.end}
}

func pixelTag(pixelURL string) string {
	return `<img src="` + html.EscapeString(pixelURL) + `" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0;margin:0;padding:0">`
}

// trackableURL cleans an href or text URL the way a browser's URL parser would see it and
// reports whether it is an absolute http(s) URL with a host that Rewrite may track.
func trackableURL(raw string) (string, bool) {
	u := strings.TrimFunc(raw, func(r rune) bool { return r <= ' ' })
	if strings.ContainsAny(u, "\t\n\r") {
		u = strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(u)
	}
	if len(u) > MaxURLLen || !hasHTTPScheme(u) {
		return "", false
	}
	p, err := url.Parse(u)
	if err != nil || p.Host == "" || p.Hostname() == "" {
		return "", false
	}
	return u, true
}

func hasHTTPScheme(u string) bool {
	return hasPrefixFold(u, "http://") || hasPrefixFold(u, "https://")
}

// hasPrefixFold reports whether s starts with the lower-case ASCII prefix, ignoring ASCII case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && asciiEqualFold(s[:len(prefix)], prefix)
}

func (ls *linkSet) rewriteText(s string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); {
		if !(s[i] == 'h' || s[i] == 'H') || !hasHTTPScheme(s[i:]) || i > 0 && isAlnum(s[i-1]) {
			i++
			continue
		}
		end := textURLEnd(s, i)
		target, ok := "", false
		if u, good := trackableURL(s[i:end]); good && u == s[i:end] {
			target, ok = ls.add(u, "")
		}
		if ok {
			if b.Len() == 0 {
				b.Grow(len(s) + 256)
			}
			b.WriteString(s[last:i])
			b.WriteString(target)
			last = end
		}
		i = max(end, i+1)
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// textURLEnd returns where the URL starting at s[i] ends in plain text.
func textURLEnd(s string, i int) int {
	end := i
	for end < len(s) {
		r, size := utf8.DecodeRuneInString(s[end:])
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError && size == 1 ||
			r == '<' || r == '>' || r == '"' || r == '`' {
			break
		}
		end += size
	}
	// Counted once: trimming must stay linear in the length of the URL.
	opens := strings.Count(s[i:end], "(")
	closes := strings.Count(s[i:end], ")")
	openSq := strings.Count(s[i:end], "[")
	closeSq := strings.Count(s[i:end], "]")
	for end > i {
		switch c := s[end-1]; {
		case strings.IndexByte(".,;:!?'\"", c) >= 0:
		case c == ')' && opens < closes:
			closes--
		case c == ']' && openSq < closeSq:
			closeSq--
		default:
			return end
		}
		end--
	}
	return end
}

func isAlnum(c byte) bool { return isDigit(c) || isASCIILetter(c) }
