package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/pkg/daemon"
)

// TestE2EHTTPAuthNonLoopback starts pacsd run as a process on a one-node
// cluster, its file listening on every address (0.0.0.0, which the parser
// accepts only with daemon.tls and a way to authenticate) with a
// certificate and a token file, and asks it at 127.0.0.1 only. It proves
// that plain HTTP gets no endpoint, that HTTPS without credentials or with
// a wrong token is 401 on everything but /healthz, that the token as a
// bearer token or a basic password is served, that pacsd status reads the
// token and the CA from the file, and that the token shows in no log.
func TestE2EHTTPAuthNonLoopback(t *testing.T) {
	e := e2e.Require(t)
	tp := newTopology(t, e, "db1")
	tp.noDaemon = true
	tp.write(t)
	files := e2e.WriteHTTPTLS(t, filepath.Join(tp.dir, "tls"), net.IPv4(127, 0, 0, 1))
	_, port, err := net.SplitHostPort(freePort(t))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(tp.path)
	if err != nil {
		t.Fatal(err)
	}
	daemonBlock := fmt.Sprintf("\ndaemon {\n  listen    = \"0.0.0.0:%s\"\n  state_dir = %q\n%s}\n", port, filepath.Join(tp.dir, "state"), files.Block(false))
	if err := os.WriteFile(tp.path, append(src, daemonBlock...), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := pacsdBinary(t)
	// The same file without tls is refused before anything runs.
	bare := filepath.Join(tp.dir, "bare.hcl")
	if err := os.WriteFile(bare, append(src, fmt.Sprintf("\ndaemon {\n  listen = \"0.0.0.0:%s\"\n}\n", port)...), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "validate", "-f", bare).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "HTTP Endpoint Without TLS") || !strings.Contains(string(out), "HTTP Endpoint Without Authentication") {
		t.Errorf("validate of a file listening on 0.0.0.0 without tls and token: %v\n%s", err, out)
	}

	p := startProcess(t, tp.path)
	addr := net.JoinHostPort("127.0.0.1", port)
	base := "https://" + addr
	anonymous := files.Client(t, "", "")
	get := func(cl *http.Client, path string, prepare func(*http.Request)) (int, string, error) {
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		if err != nil {
			return 0, "", err
		}
		if prepare != nil {
			prepare(req)
		}
		resp, err := cl.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	bearer := func(token string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
	}
	waitFor(t, 2*time.Minute, "/healthz 200 over https without credentials", func() error {
		p.running(t)
		code, body, err := get(anonymous, "/healthz", nil)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("%d %s", code, body)
		}
		return err
	})

	t.Run("plain HTTP gets no endpoint", func(t *testing.T) {
		resp, err := (&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}).Get("http://" + addr + "/status")
		if err != nil {
			t.Logf("plain HTTP: %v", err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(b), "clusters") {
			t.Errorf("plain HTTP to the TLS endpoint: %s %s, want 400 from the TLS server and no status", resp.Status, b)
		}
	})

	t.Run("without credentials only /healthz answers", func(t *testing.T) {
		for _, path := range []string{"/status", "/metrics", "/events", "/", "/readyz", "/primary?node=db1"} {
			code, body, err := get(anonymous, path, nil)
			if err != nil || code != http.StatusUnauthorized || !strings.Contains(body, "Authorization: Bearer") {
				t.Errorf("GET %s without credentials: %d %s %v, want 401 saying what to send", path, code, body, err)
			}
		}
		if code, body, err := get(anonymous, "/status", bearer(strings.Repeat("0", len(files.Token)))); err != nil || code != http.StatusUnauthorized {
			t.Errorf("GET /status with a wrong token: %d %s %v, want 401", code, body, err)
		}
	})

	t.Run("the token is served", func(t *testing.T) {
		waitFor(t, 8*time.Minute, "/readyz 200 with the token", func() error {
			code, body, err := get(anonymous, "/readyz", bearer(files.Token))
			if err == nil && code != http.StatusOK {
				err = fmt.Errorf("%d %s", code, body)
			}
			return err
		})
		code, body, err := get(anonymous, "/status", bearer(files.Token))
		var st daemon.Status
		if err != nil || code != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil || st.Clusters[tp.name] == nil {
			t.Errorf("GET /status with the bearer token: %d %v %s, want the status of cluster %s", code, err, body, tp.name)
		}
		code, body, err = get(anonymous, "/metrics", func(r *http.Request) { r.SetBasicAuth("prometheus", files.Token) })
		if err != nil || code != http.StatusOK || !strings.Contains(body, "pacsd_build_info") {
			t.Errorf("GET /metrics with the token as a basic password: %d %v, want the metrics", code, err)
		}
	})

	t.Run("pacsd status reads the token and the CA from the file", func(t *testing.T) {
		cmd := exec.Command(bin, "status", "-f", tp.path)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "cluster "+tp.name+": acting primary db1") || strings.Contains(string(out), "observed directly") {
			t.Errorf("pacsd status -f FILE: %v\n%s", err, out)
		}
		out, err = exec.Command(bin, "status", "--json", "-f", tp.path).Output()
		var st daemon.Status
		if err != nil || json.Unmarshal(out, &st) != nil || st.Clusters[tp.name] == nil {
			t.Errorf("pacsd status --json -f FILE: %v\n%s", err, out)
		}
		if strings.Contains(string(out), files.Token) {
			t.Error("pacsd status shows the token")
		}
	})

	p.running(t)
	if strings.Contains(p.log.String(), files.Token) {
		t.Error("the log of pacsd run shows the token")
	}
	if !strings.Contains(p.log.String(), `"tls":true`) {
		t.Errorf("pacsd run does not log that it serves over TLS:\n%s", tail(p.log.String(), 4000))
	}
}
