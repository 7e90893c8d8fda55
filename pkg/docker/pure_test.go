package docker

import (
	"archive/tar"
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
	"github.com/google/go-cmp/cmp"
)

func TestContainerAddr(t *testing.T) {
	nets := map[string]*network.EndpointSettings{
		"bridge":   {NetworkID: "n-bridge", IPAddress: "172.17.0.5"},
		"a-other":  {NetworkID: "n-other", IPAddress: "10.0.0.9"},
		"pacs-net": {NetworkID: "n-pacs", IPAddress: "172.20.0.3"},
		"z-noip":   {NetworkID: "n-noip"},
	}
	ports := nat.PortMap{"5432/tcp": {{HostIP: "0.0.0.0", HostPort: "15432"}}}
	cluster := func(id string) bool { return id == "n-pacs" }
	none := func(string) bool { return false }
	for _, tc := range []struct {
		name, host string
		ports      nat.PortMap
		nets       map[string]*network.EndpointSettings
		clusterNet func(string) bool
		want       string
	}{
		{"local, cluster network wins", "", ports, nets, cluster, "172.20.0.3:5432"},
		{"local, else first by name", "", ports, nets, none, "10.0.0.9:5432"},
		{"local, no network", "", ports, nil, cluster, ""},
		{"remote, published port", "db1.example.org", ports, nets, cluster, "db1.example.org:15432"},
		{"remote, IPv6 host", "2001:db8::1", ports, nets, cluster, "[2001:db8::1]:15432"},
		{"remote, nothing published", "db1.example.org", nil, nets, cluster, ""},
	} {
		if got := containerAddr(tc.host, tc.ports, tc.nets, tc.clusterNet); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestFileTar(t *testing.T) {
	o := owner{uid: 101, gid: 103}
	b, err := filesTar("/run", []string{"/run/pacsd", "/run/pacsd/sub"},
		[]tarFile{{path: "/run/pacsd/sub/pw", content: []byte("secret")}, {path: "/run/pacsd/sub/signal", mode: 0o644}}, o)
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		Name     string
		Type     byte
		Mode     int64
		UID, GID int
		Content  string
	}
	var got []entry
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		c, _ := io.ReadAll(tr)
		got = append(got, entry{h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, string(c)})
	}
	want := []entry{
		{"pacsd/", tar.TypeDir, 0o700, 101, 103, ""},
		{"pacsd/sub/", tar.TypeDir, 0o700, 101, 103, ""},
		{"pacsd/sub/pw", tar.TypeReg, 0o600, 101, 103, "secret"},
		{"pacsd/sub/signal", tar.TypeReg, 0o644, 101, 103, ""},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("archive (-want +got):\n%s", d)
	}

	// Extracted at "/", nothing above the file is in the archive.
	b, _ = filesTar("/", nil, []tarFile{{path: "/x", mode: 0o644}}, o)
	h, _ := tar.NewReader(bytes.NewReader(b)).Next()
	if h.Name != "x" || h.Mode != 0o644 {
		t.Errorf("got %q mode %o, want \"x\" mode 644", h.Name, h.Mode)
	}
}

func TestLineWriter(t *testing.T) {
	var got []string
	w := &lineWriter{emit: func(l string) { got = append(got, l) }}
	for _, chunk := range []string{"waiting for checkpoint\n", "  1024/30000 kB (3%)", ", 0/1 tablespace\r", "30000/30000 kB (100%)\r\n", "\n", "done"} {
		_, _ = w.Write([]byte(chunk))
	}
	w.Flush()
	want := []string{"waiting for checkpoint", "  1024/30000 kB (3%), 0/1 tablespace", "30000/30000 kB (100%)", "done"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("lines (-want +got):\n%s", d)
	}
}

func TestTail(t *testing.T) {
	tl := &tail{max: 3}
	for _, l := range []string{"a", "b", "c", "d", "e"} {
		tl.add(l)
	}
	if got := tl.String(); got != "c\nd\ne" {
		t.Errorf("got %q", got)
	}
}

func TestImageMajor(t *testing.T) {
	for _, tc := range []struct {
		ref    string
		labels map[string]string
		env    []string
		want   int
	}{
		{"pacsd-postgres:15", map[string]string{labelPGMajor: "15"}, []string{"PG_MAJOR=14"}, 15},
		{"x:latest", nil, []string{"PATH=/bin", "PG_MAJOR=16"}, 16},
		{"dcm4che/postgres-dcm4chee:17.4-34", nil, nil, 17},
		{"registry:5000/postgres:12@sha256:abc", nil, nil, 12},
		{"registry:5000/postgres", nil, nil, 0},
	} {
		if got := imageMajor(tc.ref, tc.labels, tc.env); got != tc.want {
			t.Errorf("imageMajor(%q): got %d, want %d", tc.ref, got, tc.want)
		}
	}
	if got := refName("registry:5000/lib/pacsd-postgres:15@sha256:1"); got != "pacsd-postgres" {
		t.Errorf("refName: got %q", got)
	}
}

func TestParseOwner(t *testing.T) {
	if o, err := parseOwner("101\n103\n"); err != nil || o != (owner{101, 103}) {
		t.Errorf("parseOwner: got %v, %v", o, err)
	}
	if _, err := parseOwner("id: 'postgres': no such user\n"); err == nil {
		t.Error("parseOwner accepted garbage")
	}
}

func TestNewEndpoints(t *testing.T) {
	for _, ep := range []string{"", "unix:///var/run/docker.sock", "tcp://127.0.0.1:2375"} {
		r, err := New(ep, nil, "")
		if err != nil {
			t.Errorf("New(%q): %v", ep, err)
			continue
		}
		_ = r.Close()
	}
	for ep, want := range map[string]string{
		"ssh://me@host":      "TLS files are only used with tcp://",
		"http://host":        "unknown endpoint",
		"unix:///x.sock+tls": "",
	} {
		_, err := New(ep, &TLSFiles{}, "")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New(%q): got %v, want an error containing %q", ep, err, want)
		}
	}
}

func TestTimeoutDefaults(t *testing.T) {
	r := &Runtime{Timeouts: Timeouts{Pull: time.Minute}}
	want := DefaultTimeouts
	want.Pull = time.Minute
	if got := r.timeouts(); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestPasswdOwner(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want owner
		ok   bool
	}{
		{"root:x:0:0:root:/root:/bin/bash\npostgres:x:999:999::/var/lib/postgresql:/bin/bash\n", owner{999, 999}, true},
		{"postgresql:x:5:5::/:/bin/sh\n", owner{}, false},
		{"postgres:x:abc:1::/:/bin/sh\n", owner{}, false},
		{"", owner{}, false},
	} {
		got, ok := passwdOwner([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("passwdOwner(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestClusterAliases(t *testing.T) {
	// An ID that starts with "db": the alias "db" is not the engine's own.
	id := "db7f3a9c01e2" + "5f0e9d8c7b6a5f0e9d8c7b6a5f0e9d8c7b6a5f0e9d8c7b6a5f0e"
	nets := map[string]*network.EndpointSettings{"pacs": {NetworkID: "n1", Aliases: []string{"db2", id[:12], "db"}}}
	got := clusterAliases(id, nets, func(string) bool { return true })
	if d := cmp.Diff([]string{"db", "db2"}, got); d != "" {
		t.Errorf("aliases (-want +got):\n%s", d)
	}
	if got := clusterAliases(id, nets, func(string) bool { return false }); got != nil {
		t.Errorf("no cluster network: got %v", got)
	}
}
