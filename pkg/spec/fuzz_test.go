package spec

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// FuzzParse feeds arbitrary text to Parse: it must never panic, and must return
// a value exactly when it reports no error. The seed corpus is the examples,
// every fixture of testdata, and files beyond the size and nesting limits.
func FuzzParse(f *testing.F) {
	prepareSecrets(f, "testdata/secrets")
	for _, pattern := range []string{"../../examples/*.hcl", "testdata/errors/*.hcl", "testdata/valid/*.hcl"} {
		paths, _ := filepath.Glob(pattern)
		for _, p := range paths {
			src, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(src)
		}
	}
	// Files nested or sized beyond the limits, refused before parsing (the
	// parser would overflow its stack on them).
	f.Add([]byte("a = " + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "\n"))
	f.Add([]byte(strings.Repeat("b {\n", 100) + strings.Repeat("}\n", 100)))
	f.Add([]byte("a = \"" + strings.Repeat("${\"", 100) + strings.Repeat("\"}", 100) + "\"\n"))
	f.Add(bytes.Repeat([]byte("#\n"), MaxFileSize/2+1))
	f.Fuzz(func(t *testing.T, src []byte) {
		// A parse that does not end is a bug (a reload must not stall the
		// daemon): fail with every goroutine's stack, so the loop shows. The
		// bound is far above the slowest seed (1 MiB, 0.75 s; 3 s under the
		// race detector on a loaded machine), so that it catches a loop, not
		// a busy machine; speed is for benchmarks.
		watchdog := time.AfterFunc(30*time.Second, func() {
			buf := make([]byte, 1<<20)
			panic(fmt.Sprintf("Parse ran for 30s on %q:\n%s", src, buf[:runtime.Stack(buf, true)]))
		})
		defer watchdog.Stop()
		file, diags := Parse(src, "testdata/errors/fuzz.hcl")
		if (file == nil) != diags.HasErrors() {
			t.Fatalf("Parse returned a value %v with errors %v", file != nil, diags.HasErrors())
		}
		for _, d := range diags {
			if d.Summary == "" || d.Detail == "" {
				t.Fatalf("diagnostic without summary or detail: %#v", d)
			}
		}
		_ = RedactSource(src, "fuzz.hcl")
	})
}
