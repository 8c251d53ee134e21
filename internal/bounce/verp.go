package bounce

import (
	"net/mail"
	"strings"
)

// DefaultVERPLocalPart is the local part of VERP addresses when none is configured.
const DefaultVERPLocalPart = "bounce"

// VERPAddress returns the envelope sender that identifies one send: localPart+token@domain,
// e.g. bounce+8f3kq2@mail.example.com. An empty localPart means DefaultVERPLocalPart. The token
// must be made of characters that need no quoting in a local part (letters, digits, "-", "_",
// "="; base32, hex or base64url without padding are all fine), or ParseVERP will not read it back.
func VERPAddress(token, localPart, domain string) string {
	if localPart == "" {
		localPart = DefaultVERPLocalPart
	}
	return localPart + "+" + token + "@" + domain
}

// ParseVERP returns the token of a VERP address made by VERPAddress with the same localPart
// (compared without regard to case, as some MTAs change it; the token keeps its case). It accepts
// a bare address, <address>, "Name <address>" and "rfc822; address".
func ParseVERP(addr, localPart string) (token string, ok bool) {
	if localPart == "" {
		localPart = DefaultVERPLocalPart
	}
	addr = strings.TrimSpace(addr)
	if t, rest, found := strings.Cut(addr, ";"); found && !strings.ContainsAny(t, "<@\"") {
		addr = strings.TrimSpace(rest)
	}
	if a, err := mail.ParseAddress(addr); err == nil {
		addr = a.Address
	} else if i := strings.LastIndexByte(addr, '<'); i >= 0 {
		addr = addr[i+1:]
		if j := strings.IndexByte(addr, '>'); j >= 0 {
			addr = addr[:j]
		}
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 || at == len(addr)-1 {
		return "", false
	}
	local := addr[:at]
	prefix := localPart + "+"
	if len(local) <= len(prefix) || !strings.EqualFold(local[:len(prefix)], prefix) {
		return "", false
	}
	token = local[len(prefix):]
	for i := 0; i < len(token); i++ {
		if !isTokenChar(token[i]) {
			return "", false
		}
	}
	return token, true
}

// isTokenChar allows RFC 5322 atext and ".", so no token needs quoting.
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~.", c) >= 0
}

// verpToken looks for the VERP address first where the report was delivered (To, Delivered-To,
// X-Original-To), then in the report's record of the original envelope sender (Postfix's
// X-Postfix-Sender, ARF's Original-Mail-From) and the original message's Return-Path. The last
// two matter for complaints, which arrive at the feedback-loop address, not the VERP one.
func (p Parser) verpToken(header fields, c *contents) string {
	var candidates []string
	for _, name := range []string{"to", "delivered-to", "x-original-to"} {
		for _, v := range header.all(name) {
			candidates = append(candidates, splitList(v)...)
		}
	}
	candidates = append(candidates, c.envelopeFrom, c.original.get("return-path"))
	for _, a := range candidates {
		if t, ok := ParseVERP(a, p.VERPLocalPart); ok {
			return t
		}
	}
	return ""
}

// splitList splits an address list header into its addresses.
func splitList(v string) []string {
	if list, err := mail.ParseAddressList(v); err == nil {
		out := make([]string, len(list))
		for i, a := range list {
			out[i] = a.Address
		}
		return out
	}
	return strings.Split(v, ",")
}
