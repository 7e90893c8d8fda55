package spec

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/valid")

// prepareSecrets gives the password files of dir the modes git does not keep:
// 0600, or 0644 for the files whose name says "open".
func prepareSecrets(t testing.TB, dir string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		mode := os.FileMode(0o600)
		if strings.Contains(filepath.Base(f), "open") {
			mode = 0o644
		}
		if err := os.Chmod(f, mode); err != nil {
			t.Fatalf("while preparing %s: %v", f, err)
		}
	}
}

func parseFixture(t *testing.T, path string) (*File, hcl.Diagnostics) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return Parse(src, path)
}

func TestExamples(t *testing.T) {
	prepareSecrets(t, "../../examples/secrets")
	paths, _ := filepath.Glob("../../examples/*.hcl")
	if len(paths) < 3 {
		t.Fatalf("found %d examples, want at least 3", len(paths))
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, diags := parseFixture(t, path)
			for _, d := range diags {
				t.Errorf("unexpected diagnostic: %s", d)
			}
			if f == nil {
				t.Fatal("no parsed value")
			}
		})
	}
}

var expectation = regexp.MustCompile(`#\s*(ERROR|WARNING)(?:@([0-9]+))?:\s*(.+?)\s*$`)

// TestErrorFixtures parses each file of testdata/errors and checks that every
// "# ERROR: <summary>" (or "# WARNING: <summary>") comment is reported on its
// line, and that nothing else is reported. "# ERROR@12: <summary>" pins the
// column too: the diagnostic's subject must start at column 12 of that line.
func TestErrorFixtures(t *testing.T) {
	prepareSecrets(t, "testdata/secrets")
	paths, _ := filepath.Glob("testdata/errors/*.hcl")
	if len(paths) < 30 {
		t.Fatalf("found %d error fixtures, want at least 30", len(paths))
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".hcl"), func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			pinned := map[string]bool{} // "line severity summary" whose column is given
			for i, line := range strings.Split(string(src), "\n") {
				if m := expectation.FindStringSubmatch(line); m != nil {
					key := fmt.Sprintf("%d %s %s", i+1, strings.ToLower(m[1]), m[3])
					if m[2] != "" {
						pinned[key] = true
						key += " @" + m[2]
					}
					want = append(want, key)
				}
			}
			f, diags := Parse(src, path)
			var got []string
			for _, d := range diags {
				sev := "error"
				if d.Severity == hcl.DiagWarning {
					sev = "warning"
				}
				line, column := 0, 0
				if d.Subject != nil {
					line, column = d.Subject.Start.Line, d.Subject.Start.Column
				}
				key := fmt.Sprintf("%d %s %s", line, sev, d.Summary)
				if pinned[key] {
					key += fmt.Sprintf(" @%d", column)
				}
				got = append(got, key)
				checkDiagnosticText(t, d, true)
			}
			sort.Strings(want)
			sort.Strings(got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("diagnostics (line severity summary @column) differ (-want +got):\n%s\nall diagnostics:\n%s", diff, diagsText(diags))
			}
			if diags.HasErrors() != (f == nil) {
				t.Errorf("Parse returned a value %v with errors %v; want a value exactly when there is no error", f != nil, diags.HasErrors())
			}
		})
	}
}

// checkDiagnosticText holds every diagnostic to the house style: a place, a
// Title-Case summary and a detail that is a full sentence (it may start with a
// parameter name, so a capital letter is not required). needSubject is false
// where there is nothing in the file to point at.
func checkDiagnosticText(t *testing.T, d *hcl.Diagnostic, needSubject bool) {
	t.Helper()
	if needSubject && d.Subject == nil {
		t.Errorf("diagnostic %q has no subject", d.Summary)
	}
	if d.Summary != titleCase(d.Summary) {
		t.Errorf("summary %q is not in Title Case", d.Summary)
	}
	if len(d.Detail) < 20 || !strings.ContainsAny(d.Detail[len(d.Detail)-1:], ".?") {
		t.Errorf("detail of %q is not a full sentence: %q", d.Summary, d.Detail)
	}
}

func diagsText(diags hcl.Diagnostics) string {
	var b strings.Builder
	for _, d := range diags {
		fmt.Fprintf(&b, "  %s\n", d)
	}
	return b.String()
}

