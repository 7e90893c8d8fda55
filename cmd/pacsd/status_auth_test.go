package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/pkg/daemon"
)

// TestStatusCommandAuthenticates: 'pacsd status' asks a daemon whose file
// has daemon.tls and daemon.token_file over https, verifying it with
// daemon.tls.ca and sending the token; a refused token, a daemon that
// serves HTTPS to a file without tls, and a certificate the file's CA did
// not sign are exit 1 with what to do, and no message shows the token.
func TestStatusCommandAuthenticates(t *testing.T) {
	dir := t.TempDir()
	files := e2e.WriteHTTPTLS(t, filepath.Join(dir, "tls"), net.IPv4(127, 0, 0, 1))
	var asked []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.URL.Path)
		if r.Header.Get("Authorization") != "Bearer "+files.Token {
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(daemon.Status{Passed: true})
	}))
	pair, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	defer srv.Close()
	if err := os.WriteFile(filepath.Join(dir, "pacs.password"), []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "pacs.hcl")
	write := func(daemonBlock string) {
		t.Helper()
		src := fmt.Sprintf(`cluster "pacs" {
  image    = "pacsd-postgres:15"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "pacs.password"
  }
  node "db1" {}
}
daemon {
  listen = %q
%s}
`, strings.TrimPrefix(srv.URL, "https://"), daemonBlock)
		if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(files.Block(false))
	code, out, errOut := runCLI(t, nil, "status", "-f", file)
	if code != exitOK || !strings.Contains(out, "no cluster has been observed yet") {
		t.Fatalf("status with the token over https: exit %d\n%s%s", code, out, errOut)
	}
	if len(asked) != 1 {
		t.Errorf("the daemon was asked %v, want /status once", asked)
	}

	if err := os.WriteFile(files.TokenFile, []byte(strings.Repeat("w", 40)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, nil, "status", "-f", file)
	if code != exitProblem || !strings.Contains(errOut, "refused the credentials") || !strings.Contains(errOut, "reload") {
		t.Errorf("status with another token: exit %d, %s%s; want 1 saying the credentials were refused", code, out, errOut)
	}
	if strings.Contains(out+errOut, strings.Repeat("w", 40)) {
		t.Error("status shows the token")
	}

	write("")
	code, out, errOut = runCLI(t, nil, "status", "-f", file)
	if code != exitProblem || !strings.Contains(errOut, "serves HTTPS") {
		t.Errorf("status of a file without tls, to a daemon that serves HTTPS: exit %d, %s%s", code, out, errOut)
	}

	foreign := e2e.WriteHTTPTLS(t, filepath.Join(dir, "foreign"), net.IPv4(127, 0, 0, 1))
	write(fmt.Sprintf("  token_file = %q\n  tls {\n    cert = %q\n    key = %q\n    ca = %q\n  }\n", files.TokenFile, foreign.Cert, foreign.Key, foreign.CA))
	code, out, errOut = runCLI(t, nil, "status", "-f", file)
	if code != exitProblem || !strings.Contains(errOut, "cannot be verified") || strings.Contains(out, "observed directly") {
		t.Errorf("status of a daemon whose certificate the file's CA did not sign: exit %d, %s%s; want 1 saying so, without observing", code, out, errOut)
	}
}
