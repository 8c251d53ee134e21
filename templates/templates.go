// Package templates holds tend's built-in email templates: for each name, <name>.html (an
// html/template body) and <name>.txt (its plain-text alternative). Files starting with an
// underscore are layouts that wrap every body with the footer a marketing email must carry.
// A directory given with TEND_TEMPLATES_DIR overrides these file by file.
package templates

import "embed"

// FS holds the embedded template files.
//
//go:embed *.html *.txt
var FS embed.FS