// TestValidGolden parses each file of testdata/valid and compares the parsed
// value (as JSON, secrets redacted) with its .golden.json file.
func TestValidGolden(t *testing.T) {
	prepareSecrets(t, "testdata/secrets")
	t.Setenv("PACSD_TEST_PASSWORD", "from-the-environment")
	paths, _ := filepath.Glob("testdata/valid/*.hcl")
	if len(paths) == 0 {
		t.Fatal("no valid fixtures")
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, diags := parseFixture(t, path)
			for _, d := range diags {
				if d.Severity == hcl.DiagError {
					t.Errorf("unexpected error: %s", d)
				}
			}
			if f == nil {
				t.FailNow()
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(f); err != nil {
				t.Fatal(err)
			}
			got := buf.Bytes()
			golden := strings.TrimSuffix(path, ".hcl") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./pkg/spec -run TestValidGolden -update)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("parsed value differs from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	prepareSecrets(t, "testdata/secrets")
	t.Setenv("PACSD_TEST_REPLICATION_PASSWORD", "env-secret-value")
	src := []byte(`
cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  primary  = "db1"
  superuser {
    name     = "pacs"
    password = "literal-secret-value"
  }
  replication {
    password = env("PACSD_TEST_REPLICATION_PASSWORD")
  }
  role "viewer" {
    login         = true
    password_file = "secrets/ok.password"
  }
  node "db1" {}
  node "db2" {}
}
`)
	f, diags := Parse(src, "testdata/secrets-test.hcl")
	if f == nil {
		t.Fatalf("unexpected errors:\n%s", diagsText(diags))
	}
	js, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	outputs := []string{
		fmt.Sprintf("%v %+v %#v %v %+v %x %s %q", f, f, f, f.Clusters[0], f.Clusters[0], f.Clusters[0].Superuser.Password, f.Clusters[0].Replication.Password, f.Clusters[0].Roles[0].Password),
		fmt.Sprintf("%+v %#v", *f.Clusters[0], f.Clusters[0].Replication),
		string(js), diagsText(diags), string(RedactSource(src, "x.hcl")),
	}
	for _, out := range outputs {
		for _, secret := range []string{"literal-secret-value", "env-secret-value", "secret-ok"} {
			if strings.Contains(out, secret) {
				t.Errorf("output shows the secret %q:\n%s", secret, out)
			}
		}
	}
	if got := f.Clusters[0].Superuser.Password.Reveal(); got != "literal-secret-value" {
		t.Errorf("Reveal() = %q", got)
	}
	if got := f.Clusters[0].Roles[0].Password.Reveal(); got != "secret-ok" {
		t.Errorf("Reveal() of the password file = %q, want its content without the newline", got)
	}
}

func TestRedactSourceKeepsPositions(t *testing.T) {
	src := []byte("a {\n  password = \"abc\" # note\n}\n")
	got := RedactSource(src, "x.hcl")
	if len(got) != len(src) || bytes.Count(got, []byte("\n")) != bytes.Count(src, []byte("\n")) {
		t.Fatalf("redaction moved text: %q", got)
	}
	if bytes.Contains(got, []byte("abc")) {
		t.Errorf("password still visible: %q", got)
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Size
		ok   bool
	}{
		{"16MB", 16 << 20, true}, {"4GB", 4 << 30, true}, {"512kB", 512 << 10, true}, {"0B", 0, true},
		{"1TB", 1 << 40, true}, {"16 MB", 16 << 20, true},
		{"16", 0, false}, {"16mb", 0, false}, {"16MiB", 0, false}, {"-1MB", 0, false}, {"99999999999TB", 0, false}, {"", 0, false},
	} {
		got, problem := ParseSize(tc.in)
		if (problem == "") != tc.ok || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %q; want %d, ok %v", tc.in, got, problem, tc.want, tc.ok)
		}
	}
	if got := Size(16 << 20).String(); got != "16MB" {
		t.Errorf("Size.String() = %q, want 16MB", got)
	}
	if got := Size(1536).String(); got != "1536B" {
		t.Errorf("Size(1536).String() = %q", got)
	}
}

func TestImageMajor(t *testing.T) {
	for _, tc := range []struct {
		image string
		want  int
		ok    bool
	}{
		{"dcm4che/postgres-dcm4chee:17.4-34", 17, true},
		{"postgres:16-alpine", 16, true},
		{"postgres:15", 15, true},
		{"postgres:9.6", 9, true},
		{"registry.example.org:5000/postgres:11", 11, true},
		{"registry.example.org:5000/postgres", 0, false},
		{"postgres:latest", 0, false},
		{"postgres@sha256:abcd", 0, false},
		{"postgres:16@sha256:abcd", 16, true},
		{"dcm4che/postgres-dcm4chee", 0, false},
	} {
		got, ok := ImageMajor(tc.image)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ImageMajor(%q) = %d, %v; want %d, %v", tc.image, got, ok, tc.want, tc.ok)
		}
	}
}

