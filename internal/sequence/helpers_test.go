package sequence

import (
	"os"
	"path/filepath"
	"testing"
)

// templatesDir is the repository's templates directory, relative to this package.
const templatesDir = "../../templates"

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// templateExists is the check the product makes: a template is its .html and its .txt.
func templateExists(name string) bool {
	for _, ext := range []string{".html", ".txt"} {
		if _, err := os.Stat(filepath.Join(templatesDir, name+ext)); err != nil {
			return false
		}
	}
	return true
}
