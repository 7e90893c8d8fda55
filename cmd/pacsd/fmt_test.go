package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFmt: fmt rewrites a file canonically and keeps its comments, its
// mode and a symbolic link to it; -check changes nothing and exits 1 for
// a file that is not formatted, 0 for one that is; a file with a syntax
// error is left alone with the diagnostics.
func TestFmt(t *testing.T) {
	dir := t.TempDir()
	messy := `# the archive's cluster
cluster "pacs" {
image = "pacsd-postgres:15"   # the local image
    primary="db1"
  node "db1" {
      port    = 15432
  }
  // a standby
  node "db2" {}
}
`
	want := `# the archive's cluster
cluster "pacs" {
  image   = "pacsd-postgres:15" # the local image
  primary = "db1"
  node "db1" {
    port = 15432
  }
  // a standby
  node "db2" {}
}
`
	real := filepath.Join(dir, "pacs.hcl")
	if err := os.WriteFile(real, []byte(messy), 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.hcl")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runCLI(t, nil, "fmt", "-check", "-f", link)
	if code != exitUnformatted || strings.TrimSpace(out) != link || !strings.Contains(errOut, "is not formatted") {
		t.Errorf("fmt -check of a messy file: exit %d, %q, %q", code, out, errOut)
	}
	if b, _ := os.ReadFile(real); string(b) != messy {
		t.Fatal("fmt -check changed the file")
	}
	code, _, errOut = runCLI(t, nil, "fmt", "-f", link)
	if code != exitOK {
		t.Fatalf("fmt: exit %d, %s", code, errOut)
	}
	if b, _ := os.ReadFile(real); string(b) != want {
		t.Errorf("fmt wrote:\n%s\nwant:\n%s", b, want)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Error("fmt replaced the symbolic link instead of its target")
	}
	if fi, _ := os.Stat(real); fi.Mode().Perm() != 0o640 {
		t.Errorf("fmt changed the mode to %v", fi.Mode().Perm())
	}
	if code, out, _ := runCLI(t, nil, "fmt", "-check", "-f", real); code != exitOK || out != "" {
		t.Errorf("fmt -check of a formatted file: exit %d, %q", code, out)
	}

	broken := filepath.Join(dir, "broken.hcl")
	if err := os.WriteFile(broken, []byte("cluster \"pacs\" {\n  image = \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI(t, nil, "fmt", "-f", broken)
	if b, _ := os.ReadFile(broken); code != exitProblem || string(b) != "cluster \"pacs\" {\n  image = \n" || !strings.Contains(errOut, "syntax errors") || !strings.Contains(errOut, "broken.hcl line 2") {
		t.Errorf("fmt of a broken file: exit %d, %s; file now %q", code, errOut, b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Errorf("fmt left files behind: %v", entries)
	}
}

// TestExamplesFormatted: every example file is as fmt writes it.
func TestExamplesFormatted(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.hcl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, f := range files {
		if code, _, errOut := runCLI(t, nil, "fmt", "-check", "-f", f); code != exitOK {
			t.Errorf("%s: %s", f, errOut)
		}
	}
}
