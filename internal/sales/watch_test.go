package sales

import (
	"os"
	"testing"
	"time"
)

func FuzzWatch(f *testing.F) {
	for _, file := range []string{"testdata/bad.yaml", exampleFile} {
		f.Add(mustRead(f, file))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tm := time.AfterFunc(2*time.Second, func() {
			os.WriteFile("/tmp/hang.yaml", data, 0o644)
			panic("hang")
		})
		defer tm.Stop()
		Parse("fuzz.yaml", data, exampleOptions)
	})
}
