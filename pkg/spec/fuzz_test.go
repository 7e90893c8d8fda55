package spec

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary text to Parse: it must never panic, and must return
// a value exactly when it reports no error. The seed corpus is the examples and
// every fixture of testdata.
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
	f.Fuzz(func(t *testing.T, src []byte) {
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
