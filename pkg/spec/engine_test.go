package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDockerEngine: endpoints the Docker client dials at one place normalise
// to one engine; others stay apart.
func TestDockerEngine(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "run"), filepath.Join(dir, "var-run")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		a, b string
		tls  bool
		same bool
	}{
		{"unix://" + dir + "/run/docker.sock", "unix://" + dir + "/var-run/docker.sock", false, true},
		{"unix://" + dir + "/run/docker.sock", "unix://" + dir + "//run/./x/../docker.sock", false, true},
		{"unix://" + dir + "/run/docker.sock", "unix://" + dir + "/run/other.sock", false, false},
		{"tcp://Engine.Example.org:2376", "tcp://engine.example.org.:2376/", true, true},
		{"tcp://10.0.0.12:2376", "tcp://10.0.0.12:02376", true, true},
		{"tcp://[::1]:2376", "tcp://[0:0::1]:2376", true, true},
		{"tcp://10.0.0.12", "tcp://10.0.0.12:443", true, true},
		{"tcp://10.0.0.12", "tcp://10.0.0.12:80", false, true},
		{"tcp://10.0.0.12:2376", "tcp://10.0.0.12:2377", true, false},
		{"tcp://10.0.0.12:2376", "tcp://10.0.0.13:2376", true, false},
		{"tcp://10.0.0.12:2376/a", "tcp://10.0.0.12:2376/b", true, false},
		{"tcp://10.0.0.12:2376/a/", "tcp://10.0.0.12:2376/a", true, true},
	} {
		a, b := dockerEngine(tc.a, tc.tls), dockerEngine(tc.b, tc.tls)
		if a == "" || b == "" || (a == b) != tc.same {
			t.Errorf("%s -> %q, %s -> %q: want same %v", tc.a, a, tc.b, b, tc.same)
		}
	}
	for _, bad := range []string{"", "unix://", "unix://var/run/docker.sock", "ssh://pacsd@10.0.0.12", "tcp://", "tcp://:2376", "10.0.0.12:2376"} {
		if got := dockerEngine(bad, false); got != "" {
			t.Errorf("dockerEngine(%q) = %q, want \"\"", bad, got)
		}
	}
}

// TestLocalEngineFromEnvironment: a host block on the engine DOCKER_HOST
// names is the local engine too; the default socket stays local.
func TestLocalEngineFromEnvironment(t *testing.T) {
	prepareSecrets(t, "testdata/secrets")
	t.Setenv("DOCKER_HOST", "unix:///run/pacsd/local.sock")
	t.Setenv("DOCKER_CERT_PATH", "")
	src := `cluster "pacs" {
  image    = "postgres:16"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "secrets/ok.password"
  }
  node "db1" {
    port = 15432
  }
}
cluster "other" {
  image    = "postgres:16"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "secrets/ok.password"
  }
  node "db1" {
    host = "env"
    port = 15432
  }
}
host "env" {
  docker  = "unix:///run/pacsd//local.sock"
  address = "10.0.0.11"
}
`
	_, diags := Parse([]byte(src), "testdata/pacs.hcl")
	if len(diags) != 1 || diags[0].Summary != "Duplicate Host Port" || !strings.Contains(diags[0].Detail, `Host "env" names unix:///run/pacsd//local.sock, the local Docker engine`) {
		t.Errorf("want one Duplicate Host Port naming the local engine, got:\n%s", diagsText(diags))
	}
}
