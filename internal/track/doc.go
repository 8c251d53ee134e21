// Package track owns the pure building blocks of email tracking: signed tokens for open, click
// and unsubscribe URLs, the rewriting of an email's links and the open pixel, and the heuristics
// that tell a person's opens and clicks from a machine's. It does no I/O: the HTTP handlers and
// the database use it.
//
// # Tokens
//
// A tracking URL carries a token such as "k2.b2Vh….3q2-…": a key id, a payload (kind, send ID,
// link index) and an HMAC-SHA256 over both, cut to 128 bits. The URL names no target: a click
// redirects only to the URL recorded for that send and link. Keys come from configuration as
// "k2:SECRET,k1:SECRET" (GenerateKey makes one); the first signs, all verify. To rotate, put a
// new key first and drop the old one once mail signed with it no longer matters. Verify answers
// every bad token with ErrInvalidToken and nothing else, so the endpoints can give forged,
// stale and malformed tokens the same answer.
//
// # Link rewriting
//
// Rewrite swaps each absolute http(s) link of the HTML and text bodies for a click URL, keeps
// every other byte of the HTML, and adds a 1×1 open pixel before </body>. A data-tag="pricing"
// attribute on an <a> labels the link for scoring and is removed from the output. Tag the
// unsubscribe and preference links too (data-tag="unsubscribe") so that visiting them never
// counts as interest.
//
// # Machine activity
//
// Mail security gateways follow every link of a message, the unsubscribe link included; Apple
// Mail Privacy Protection fetches every image whether or not the message is read; clients
// prefetch. None of these is a person, and none should move a lead's score or stage. tend
// records every hit and marks machine ones (Heuristics, defaults in DefaultHeuristics):
//
//   - HEAD requests: browsers GET; link checkers often HEAD.
//   - Prefetches: a Sec-Purpose, Purpose or X-Moz request header.
//   - Scanner user agents: security gateways (Barracuda, Mimecast, Proofpoint, Symantec,
//     Forcepoint, Trend Micro, "Microsoft Office Existence Discovery"…), HTTP libraries (curl,
//     wget, python-requests, Go-http-client…), headless browsers, bots, crawlers and previewers.
//     Gmail's image proxy is not one: it fetches images when a person opens the message.
//   - Privacy proxies: an open through one (Apple's agent is a bare "Mozilla/5.0") is machine.
//   - Too soon after sending: a hit within 2 s of the send with no user agent, or a proxy's.
//     Speed alone is not enough — Mautic, too, asks for two signals.
//   - All links at once: every link of a message (two or more) first clicked within 1 s.
//   - Duplicates: a repeat open of a send, or click of a link, within 1 h counts once.
//
// Even a human-looking open is weak evidence (images may be proxied, blocked or cached), so
// tend never triggers automation on opens alone; clicks and replies carry the weight.
package track
