package track

import (
	"html"
	"strings"
)

// This file holds a small HTML tokenizer that finds <a> start tags, </body> end tags and their
// attributes with byte offsets, so that Rewrite can edit a body in place and leave every other
// byte alone. It follows the WHATWG tokenizer (as golang.org/x/net/html implements it) for what
// matters here: comments, bogus comments and doctypes, raw-text elements whose content holds no
// tags (script, style, textarea, title, xmp, iframe, noembed, noframes, noscript, plaintext),
// attribute names and the three kinds of attribute value, and a tag cut off by the end of the
// input, which is no tag at all. It does not build a tree.

// span is a half-open byte range [start, end) of the input.
type span struct{ start, end int }

type attr struct {
	name  string // lower-cased
	whole span   // from the first byte of the name to the last byte of the value (quotes included)
	value span   // the raw value, quotes excluded; empty when the attribute has no value
	quote byte   // '"', '\'' or 0 for unquoted or absent values
}

// tag is a start or end tag.
type tag struct {
	name  string // lower-cased
	end   bool   // an end tag (</name …>)
	whole span   // from '<' to '>' inclusive
	attrs []attr // start tags only; duplicates are kept, the first of a name is the one that counts
}

// rawTextElements hold text up to their end tag: a "<a" inside them is not a tag.
var rawTextElements = map[string]bool{
	"script": true, "style": true, "textarea": true, "title": true, "xmp": true,
	"iframe": true, "noembed": true, "noframes": true, "noscript": true, "plaintext": true,
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f'
}

func isASCIILetter(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// scanTags calls fn for every complete start and end tag of s, in order. It returns where the
// unterminated construct that s ends in (a tag, comment or raw-text element cut off by the end
// of s) starts, or len(s) when s ends in text: anything appended to s must go there, or it
// becomes part of that construct.
func scanTags(s string, fn func(tag)) (textEnd int) {
	i := 0
	for i < len(s) {
		lt := strings.IndexByte(s[i:], '<')
		if lt < 0 || i+lt+1 >= len(s) {
			return len(s) // a final '<' is text
		}
		i += lt
		start := i
		var ok bool
		switch c := s[i+1]; {
		case isASCIILetter(c):
			var t tag
			if t, i, ok = readTag(s, i, false); !ok {
				return start
			}
			fn(t)
			if t.name == "plaintext" {
				return start
			}
			if rawTextElements[t.name] {
				if i, ok = skipRawText(s, i, t.name); !ok {
					return start
				}
			}
		case c == '/':
			if i+2 >= len(s) {
				return start
			}
			switch c2 := s[i+2]; {
			case c2 == '>': // "</>" is nothing
				i += 3
			case isASCIILetter(c2):
				var t tag
				if t, i, ok = readTag(s, i, true); !ok {
					return start
				}
				fn(t)
			default: // a bogus comment up to the next '>'
				if i, ok = skipPast(s, i+2, ">"); !ok {
					return start
				}
			}
		case c == '!':
			if strings.HasPrefix(s[i:], "<!--") {
				i, ok = skipComment(s, i+4)
			} else {
				i, ok = skipPast(s, i+2, ">") // doctype or bogus comment
			}
			if !ok {
				return start
			}
		case c == '?':
			if i, ok = skipPast(s, i+2, ">"); !ok {
				return start
			}
		default:
			i++ // a '<' that starts nothing is text
		}
	}
	return len(s)
}

// skipPast returns the offset just after the first occurrence of sep at or after i; false if
// there is none.
func skipPast(s string, i int, sep string) (int, bool) {
	j := strings.Index(s[i:], sep)
	if j < 0 {
		return len(s), false
	}
	return i + j + len(sep), true
}

// skipComment skips a comment whose "<!--" ends at i. Like browsers, it accepts "<!-->",
// "<!--->", "-->" and "--!>" as ends. It returns the offset after the end; false if there is none.
func skipComment(s string, i int) (int, bool) {
	if strings.HasPrefix(s[i:], ">") {
		return i + 1, true
	}
	if strings.HasPrefix(s[i:], "->") {
		return i + 2, true
	}
	for j := i; j < len(s); j++ {
		if s[j] != '-' || !strings.HasPrefix(s[j:], "--") {
			continue
		}
		k := j + 2
		for k < len(s) && s[k] == '-' { // "--->" ends a comment too
			k++
		}
		if k < len(s) && s[k] == '>' {
			return k + 1, true
		}
		if k+1 < len(s) && s[k] == '!' && s[k+1] == '>' {
			return k + 2, true
		}
		j = k - 1
	}
	return len(s), false
}

// skipRawText returns the offset of the end tag "</name" (followed by a space, '/' or '>') that
// closes a raw-text element whose content starts at i; false if there is none.
func skipRawText(s string, i int, name string) (int, bool) {
	for {
		j := strings.Index(s[i:], "</")
		if j < 0 {
			return len(s), false
		}
		k := i + j + 2
		if k+len(name) < len(s) && asciiEqualFold(s[k:k+len(name)], name) && (isSpace(s[k+len(name)]) || s[k+len(name)] == '/' || s[k+len(name)] == '>') {
			return i + j, true
		}
		i = i + j + 2
	}
}

// readTag reads the tag whose '<' is at s[start]. It reports false when the input ends first.
func readTag(s string, start int, end bool) (tag, int, bool) {
	i := start + 1
	if end {
		i++
	}
	nameStart := i
	for i < len(s) && !isSpace(s[i]) && s[i] != '/' && s[i] != '>' {
		i++
	}
	t := tag{name: asciiLower(s[nameStart:i]), end: end}
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i >= len(s) {
			return tag{}, 0, false
		}
		if s[i] == '>' {
			t.whole = span{start, i + 1}
			return t, i + 1, true
		}
		// Attribute name: an '=' as its first character belongs to the name.
		a := attr{whole: span{start: i}}
		j := i
		if s[j] == '=' {
			j++
		}
		for j < len(s) && !isSpace(s[j]) && s[j] != '/' && s[j] != '>' && s[j] != '=' {
			j++
		}
		a.name = asciiLower(s[i:j])
		i = j
		a.whole.end = i
		a.value = span{i, i}
		// After the name: optional spaces, then '=' and a value, or not.
		k := i
		for k < len(s) && isSpace(s[k]) {
			k++
		}
		if k < len(s) && s[k] == '/' {
			i = k + 1 // a '/' ends the attribute (and, before '>', marks a self-closing tag)
		} else if k < len(s) && s[k] == '=' {
			k++
			for k < len(s) && isSpace(s[k]) {
				k++
			}
			if k >= len(s) {
				return tag{}, 0, false
			}
			switch q := s[k]; q {
			case '>':
				i = k // an empty value; the '>' ends the tag
				a.whole.end = k
			case '"', '\'':
				e := strings.IndexByte(s[k+1:], q)
				if e < 0 {
					return tag{}, 0, false
				}
				a.quote = q
				a.value = span{k + 1, k + 1 + e}
				i = k + 1 + e + 1
				a.whole.end = i
			default:
				e := k
				for e < len(s) && !isSpace(s[e]) && s[e] != '>' {
					e++
				}
				a.value = span{k, e}
				i = e
				a.whole.end = i
			}
		}
		// Otherwise the attribute has no value, and the spaces after its name precede the next one.
		if !end && a.name != "" {
			t.attrs = append(t.attrs, a)
		}
	}
}

