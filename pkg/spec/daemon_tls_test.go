package spec

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// parseDaemon parses a one-node cluster with the given daemon block body
// from testdata (so that ../secrets... paths are the fixtures' secrets).
func parseDaemon(t *testing.T, body string) (*File, []string) {
	t.Helper()
	src := "cluster \"pacs\" {\n  image = \"postgres:16\"\n  database = \"pacsdb\"\n  superuser {\n    name = \"pacs\"\n    password_file = \"secrets/ok.password\"\n  }\n  node \"db1\" {}\n}\ndaemon {\n" + body + "\n}\n"
	f, diags := Parse([]byte(src), "testdata/pacs.hcl")
	var got []string
	for _, d := range diags {
		got = append(got, d.Summary)
	}
	return f, got
}

// TestDaemonTLSAndToken: daemon.tls and daemon.token_file are read (paths
// resolved against the file, the token as a Secret that never prints); a
// listen address off loopback needs TLS and either a token or client_ca,
// while loopback needs neither and keeps what it is given.
func TestDaemonTLSAndToken(t *testing.T) {
	prepareSecrets(t, "testdata/secrets")
	const tlsBlock = "  tls {\n    cert = \"secrets/tls-cert.pem\"\n    key = \"secrets/tls-key.pem\"\n%s  }\n"
	clientCA := fmt.Sprintf(tlsBlock, "    client_ca = \"secrets/tls-ca.pem\"\n")
	serverOnly := fmt.Sprintf(tlsBlock, "")
	const token = "  token_file = \"secrets/http.token\"\n"
	const noTLS, noAuth = "HTTP Endpoint Without TLS", "HTTP Endpoint Without Authentication"
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"loopback, nothing", `  listen = "127.0.0.1:9187"`, nil},
		{"loopback, token only", "  listen = \"[::1]:9187\"\n" + token, nil},
		{"loopback, tls only", "  listen = \"localhost:9187\"\n" + serverOnly, nil},
		{"every address, tls and token", "  listen = \"0.0.0.0:9187\"\n" + serverOnly + token, nil},
		{"every address, client_ca", "  listen = \":9187\"\n" + clientCA, nil},
		{"one address, tls and token", "  listen = \"10.0.0.5:9187\"\n" + serverOnly + token, nil},
		{"every address, nothing", `  listen = "[::]:9187"`, []string{noTLS, noAuth}},
		{"every address, token only", "  listen = \"0.0.0.0:9187\"\n" + token, []string{noTLS}},
		{"one address, tls only", "  listen = \"[fd00::1]:9187\"\n" + serverOnly, []string{noAuth}},
		{"a token file refused is no second complaint", "  listen = \"0.0.0.0:9187\"\n" + serverOnly + "  token_file = \"secrets/short.token\"\n", []string{"Token Too Short"}},
		{"empty token file", "  token_file = \"secrets/empty.password\"\n", []string{"Empty Token File"}},
		{"token on two lines", "  token_file = \"secrets/multiline.password\"\n", []string{"Invalid Character in Token"}},
		{"token file others may read", "  token_file = \"secrets/open-http.token\"\n", []string{"Token File Readable by Others"}},
		{"token file missing", "  token_file = \"secrets/none.token\"\n", []string{"Token File Not Found"}},
		{"tls without cert and key", "  tls {\n  }\n", []string{"Missing Required Argument", "Missing Required Argument"}},
		{"unknown tls attribute", "  tls {\n    cert = \"secrets/tls-cert.pem\"\n    key = \"secrets/tls-key.pem\"\n    client_cert = \"x\"\n  }\n", []string{"Unsupported Argument"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, got := parseDaemon(t, tc.body)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}

	f, diags := parseDaemon(t, "  listen = \"0.0.0.0:9187\"\n  tls {\n    cert = \"secrets/tls-cert.pem\"\n    key = \"secrets/tls-key.pem\"\n    ca = \"secrets/tls-ca.pem\"\n  }\n"+token)
	if len(diags) > 0 || f == nil {
		t.Fatalf("diagnostics %q", diags)
	}
	in := func(p string) string { return filepath.Join("testdata", p) } // beside the file
	if diff := cmp.Diff(&DaemonTLS{Cert: in("secrets/tls-cert.pem"), Key: in("secrets/tls-key.pem"), CA: in("secrets/tls-ca.pem")}, f.Daemon.TLS); diff != "" {
		t.Errorf("daemon.tls (-want +got):\n%s", diff)
	}
	want, err := os.ReadFile("testdata/secrets/http.token")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Daemon.Token.Reveal(); got != strings.TrimSuffix(string(want), "\n") || !f.Daemon.Authenticates() {
		t.Errorf("the token read is %d characters (authenticates: %v), want the file's %d without its newline", len(got), f.Daemon.Authenticates(), len(want))
	}
	j, err := json.Marshal(f.Daemon)
	if err != nil {
		t.Fatal(err)
	}
	for _, shown := range []string{string(j), fmt.Sprintf("%v %+v %#v %s", f.Daemon, f.Daemon, f.Daemon, f.Daemon.Token)} {
		if strings.Contains(shown, f.Daemon.Token.Reveal()) {
			t.Errorf("the token shows in %s", shown)
		}
	}
	if !strings.Contains(string(j), `"token":"[redacted, from secrets/http.token]"`) {
		t.Errorf("the daemon as JSON does not say where its token comes from: %s", j)
	}
	if f.Daemon.TLS.ServerCA() != f.Daemon.TLS.CA {
		t.Errorf("ServerCA %q, want ca %q", f.Daemon.TLS.ServerCA(), f.Daemon.TLS.CA)
	}
	if (&DaemonTLS{ClientCA: "c"}).ServerCA() != "c" || (&DaemonTLS{}).ServerCA() != "" {
		t.Error("ServerCA without ca is not client_ca, or not \"\" (the system's authorities) without either")
	}

	// Without the attributes: no TLS, no token, nothing authenticates; the
	// JSON keeps its old shape.
	f, _ = parseDaemon(t, `  listen = "127.0.0.1:9187"`)
	if f.Daemon.TLS != nil || !f.Daemon.Token.IsZero() || f.Daemon.Authenticates() {
		t.Errorf("a daemon block without tls and token_file: %+v", f.Daemon)
	}
	if j, _ := json.Marshal(f.Daemon); strings.Contains(string(j), "tls") || strings.Contains(string(j), "token") {
		t.Errorf("the daemon without tls and token as JSON: %s", j)
	}
}
