package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// runCLI runs pacsd with args and env, and returns its exit code and output.
func runCLI(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &cli{stdout: &out, stderr: &errOut, getenv: func(k string) string { return env[k] }})
	return code, out.String(), errOut.String()
}

// prepareExampleSecrets gives the examples' password files mode 0600, which git does not keep.
func prepareExampleSecrets(t *testing.T) {
	t.Helper()
	files, _ := filepath.Glob("../../examples/secrets/*")
	for _, f := range files {
		if err := os.Chmod(f, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{
		{nil, exitUsage},
		{[]string{"frobnicate"}, exitUsage},
		{[]string{"help"}, exitOK},
		{[]string{"validate", "--no-such-flag"}, exitUsage},
		{[]string{"validate", "extra-argument"}, exitUsage},
	} {
		code, stdout, stderr := runCLI(t, nil, tc.args...)
		if code != tc.code {
			t.Errorf("pacsd %v: exit %d, want %d", tc.args, code, tc.code)
		}
		if !strings.Contains(stdout+stderr, "Usage: pacsd") {
			t.Errorf("pacsd %v printed no usage:\n%s%s", tc.args, stdout, stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := runCLI(t, nil, "version")
	if code != exitOK || !strings.HasPrefix(stdout, "pacsd ") {
		t.Errorf("version: exit %d, output %q", code, stdout)
	}
}

func TestValidateExamples(t *testing.T) {
	prepareExampleSecrets(t)
	paths, _ := filepath.Glob("../../examples/*.hcl")
	for _, p := range paths {
		for _, args := range [][]string{{"validate", "-f", p}, {"validate", "--file", p, "--json"}} {
			code, stdout, stderr := runCLI(t, nil, args...)
			if code != exitOK || stderr != "" {
				t.Errorf("pacsd %v: exit %d\n%s%s", args, code, stdout, stderr)
			}
		}
	}
	code, stdout, _ := runCLI(t, map[string]string{"PACSD_FILE": "../../examples/replicated.hcl"}, "validate")
	if code != exitOK || !strings.Contains(stdout, `node "slave" (standby)`) {
		t.Errorf("validate with PACSD_FILE: exit %d\n%s", code, stdout)
	}
}

const invalidFile = `cluster "pacs" {
  image    = "postgres:11"
  database = "pacsdb"
  superuser {
    name     = "pacs"
    password = "do-not-print-me"
  }
  nod "db1" {}
}
`

func TestValidateInvalid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pacs.hcl")
	if err := os.WriteFile(path, []byte(invalidFile), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, nil, "validate", "-f", path)
	if code != exitProblem {
		t.Errorf("exit %d, want %d", code, exitProblem)
	}
	for _, want := range []string{"Error: Unsupported PostgreSQL Version", "on " + path + " line 2", "Did you mean \"node\"?", "Warning: Password Written in the File", "invalid (3 errors, 1 warning)"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stdout+stderr, "do-not-print-me") {
		t.Errorf("the password was printed:\n%s", stderr)
	}

	code, stdout, _ = runCLI(t, nil, "validate", "-f", path, "--json")
	if code != exitProblem {
		t.Errorf("--json: exit %d, want %d", code, exitProblem)
	}
	if strings.Contains(stdout, "do-not-print-me") {
		t.Errorf("the password was printed:\n%s", stdout)
	}
	var report jsonReport
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, stdout)
	}
	var got []string
	for _, d := range report.Diagnostics {
		got = append(got, d.Severity+" "+d.Summary)
	}
	want := []string{"error Cluster Has No Nodes", "error Unsupported PostgreSQL Version", "warning Password Written in the File", "error Unsupported Block Type"}
	if diff := cmp.Diff(want, got); diff != "" || report.Valid || report.Spec != nil {
		t.Errorf("report valid=%v spec=%v, diagnostics differ (-want +got):\n%s", report.Valid, report.Spec != nil, diff)
	}
	if d := report.Diagnostics[1]; d.File != path || d.Line != 2 || d.Column != 14 || d.Detail == "" {
		t.Errorf("diagnostic place: %+v", d)
	}
}

func TestValidateMissingFile(t *testing.T) {
	code, _, stderr := runCLI(t, nil, "validate", "-f", filepath.Join(t.TempDir(), "absent.hcl"))
	if code != exitProblem || !strings.Contains(stderr, "Cannot Read Topology File") {
		t.Errorf("exit %d\n%s", code, stderr)
	}
}

// TestValidateDeepFile: validate prints a diagnostic for a file nested 100000
// deep (its source snippet too, which once parsed the file again) and exits 1.
func TestValidateDeepFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deep.hcl")
	src := "a = " + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"validate", "-f", path}, {"validate", "-f", path, "--json"}} {
		code, stdout, stderr := runCLI(t, nil, args...)
		if code != exitProblem || !strings.Contains(stdout+stderr, "Topology File Nested Too Deeply") {
			t.Errorf("pacsd %v: exit %d\n%.2000s%.2000s", args, code, stdout, stderr)
		}
	}
}

// TestValidateNeverPrintsPasswords runs validate, as text and as JSON, on
// files whose diagnostics show lines that hold a password: a syntax error on
// the line, a misspelt attribute, a heredoc, a missing "=", an unterminated
// string, a value on the next line, a password as a setting. No output may
// show the password.
func TestValidateNeverPrintsPasswords(t *testing.T) {
	prepareExampleSecrets(t)
	pwFile, err := filepath.Abs("../../examples/secrets/pacs.password")
	if err != nil {
		t.Fatal(err)
	}
	head := "cluster \"pacs\" {\n  image    = \"dcm4che/postgres-dcm4chee:17.4-34\"\n  database = \"pacsdb\"\n  superuser {\n    name = \"pacs\"\n"
	tail := "  }\n  node \"db1\" {}\n}\n"
	files := map[string]string{
		"syntax-error-on-line": head + "    password = \"hunter2-syntax\" extra\n" + tail,
		"misspelt":             head + "    password_file = \"" + pwFile + "\"\n    pasword = \"hunter2-misspelt\"\n" + tail,
		"misspelt-capital":     head + "    Password = \"hunter2-capital\"\n    passwd = \"hunter2-passwd\"\n" + tail,
		"heredoc":              head + "    password = <<EOT\nhunter2-heredoc\nEOT\n" + tail,
		"heredoc-syntax-error": head + "    password = <<-EOT\n      hunter2-heredoc-indented\n    EOT\n" + tail + "node {\n",
		"missing-equals":       head + "    password \"hunter2-equals\"\n" + tail,
		"one-line-block":       "cluster \"pacs\" {\n  superuser { name = \"pacs\", password = \"hunter2-oneline\" }\n}\n",
		"unterminated":         head + "    password = \"hunter2-unterminated\n" + tail,
		"next-line":            head + "    password =\n      \"hunter2-nextline\"\n" + tail,
		"parenthesised":        head + "    password = (\n      \"hunter2-parens\"\n    )\n    nme = 1\n" + tail,
		"template":             head + "    password = \"hunter2-${template}\"\n" + tail,
		"setting":              head + "    password_file = \"" + pwFile + "\"\n  }\n  settings = { password = \"hunter2-setting\", \"password\" = \"hunter2-quoted\" }\n  node \"db1\" {}\n}\n",
		"comment-after":        head + "    password = \"hunter2-comment\" # was hunter2-old\n    bad = true\n" + tail,
		// Unknown attributes in the blocks that hold passwords, whatever their names.
		"pw":                head + "    pw = \"hunter2-pw\"\n    password_file = \"" + pwFile + "\"\n" + tail,
		"paswd-replication": head + "    password_file = \"su.key\"\n  }\n  replication {\n    paswd = \"hunter2-paswd\"\n    user = \"hunter2-user\" extra\n  }\n  node \"db1\" {}\n}\n",
		"pword-role":        head + "    password_file = \"su.key\"\n  }\n  role \"viewer\" {\n    pword = \"hunter2-pword\"\n    other = hunter2_ident\n    more = 12345678 # hunter2-comment\n  }\n  node \"db1\" {}\n}\n",
		"one-line-role":     head + "    password_file = \"su.key\"\n  }\n  role \"viewer\" { pw = \"hunter2-oneline\" }\n  node \"db1\" {}\n}\n",
		// Values read with file(), from files only their owner may read, in details.
		"database-file":  strings.Replace(head, `database = "pacsdb"`, `database = file("secrets/pacs.password")`, 1) + "    password_file = \"" + pwFile + "\"\n" + tail,
		"read-only-file": strings.Replace(head, `image    = "dcm4che/postgres-dcm4chee:17.4-34"`, `image    = file("secrets/ro.password")`, 1) + "    password_file = \"" + pwFile + "\"\n" + tail,
		"network-file":   "cluster \"pacs\" {\n  network = file(\"secrets/pacs.password\")\n}\n",
		"container-file": head + "    password_file = \"" + pwFile + "\"\n  }\n  node \"db1\" {\n    container_name = \"x${file(\"secrets/pacs.password\")}\"\n    data = file(\"secrets/pacs.password\")\n  }\n}\n",
		"setting-file":   head + "    password_file = \"" + pwFile + "\"\n  }\n  settings = { shared_buffers = file(\"secrets/pacs.password\"), (file(\"secrets/ro.password\")) = 1 }\n  node \"db1\" {}\n}\n",
		"env-of-file":    head + "    password = env(file(\"secrets/pacs.password\"))\n" + tail,
		"file-of-file":   strings.Replace(head, `database = "pacsdb"`, `database = file(file("secrets/ro.password"))`, 1) + "    password_file = \"" + pwFile + "\"\n" + tail,
	}
	for name, src := range files {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "pacs.hcl")
			if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(filepath.Join(dir, "secrets"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "secrets", "pacs.password"), []byte("hunter2-from-file\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "secrets", "ro.password"), []byte("hunter2 read only"), 0o400); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "su.key"), []byte("hunter2-key"), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"validate", "-f", path}, {"validate", "-f", path, "--json"}} {
				_, stdout, stderr := runCLI(t, nil, args...)
				if !strings.Contains(stdout+stderr, "rror") && !strings.Contains(stdout+stderr, "arning") {
					t.Errorf("pacsd %v printed no diagnostic:\n%s%s", args, stdout, stderr)
				}
				if strings.Contains(stdout+stderr, "hunter2") {
					t.Errorf("pacsd %v printed a password:\n%s%s", args, stdout, stderr)
				}
			}
		})
	}
}