func TestTitleCase(t *testing.T) {
	for in, want := range map[string]string{
		"Unsupported argument":                  "Unsupported Argument",
		"Error in function call":                "Error in Function Call",
		"Parameter Managed by pacsd":            "Parameter Managed by pacsd",
		"Argument or block definition required": "Argument or Block Definition Required",
		`Unexpected "cluster" block`:            `Unexpected "cluster" Block`,
	} {
		if got := titleCase(in); got != want {
			t.Errorf("titleCase(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSuggest(t *testing.T) {
	if got := suggest("db3", []string{"db1", "replica"}); got != "db1" {
		t.Errorf("suggest = %q, want db1", got)
	}
	if got := suggest("completely-different", []string{"db1"}); got != "" {
		t.Errorf("suggest = %q, want none", got)
	}
}

// TestRedactSourceStarsSecretValues: values after a secret-bearing name are
// starred whether or not the file parses; other values stay readable, and
// every byte stays in place.
func TestRedactSourceStarsSecretValues(t *testing.T) {
	for _, tc := range []struct {
		name, src  string
		hide, keep []string
	}{
		{"syntax error", "a {\n  password = \"s1\" extra\n  image = \"keep1\"\n}\n", []string{"s1", "extra"}, []string{"keep1"}},
		{"misspelt", "a {\n  pasword = \"s2\"\n  PassWord = \"s3\"\n  db_secret = \"s4\"\n}\n", []string{"s2", "s3", "s4"}, nil},
		{"heredoc", "a {\n  password = <<EOT\ns5\nEOT\n  image = \"keep2\"\n}\n", []string{"s5"}, []string{"keep2", "\n  image"}},
		{"missing equals", "password \"s6\"\nimage = \"keep3\"\n", []string{"s6"}, []string{"keep3"}},
		{"next line", "password =\n  \"s7\"\nimage = \"keep4\"\n", []string{"s7"}, []string{"keep4"}},
		{"unterminated", "password = \"s8\nimage = \"keep5\"\n", []string{"s8"}, []string{"keep5"}},
		{"one-line object", "settings = { password = \"s9\", x = 1, \"password\" = \"s10\" }\n", []string{"s9", "s10"}, []string{"x = 1"}},
		{"one-line block", "a { password = \"s11\" }\nimage = \"keep6\"\n", []string{"s11"}, []string{"keep6", "}"}},
		{"comment", "password = \"s12\" # old: s13\nimage = \"keep7\"\n", []string{"s12", "s13"}, []string{"keep7"}},
		{"function", "password = env(\"S14\")\npassword_file = \"keep8\"\n", []string{"S14"}, []string{"keep8"}},
		{"parenthesised", "password = (\n  \"s15\"\n)\nimage = \"keep9\"\n", []string{"s15"}, []string{"keep9"}},
		{"superuser block", "superuser {\n  pw = \"s16\"\n  name = \"s17\"\n  x = s18 # s19\n  # s20\n}\nimage = \"keep10\"\n", []string{"s16", "s17", "s18", "s19", "s20"}, []string{"keep10", "pw =", "name ="}},
		{"replication block", "c {\n  replication {\n    paswd = \"s21\"\n    user = \"s22\" extra\n    n = 12345678\n  }\n  image = \"keep11\"\n}\n", []string{"s21", "s22", "12345678"}, []string{"keep11", "paswd ="}},
		{"role blocks", "role \"viewer\" {\n  pword = <<EOT\ns23\nEOT\n}\nrole \"v\" { pw = \"s24\" }\nrole x { a = [\"s25\"] }\nimage = \"keep12\"\n", []string{"s23", "s24", "s25"}, []string{"keep12", `role "viewer" {`, `role "v" {`}},
		{"nested in a secret block", "superuser {\n  tls {\n    x = \"s26\"\n  }\n  y = { z = \"s27\" }\n}\nimage = \"keep13\"\n", []string{"s26", "s27"}, []string{"keep13"}},
		{"pw outside", "settings = { pw = \"s28\" }\nimage = \"keep14\"\n", []string{"s28"}, []string{"keep14"}},
		{"path value", "superuser {\n  password_file = \"secrets/pacs.password\"\n}\nnode \"keep15\" {\n  data = \"keep16\"\n}\nx = \"secret-path\"\nimage = \"keep17\"\n", nil, []string{"keep15", "keep16", "keep17"}},
		{"object attribute", "c {\n  superuser = {\n    pw = \"s29\"\n  }\n  role \"x\"\n  {\n    pw = \"s30\"\n  }\n}\nimage = \"keep20\"\n", []string{"s29", "s30"}, []string{"keep20"}},
		{"not a block", "role = \"keep18\"\nimage = \"keep19\"\n", nil, []string{"keep18", "keep19"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := RedactSource([]byte(tc.src), "x.hcl")
			if len(got) != len(tc.src) || strings.Count(string(got), "\n") != strings.Count(tc.src, "\n") {
				t.Fatalf("redaction moved text: %q", got)
			}
			for _, h := range tc.hide {
				if strings.Contains(string(got), h) {
					t.Errorf("%q still visible: %q", h, got)
				}
			}
			for _, k := range tc.keep {
				if !strings.Contains(string(got), k) {
					t.Errorf("%q starred too: %q", k, got)
				}
			}
		})
	}
}

// TestPasswordFromFunctions: a password from file() is read like a
// password_file (mode 0600 or 0400, trailing line breaks dropped), and a
// password from env(), file() or a heredoc that holds a line break is refused:
// it could never authenticate.
func TestPasswordFromFunctions(t *testing.T) {
	prepareSecrets(t, "testdata/secrets")
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	crlf := write("crlf.password", "from-file\r\n", 0o400)
	open := write("open.password", "from-file\n", 0o640)
	inner := write("inner.password", "from\nfile\n", 0o600)
	t.Setenv("PACSD_TEST_PW_OK", "from-env")
	t.Setenv("PACSD_TEST_PW_NEWLINE", "from-env\n")
	for _, tc := range []struct {
		expr, want, problem string
	}{
		{fmt.Sprintf("file(%q)", crlf), "from-file", ""},
		{fmt.Sprintf("file(%q)", open), "", "Password File Readable by Others"},
		{fmt.Sprintf("\"${file(%q)}\"", open), "", "Error in Function Call"},
		{fmt.Sprintf("file(%q)", inner), "", "Invalid Character in Password"},
		{fmt.Sprintf("file(%q)", filepath.Join(dir, "absent")), "", "Password File Not Found"},
		{"<<EOT\nin-a-heredoc\nEOT\n", "", "Invalid Character in Password"},
		{`env("PACSD_TEST_PW_OK")`, "from-env", ""},
		{`env("PACSD_TEST_PW_NEWLINE")`, "", "Invalid Character in Password"},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			src := fmt.Sprintf("cluster \"pacs\" {\n  image = \"postgres:16\"\n  database = \"pacsdb\"\n  superuser {\n    name = \"pacs\"\n    password = %s\n  }\n  node \"db1\" {}\n}\n", tc.expr)
			f, diags := Parse([]byte(src), filepath.Join(dir, "pacs.hcl"))
			var problems []string
			for _, d := range diags.Errs() {
				problems = append(problems, d.(*hcl.Diagnostic).Summary)
				for _, secret := range []string{"from-env", "from-file", "from\nfile"} {
					if strings.Contains(d.Error(), secret) {
						t.Errorf("the diagnostic shows the password: %s", d)
					}
				}
			}
			var want []string
			if tc.problem != "" {
				want = []string{tc.problem}
			}
			if diff := cmp.Diff(want, problems); diff != "" {
				t.Fatalf("errors differ (-want +got):\n%s", diff)
			}
			if f != nil {
				if got := f.Clusters[0].Superuser.Password.Reveal(); got != tc.want {
					t.Errorf("password %q, want %q", got, tc.want)
				}
			}
		})
	}
}

// TestDaemonListenAndStateDir: a listen address that is not loopback is
// refused without TLS and without authentication (daemon_tls_test.go has
// the rest); a relative state_dir that goes above the file's directory is
// refused.
func TestDaemonListenAndStateDir(t *testing.T) {
	prepareSecrets(t, "testdata/secrets")
	parse := func(daemon string) []string {
		src := "cluster \"pacs\" {\n  image = \"postgres:16\"\n  database = \"pacsdb\"\n  superuser {\n    name = \"pacs\"\n    password_file = \"secrets/ok.password\"\n  }\n  node \"db1\" {}\n}\ndaemon {\n" + daemon + "\n}\n"
		_, diags := Parse([]byte(src), "testdata/pacs.hcl")
		var got []string
		for _, d := range diags {
			got = append(got, d.Summary)
		}
		return got
	}
	const open = "HTTP Endpoint Without TLS, HTTP Endpoint Without Authentication"
	for listen, want := range map[string]string{
		"127.0.0.1:9187": "", "127.1.2.3:1": "", "[::1]:9187": "", "localhost:9187": "", "[::ffff:127.0.0.1]:9187": "",
		":9187": open, "0.0.0.0:9187": open, "[::]:9187": open, "10.0.0.5:9187": open, "[fd00::1]:9187": open,
		"pacs.example.org:9187": "Invalid Listen Address",
	} {
		got := parse(fmt.Sprintf("listen = %q", listen))
		if strings.Join(got, ", ") != want {
			t.Errorf("listen = %q: diagnostics %q, want %q", listen, got, want)
		}
	}
	const outside = "State Directory Outside the File's Directory"
	for dir, want := range map[string]string{
		"state": "", "./state": "", "a/../b": "", "/var/lib/../lib/pacsd": "", ".": "",
		"..": outside, "../state": outside, "a/../../state": outside, "./../state": outside,
	} {
		got := parse(fmt.Sprintf("state_dir = %q", dir))
		if (want == "") != (len(got) == 0) || want != "" && (len(got) != 1 || got[0] != want) {
			t.Errorf("state_dir = %q: diagnostics %q, want %q", dir, got, want)
		}
	}
}

// TestPEMForms: the key forms crypto/tls reads are accepted (PKCS #8, PKCS #1,
// SEC 1), anything else is not a key; a certificate must parse.
func TestPEMForms(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	sec1, _ := x509.MarshalECPrivateKey(ecKey)
	enc := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	for name, tc := range map[string]struct {
		pem       []byte
		key, cert bool
	}{
		"pkcs8":               {enc("PRIVATE KEY", pkcs8), true, false},
		"pkcs1":               {enc("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), true, false},
		"sec1 after params":   {append(enc("EC PARAMETERS", []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}), enc("EC PRIVATE KEY", sec1)...), true, false},
		"garbage key":         {enc("PRIVATE KEY", []byte("not a key")), false, false},
		"not pem":             {[]byte("secret-ok\n"), false, false},
		"test certificate":    {mustRead(t, "testdata/secrets/tls-cert.pem"), false, true},
		"garbage cert":        {enc("CERTIFICATE", []byte("not a certificate")), false, false},
		"public key":          {enc("PUBLIC KEY", []byte("x")), false, false},
		"test key":            {mustRead(t, "testdata/secrets/tls-key.pem"), true, false},
		"test CA certificate": {mustRead(t, "testdata/secrets/tls-ca.pem"), false, true},
	} {
		if got := pemPrivateKey(tc.pem); got != tc.key {
			t.Errorf("%s: pemPrivateKey = %v, want %v", name, got, tc.key)
		}
		if got := pemCertificate(tc.pem); got != tc.cert {
			t.Errorf("%s: pemCertificate = %v, want %v", name, got, tc.cert)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFileValuesNeverInDetails: file() refuses a file only its owner may
// read where no password is expected, and a value file() read never shows
// in a diagnostic: the diagnostic names the attribute and the file instead.
func TestFileValuesNeverInDetails(t *testing.T) {
	prepareSecrets(t, "testdata/secrets")
	path := "testdata/errors/file_secret_as_value.hcl"
	_, diags := parseFixture(t, path)
	want := map[string]string{
		"Error in Function Call": `the file "../secrets/ok.password" can be read by its owner only (mode 0600), so it holds a secret, and database is not a password`,
		"Invalid Network Name":   `The network name (the value of network read from the file "../secrets/open.password") is not valid`,
	}
	for _, d := range diags {
		for _, secret := range []string{"secret-ok", "secret-open"} {
			if strings.Contains(d.Summary+d.Detail, secret) {
				t.Errorf("the diagnostic shows a value read from a file: %s", d)
			}
		}
		if w, ok := want[d.Summary]; ok && strings.Contains(d.Detail, w) {
			delete(want, d.Summary)
		}
	}
	for summary, detail := range want {
		t.Errorf("no %s diagnostic with %q:\n%s", summary, detail, diagsText(diags))
	}
}
