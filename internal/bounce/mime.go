package bounce

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/quotedprintable"
	"regexp"
	"strings"
)

// The MIME reading here is deliberately forgiving: bounce generators are old, varied and often
// sloppy, and the standard library's readers give up on a single malformed header line or a
// bare-LF message. Nothing here allocates more than a small multiple of the input.

// field is one header field, its name lower-cased and its value unfolded.
type field struct{ name, value string }

type fields []field

// get returns the first value of the named field (name in lower case), or "".
func (fs fields) get(name string) string {
	for _, f := range fs {
		if f.name == name {
			return f.value
		}
	}
	return ""
}

// all returns every value of the named field (name in lower case).
func (fs fields) all(name string) []string {
	var vs []string
	for _, f := range fs {
		if f.name == name {
			vs = append(vs, f.value)
		}
	}
	return vs
}

// has reports whether any of the named fields is present.
func (fs fields) has(names ...string) bool {
	for _, n := range names {
		for _, f := range fs {
			if f.name == n {
				return true
			}
		}
	}
	return false
}

// nextLine returns the line starting at pos without its LF or CRLF, and the offset after it.
func nextLine(b []byte, pos int) (line []byte, next int) {
	i := bytes.IndexByte(b[pos:], '\n')
	if i < 0 {
		return bytes.TrimSuffix(b[pos:], []byte("\r")), len(b)
	}
	return bytes.TrimSuffix(b[pos:pos+i], []byte("\r")), pos + i + 1
}

// splitMessage separates a header block from the body that follows the first empty line. Lines
// that are neither fields nor continuations (an mbox "From " line, junk) are skipped.
func splitMessage(b []byte) (fields, []byte) {
	var (
		fs   fields
		name string
		val  strings.Builder // the current field's value, built up so folding stays linear
		body []byte
	)
	flush := func() {
		if name != "" {
			fs = append(fs, field{name: name, value: val.String()})
		}
		name = ""
		val.Reset()
	}
	pos := 0
	for pos < len(b) {
		line, next := nextLine(b, pos)
		pos = next
		if len(line) == 0 {
			body = b[pos:]
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if v := bytes.TrimSpace(line); name != "" && len(v) > 0 {
				if val.Len() > 0 {
					val.WriteByte(' ')
				}
				val.Write(v)
			}
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isFieldName(line[:colon]) {
			continue
		}
		flush()
		name = strings.ToLower(string(line[:colon]))
		val.Write(bytes.TrimSpace(line[colon+1:]))
	}
	flush()
	return fs, body
}

func isFieldName(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// splitBlocks splits a message/delivery-status body into its blank-line separated field groups.
func splitBlocks(b []byte) []fields {
	var blocks []fields
	for len(b) > 0 {
		// Skip blank lines between groups, including whitespace-only ones.
		pos := 0
		for pos < len(b) {
			line, next := nextLine(b, pos)
			if len(bytes.TrimSpace(line)) != 0 {
				break
			}
			pos = next
		}
		b = b[pos:]
		if len(b) == 0 {
			break
		}
		fs, rest := splitMessage(b)
		if len(fs) > 0 {
			blocks = append(blocks, fs)
		}
		b = rest
	}
	return blocks
}

var boundaryParam = regexp.MustCompile(`(?i)boundary\s*=\s*(?:"([^"]*)"|([^\s;]+))`)

// mediaType returns the lower-cased media type and its parameters; a missing Content-Type is
// text/plain (RFC 2045). A boundary is recovered by hand when the parameters do not parse.
func mediaType(h fields) (string, map[string]string) {
	v := h.get("content-type")
	if v == "" {
		return "text/plain", nil
	}
	mt, params, _ := mime.ParseMediaType(v)
	if mt == "" {
		mt, _, _ = strings.Cut(v, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
	}
	if params == nil {
		params = map[string]string{}
	}
	if params["boundary"] == "" {
		if m := boundaryParam.FindStringSubmatch(v); m != nil {
			params["boundary"] = m[1] + m[2]
		}
	}
	return mt, params
}

// splitMultipart returns the raw parts of a multipart body. An unterminated last part is kept:
// truncated bounces are common and their first parts are still useful.
func splitMultipart(body []byte, boundary string) [][]byte {
	if boundary == "" {
		return nil
	}
	delim := []byte("--" + boundary)
	var parts [][]byte
	start := -1
	pos := 0
	for pos < len(body) {
		lineStart := pos
		line, next := nextLine(body, pos)
		pos = next
		t := bytes.TrimRight(line, " \t")
		if !bytes.HasPrefix(t, delim) {
			continue
		}
		rest := t[len(delim):]
		closing := string(rest) == "--"
		if len(rest) != 0 && !closing {
			continue
		}
		if start >= 0 {
			// The line break before a delimiter belongs to the delimiter.
			p := bytes.TrimSuffix(body[start:lineStart], []byte("\n"))
			parts = append(parts, bytes.TrimSuffix(p, []byte("\r")))
		}
		if closing {
			return parts
		}
		start = next
	}
	if start >= 0 && start < len(body) {
		parts = append(parts, body[start:])
	}
	return parts
}

// decodeBody undoes the part's Content-Transfer-Encoding; what decodes before an error is kept.
func decodeBody(h fields, body []byte) []byte {
	switch strings.ToLower(strings.TrimSpace(h.get("content-transfer-encoding"))) {
	case "base64":
		clean := bytes.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
				return -1
			}
			return r
		}, body)
		out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
		n, _ := base64.StdEncoding.Decode(out, clean)
		return out[:n]
	case "quoted-printable":
		out, _ := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		return out
	}
	return body
}