// TestValidateOutputBounded: validate's output on a bad file of 1 MiB on one
// line stays under 1 MB, as text and as JSON: a snippet shows a part of the
// long line, cut with a marker, a detail does not quote a whole long value,
// and a file with a problem every few bytes does not list them all.
func TestValidateOutputBounded(t *testing.T) {
	long := strings.Repeat("y", 1<<20-64)
	files := map[string]string{
		"stray directives": `a = "` + strings.Repeat("%{endif}", 65000) + strings.Repeat("%{if a}", 65000) + "\"\n",
		"long value":       `cluster "pacs" { image = "` + long + "\" }\n",
		"long name":        `cluster "pacs" { network = "` + long + "\" }\n",
		"many problems":    `cluster "pacs" { image = [` + strings.Repeat("f(1),", 200000) + "] }\n",
	}
	for name, src := range files {
		t.Run(name, func(t *testing.T) {
			if len(src) > 1<<20 {
				t.Fatalf("the file has %d bytes", len(src))
			}
			src = strings.TrimSuffix(src, "\n") + strings.Repeat(" ", 1<<20-len(src)) + "\n" // 1 MiB and a byte
			path := filepath.Join(t.TempDir(), "pacs.hcl")
			if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"validate", "-f", path}, {"validate", "-f", path, "--json"}} {
				code, stdout, stderr := runCLI(t, nil, args...)
				if code != exitProblem || !strings.Contains(stdout+stderr, "rror") {
					t.Errorf("pacsd %v: exit %d\n%.2000s%.2000s", args, code, stdout, stderr)
				}
				if n := len(stdout) + len(stderr); n >= 1e6 {
					t.Errorf("pacsd %v printed %d bytes:\n%.2000s%.2000s", args, n, stdout, stderr)
				}
			}
		})
	}
}