// attrValue decodes the character references in an attribute value the way browsers do for
// attributes: a legacy named reference without ';' ("&not", "&copy") is left alone when an
// '=' or an alphanumeric follows it, so "?a=1&not=2" keeps its query.
// Like browsers, it also turns NUL bytes into U+FFFD.
func attrValue(raw string) string {
	if strings.IndexByte(raw, 0) >= 0 {
		raw = strings.ReplaceAll(raw, "\x00", "\uFFFD")
	}
	if strings.IndexByte(raw, '&') < 0 {
		return raw
	}
	var b strings.Builder
	b.Grow(len(raw))
	i := 0
	for i < len(raw) {
		amp := strings.IndexByte(raw[i:], '&')
		if amp < 0 {
			b.WriteString(raw[i:])
			break
		}
		b.WriteString(raw[i : i+amp])
		i += amp
		j := i + 1
		if j < len(raw) && raw[j] == '#' {
			j++
			hex := j < len(raw) && (raw[j] == 'x' || raw[j] == 'X')
			if hex {
				j++
			}
			d := j
			for j < len(raw) && (isDigit(raw[j]) || hex && isHexLetter(raw[j])) {
				j++
			}
			if j == d { // "&#" or "&#x" with no digits is text
				b.WriteString(raw[i:j])
				i = j
				continue
			}
			if j < len(raw) && raw[j] == ';' {
				j++
			}
			b.WriteString(html.UnescapeString(raw[i:j]))
			i = j
			continue
		}
		for j < len(raw) && (isDigit(raw[j]) || isASCIILetter(raw[j])) {
			j++
		}
		name := raw[i+1 : j]
		switch {
		case name == "":
			b.WriteByte('&')
			i++
		case j < len(raw) && raw[j] == ';':
			if v, ok := namedRef(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString(raw[i : j+1])
			}
			i = j + 1
		default:
			// Without ';' only a legacy reference naming the whole run decodes, and not before '='.
			v, ok := namedRef(name)
			if ok && html.UnescapeString("&"+name) == v && (j >= len(raw) || raw[j] != '=') {
				b.WriteString(v)
			} else {
				b.WriteString(raw[i:j])
			}
			i = j
		}
	}
	return b.String()
}

// namedRef decodes "&name;" when name (without ';') is a complete entity name.
func namedRef(name string) (string, bool) {
	ref := "&" + name + ";"
	v := html.UnescapeString(ref)
	if v == ref {
		return "", false
	}
	// html.UnescapeString also decodes a legacy prefix ("&notit;" → "¬it;"); a full match
	// consumes the ';'. Only "&semi;" decodes to a string ending in ';' by itself.
	if strings.HasSuffix(v, ";") && v != ";" {
		return "", false
	}
	return v, true
}

// asciiLower lower-cases ASCII letters only, as HTML does for tag and attribute names.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// asciiEqualFold reports whether s equals the lower-case ASCII word lower, ignoring ASCII case.
func asciiEqualFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool     { return '0' <= c && c <= '9' }
func isHexLetter(c byte) bool { return 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }
