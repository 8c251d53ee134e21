package mailcapture

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"

	"golang.org/x/text/encoding/htmlindex"
)

// maxDepth bounds multipart nesting, which a hostile message could make
// arbitrarily deep.
const maxDepth = 16

// wordDecoder decodes RFC 2047 encoded words in any charset the WHATWG
// encoding standard names.
var wordDecoder = &mime.WordDecoder{CharsetReader: charsetReader}

// parse extracts the parts of raw that Message exposes. A message that does
// not parse is still captured, with whatever was understood.
func parse(raw []byte, log *slog.Logger) Message {
	var m Message
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		log.Warn("mailcapture: unparseable message header", "err", err)
		return m
	}
	m.Header = msg.Header
	m.Subject = decodeHeader(msg.Header.Get("Subject"))
	m.MessageID = strings.TrimSpace(msg.Header.Get("Message-Id"))
	if err := walk(&m, textproto.MIMEHeader(msg.Header), msg.Body, 0); err != nil {
		log.Warn("mailcapture: unparseable message body", "err", err)
	}
	return m
}

func decodeHeader(v string) string {
	d, err := wordDecoder.DecodeHeader(v)
	if err != nil {
		return v
	}
	return d
}

// walk visits one MIME entity, recursing into multiparts, and fills the
// first text/plain and text/html bodies that are not attachments.
func walk(m *Message, h textproto.MIMEHeader, body io.Reader, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("multipart nested deeper than %d", maxDepth)
	}
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain; charset=us-ascii"
	}
	mediaType, params, err := mime.ParseMediaType(ct)
	if err != nil {
		// RFC 2045 says to treat an unparseable type as plain text.
		mediaType, params = "text/plain", map[string]string{}
	}

	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("read %s part: %w", mediaType, err)
			}
			if err := walk(m, p.Header, p, depth+1); err != nil {
				return err
			}
		}
	}

	if disp, _, _ := mime.ParseMediaType(h.Get("Content-Disposition")); disp == "attachment" {
		return nil
	}
	var dst *string
	switch {
	case mediaType == "text/plain" && m.Text == "":
		dst = &m.Text
	case mediaType == "text/html" && m.HTML == "":
		dst = &m.HTML
	default:
		return nil
	}
	text, err := decodeText(body, h.Get("Content-Transfer-Encoding"), params["charset"])
	if err != nil {
		return fmt.Errorf("decode %s part: %w", mediaType, err)
	}
	*dst = text
	return nil
}

func decodeText(body io.Reader, transferEncoding, charset string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(transferEncoding)) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		// The decoder skips the line breaks base64 bodies are wrapped in.
		body = base64.NewDecoder(base64.StdEncoding, body)
	}
	r, err := charsetReader(charset, body)
	if err != nil {
		r = body // An unknown charset: show the bytes rather than nothing.
	}
	b, err := io.ReadAll(r)
	return string(b), err
}

func charsetReader(charset string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(charset) {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		return r, nil
	}
	enc, err := htmlindex.Get(charset)
	if err != nil {
		return nil, fmt.Errorf("charset %q: %w", charset, err)
	}
	return enc.NewDecoder().Reader(r), nil
}
