package spec

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/google/go-cmp/cmp"
)

// everyHostSource returns a cluster "pacs" of node db1 on host "a" and node
// db2 on host "b", with failover added inside the cluster block, the hosts
// a and b (hosts added after them), and daemon { etcd { etcd } } unless etcd
// is "-" (no etcd block: one controller, whose hosts then need docker).
func everyHostSource(failover, hosts, etcd string) string {
	var b strings.Builder
	b.WriteString(clusterSource(0, failover+
		"  node \"db1\" {\n    host = \"a\"\n    port = 15432\n  }\n"+
		"  node \"db2\" {\n    host = \"b\"\n    port = 15432\n  }\n"))
	docker := ""
	if etcd == "-" {
		docker = "  docker  = \"unix:///run/pacsd/%s.sock\"\n"
	}
	for i, name := range []string{"a", "b"} {
		fmt.Fprintf(&b, "host %q {\n", name)
		if docker != "" {
			fmt.Fprintf(&b, docker, name)
		}
		fmt.Fprintf(&b, "  address = \"10.0.0.1%d\"\n}\n", i+1)
	}
	b.WriteString(hosts)
	if etcd != "-" {
		fmt.Fprintf(&b, "daemon {\n  etcd {\n%s\n  }\n}\n", etcd)
	}
	return b.String()
}

const etcdTLS = "    tls {\n      ca   = \"secrets/tls-ca.pem\"\n      cert = \"secrets/tls-cert.pem\"\n      key  = \"secrets/tls-key.pem\"\n    }\n"

// TestParseEtcdEndpoint: an etcd endpoint is http:// or https://, a host and
// a port and nothing else; two spellings of one member normalise alike.
func TestParseEtcdEndpoint(t *testing.T) {
	for _, tc := range []struct {
		in, key, host string
		problem       string // a word of the problem, "" when valid
	}{
		{"https://10.0.0.11:2379", "https://10.0.0.11:2379", "10.0.0.11", ""},
		{"http://127.0.0.1:2379", "http://127.0.0.1:2379", "127.0.0.1", ""},
		{"https://10.0.0.11:02379", "https://10.0.0.11:2379", "10.0.0.11", ""},
		{"https://[fd00:0::12]:2379", "https://[fd00::12]:2379", "fd00:0::12", ""},
		{"https://Etcd-1.Example.org:2379", "https://etcd-1.example.org:2379", "Etcd-1.Example.org", ""},
		{"https://localhost:2379", "https://localhost:2379", "localhost", ""},
		{"https://10.0.0.11", "", "", "no port"},
		{"https://10.0.0.11:", "", "", "no port"},
		{"https://10.0.0.11:0", "", "", "outside"},
		{"https://10.0.0.11:65536", "", "", "outside"},
		{"https://10.0.0.11:2379/", "", "", "path"},
		{"https://10.0.0.11:2379/v3/kv", "", "", "path"},
		{"https://10.0.0.11:2379?a=b", "", "", "query"},
		{"https://10.0.0.11:2379?", "", "", "query"},
		{"https://10.0.0.11:2379#x", "", "", "fragment"},
		{"https://user@10.0.0.11:2379", "", "", "user information"},
		{"https://user:secret@10.0.0.11:2379", "", "", "user information"},
		{"https://:2379", "", "", "no host"},
		{"https://etcd_1:2379", "", "", "not an IP address or host name"},
		{"https://[fe80::1%25eth0]:2379", "", "", "not an IP address or host name"},
		{"HTTPS://10.0.0.11:2379", "", "", "https://"},
		{"unix:///run/etcd.sock", "", "", "https://"},
		{"10.0.0.11:2379", "", "", "https://"},
		{"", "", "", "https://"},
	} {
		key, host, problem := parseEtcdEndpoint(tc.in)
		switch {
		case tc.problem == "" && (problem != "" || key != tc.key || host != tc.host):
			t.Errorf("parseEtcdEndpoint(%q) = %q, %q, %q; want %q, %q and no problem", tc.in, key, host, problem, tc.key, tc.host)
		case tc.problem != "" && !strings.Contains(problem, tc.problem):
			t.Errorf("parseEtcdEndpoint(%q) problem %q, want one that says %q", tc.in, problem, tc.problem)
		}
	}
}

// TestEtcdSchemesAndTLS: https:// endpoints need a tls block, a tls block
// needs every endpoint https://, and http:// off loopback is a warning.
func TestEtcdSchemesAndTLS(t *testing.T) {
	prepareSecrets(t, "testdata/secrets")
	const (
		noTLS       = "error Etcd https:// Without TLS"
		tlsNoHTTPS  = "error Etcd TLS Without https://"
		unencrypted = "warning Unencrypted Etcd Endpoint"
	)
	for _, tc := range []struct {
		name      string
		endpoints string
		tls       bool
		want      []string
	}{
		{"https with tls", `"https://10.0.0.11:2379", "https://10.0.0.12:2379"`, true, nil},
		{"https without tls", `"https://10.0.0.11:2379"`, false, []string{noTLS}},
		{"https on loopback without tls", `"https://127.0.0.1:2379"`, false, []string{noTLS}},
		{"http on loopback", `"http://127.0.0.1:2379", "http://[::1]:2379", "http://localhost:2379"`, false, nil},
		{"http on the network", `"http://10.0.0.11:2379"`, false, []string{unencrypted}},
		{"http on the network, twice", `"http://10.0.0.11:2379", "http://127.0.0.1:2379", "http://10.0.0.12:2379"`, false, []string{unencrypted, unencrypted}},
		{"http with tls", `"http://127.0.0.1:2379"`, true, []string{tlsNoHTTPS}},
		{"mixed with tls", `"https://10.0.0.11:2379", "http://10.0.0.12:2379"`, true, []string{tlsNoHTTPS}},
		{"mixed without tls", `"https://10.0.0.11:2379", "http://10.0.0.12:2379"`, false, []string{noTLS}},
		{"only invalid endpoints with tls", `"ftp://10.0.0.11:2379"`, true, []string{"error Invalid Etcd Endpoint"}},
		{"from a function", `"https://10.0.0.11:2379", env("PACSD_TEST_ETCD")`, true, []string{"error Invalid Etcd Endpoint"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PACSD_TEST_ETCD", "https://10.0.0.12")
			etcd := "    endpoints = [" + tc.endpoints + "]\n"
			if tc.tls {
				etcd += etcdTLS
			}
			got := summaries(t, everyHostSource("", "", etcd))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("diagnostics differ (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEtcdDiagnosticsPoint: each endpoint's diagnostic points at the
// endpoint in the list, and a password in an endpoint never shows.
func TestEtcdDiagnosticsPoint(t *testing.T) {
	prepareSecrets(t, "testdata/secrets")
	src := everyHostSource("", "", "    endpoints = [\n      \"https://10.0.0.11:2379\",\n      \"https://root:do-not-print@10.0.0.12:2379\",\n      \"http://10.0.0.13:2379\",\n    ]\n"+etcdTLS)
	_, diags := Parse([]byte(src), "testdata/pacs.hcl")
	lines := strings.Split(src, "\n")
	var got []string
	for _, d := range diags {
		if strings.Contains(d.Summary+d.Detail, "do-not-print") {
			t.Errorf("the diagnostic shows the password: %s", d)
		}
		got = append(got, fmt.Sprintf("%s at %q", d.Summary, lines[d.Subject.Start.Line-1][d.Subject.Start.Column-1:]))
	}
	want := []string{
		`Invalid Etcd Endpoint at "\"https://root:do-not-print@10.0.0.12:2379\","`,
		`Etcd TLS Without https:// at "tls {"`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diagnostics differ (-want +got):\n%s", diff)
	}
}

// TestEtcdPrefix: the prefix starts with "/", does not end with "/" and
// holds no white space or control character; it defaults to "/pacsd".
func TestEtcdPrefix(t *testing.T) {
	prepareSecrets(t, "testdata/secrets")
	for prefix, ok := range map[string]bool{
		"/pacsd": true, "/pacsd/site-a": true, "/a": true, "/pacsd.v1_x": true, "/ü": true,
		"": false, "/": false, "pacsd": false, "/pacsd/": false, "//": false, "/pacsd prod": false,
		"/pacsd\t": false, "/pacsd\n/x": false, "/pacsd\x00": false, "/a\u00a0b": false, " /pacsd": false,
	} {
		src := everyHostSource("", "", fmt.Sprintf("    endpoints = [\"http://127.0.0.1:2379\"]\n    prefix = %s\n", hclQuote(prefix)))
		f, diags := Parse([]byte(src), "testdata/pacs.hcl")
		got := summaries(t, src)
		switch {
		case ok && (len(diags) != 0 || f.Daemon.Etcd.Prefix != prefix):
			t.Errorf("prefix %q: diagnostics %q; want none and the prefix kept", prefix, got)
		case !ok && !cmp.Equal(got, []string{"error Invalid Etcd Prefix"}):
			t.Errorf("prefix %q: diagnostics %q, want Invalid Etcd Prefix", prefix, got)
		}
	}
}

// hclQuote writes s as an HCL string literal, control characters as \uXXXX.
func hclQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteRune('\\')
			b.WriteRune(r)
		case unicode.IsControl(r):
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// TestFailoverTTL: ttl lies within 2s..10m and defaults to 10s; ttl and
// failsafe without daemon.etcd get a warning, and failsafe without automatic
// failover gets one with it.
func TestFailoverTTL(t *testing.T) {
	prepareSecrets(t, "testdata/secrets")
	const (
		short, long = "error Failover TTL Too Short", "error Failover TTL Too Long"
		noEtcd      = "warning Failover Setting Without Etcd"
		etcd        = "    endpoints = [\"http://127.0.0.1:2379\"]\n"
	)
	for _, tc := range []struct {
		name, failover string
		etcd           bool
		ttl            time.Duration // the parsed value when valid
		failsafe       bool
		want           []string
	}{
		{"default", "", true, 10 * time.Second, false, nil},
		{"empty block", "automatic = true", true, 10 * time.Second, false, nil},
		{"lowest", `ttl = "2s"`, true, 2 * time.Second, false, nil},
		{"highest", `ttl = "10m"`, true, 10 * time.Minute, false, nil},
		{"in between", `ttl = "1m30s"`, true, 90 * time.Second, false, nil},
		{"just below", `ttl = "1999ms"`, true, 0, false, []string{short}},
		{"just above", `ttl = "10m0.001s"`, true, 0, false, []string{long}},
		{"an hour", `ttl = "1h"`, true, 0, false, []string{long}},
		{"not a duration", `ttl = 10`, true, 0, false, []string{"error Invalid Duration"}},
		{"zero", `ttl = "0s"`, true, 0, false, []string{"error Invalid Duration"}},
		{"failsafe with automatic", "automatic = true\n    failsafe = true", true, 10 * time.Second, true, []string{"error Failsafe Needs a Reachable Listen Address"}},
		{"failsafe without automatic", "failsafe = true", true, 10 * time.Second, true, []string{"error Failsafe Needs a Reachable Listen Address", "warning Failsafe Without Automatic Failover"}},
		{"failsafe false without automatic", "failsafe = false", true, 10 * time.Second, false, nil},
		{"failsafe not a bool", `failsafe = "maybe"`, true, 0, false, []string{"error Incorrect Attribute Value Type"}},
		{"ttl without etcd", `ttl = "10s"`, false, 10 * time.Second, false, []string{noEtcd}},
		{"failsafe without etcd", "automatic = true\n    failsafe = true", false, 10 * time.Second, true, []string{noEtcd}},
		{"failsafe without etcd and automatic", "failsafe = true", false, 10 * time.Second, true, []string{noEtcd}},
		{"both without etcd", "ttl = \"30s\"\n    failsafe = false", false, 30 * time.Second, false, []string{noEtcd, noEtcd}},
		{"out of range without etcd", `ttl = "1s"`, false, 0, false, []string{noEtcd, short}},
		{"nothing without etcd", "automatic = true", false, 10 * time.Second, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failover := ""
			if tc.failover != "" {
				failover = "  failover {\n    " + tc.failover + "\n  }\n"
			}
			e := etcd
			if !tc.etcd {
				e = "-"
			}
			src := everyHostSource(failover, "", e)
			got := summaries(t, src)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("diagnostics differ (-want +got):\n%s", diff)
			}
			f, _ := Parse([]byte(src), "testdata/pacs.hcl")
			if f == nil {
				return
			}
			if fo := f.Clusters[0].Failover; fo.TTL.Duration != tc.ttl || fo.Failsafe != tc.failsafe {
				t.Errorf("ttl %s, failsafe %v; want %s, %v", fo.TTL, fo.Failsafe, tc.ttl, tc.failsafe)
			}
		})
	}
}

// TestFailoverTTLDetail: the detail gives the reason of the bounds, in the
// renewal and fencing intervals of the ttl written.
func TestFailoverTTLDetail(t *testing.T) {
	prepareSecrets(t, "testdata/secrets")
	for ttl, wants := range map[string][]string{
		"1s":  {"1s, below 2s", "every ttl/5 (200ms here)", "half the ttl (500ms here)", `Use "2s" or more`, `the default is "10s"`},
		"20m": {"20m, above 10m", "every ttl/5 (4m here)", "half the ttl (10m here)", "for up to 20m", `Use "10m" or less`},
	} {
		_, diags := Parse([]byte(everyHostSource("  failover {\n    ttl = \""+ttl+"\"\n  }\n", "", "    endpoints = [\"http://127.0.0.1:2379\"]\n")), "testdata/pacs.hcl")
		if len(diags) != 1 {
			t.Fatalf("ttl %s: want one diagnostic, got:\n%s", ttl, diagsText(diags))
		}
		for _, want := range wants {
			if !strings.Contains(diags[0].Detail, want) {
				t.Errorf("ttl %s: detail %q does not say %q", ttl, diags[0].Detail, want)
			}
		}
	}
}

// TestEveryHostNodesAndHosts: with daemon.etcd every node names a host and a
// host's docker is optional; without it, docker stays required and nodes
// without host run on the local engine.
func TestEveryHostNodesAndHosts(t *testing.T) {
	prepareSecrets(t, "testdata/secrets")
	const etcd = "    endpoints = [\"http://127.0.0.1:2379\"]\n"
	local := clusterSource(0, "  node \"db1\" {\n    port = 15432\n  }\n")
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"hosts without docker", everyHostSource("", "", etcd), nil},
		{"node without host", local + "daemon {\n  etcd {\n" + etcd + "  }\n}\n", []string{"error Node Without Host"}},
		{"node without host, no etcd", local, nil},
		{"node without host beside hosts", clusterSource(0, "  node \"db1\" {\n    host = \"a\"\n    port = 15432\n  }\n  node \"db2\" {\n    port = 15432\n  }\n") +
			"host \"a\" {\n  address = \"10.0.0.11\"\n}\ndaemon {\n  etcd {\n" + etcd + "  }\n}\n", []string{"error Node Without Host"}},
		{"host without docker, no etcd", clusterSource(0, "  node \"db1\" {\n    host = \"a\"\n    port = 15432\n  }\n") + "host \"a\" {\n  address = \"10.0.0.11\"\n}\n", []string{"error Missing Required Argument"}},
		{"host without address", everyHostSource("", "host \"c\" {\n}\n", etcd), []string{"error Missing Required Argument"}},
		{"same socket on every host", everyHostSource("", "host \"c\" {\n  docker = \"unix:///var/run/docker.sock\"\n  address = \"10.0.0.13\"\n}\nhost \"d\" {\n  docker = \"unix:///var/run/docker.sock\"\n  address = \"10.0.0.14\"\n}\n", etcd), nil},
		{"same socket, one controller", everyHostSource("", "host \"c\" {\n  docker = \"unix:///var/run/docker.sock\"\n  address = \"10.0.0.13\"\n}\nhost \"d\" {\n  docker = \"unix:///var/run/docker.sock\"\n  address = \"10.0.0.14\"\n}\n", "-"), []string{"error Duplicate Docker Endpoint"}},
		{"same remote engine twice", everyHostSource("", "host \"c\" {\n  docker = \"tcp://10.0.0.20:2376\"\n  address = \"10.0.0.13\"\n"+etcdTLS+"}\nhost \"d\" {\n  docker = \"tcp://10.0.0.20:02376\"\n  address = \"10.0.0.14\"\n"+etcdTLS+"}\n", etcd), []string{"error Duplicate Docker Endpoint"}},
		{"same loopback engine on every host", everyHostSource("", "host \"c\" {\n  docker = \"tcp://127.0.0.1:2376\"\n  address = \"10.0.0.13\"\n"+etcdTLS+"}\nhost \"d\" {\n  docker = \"tcp://127.0.0.1:2376\"\n  address = \"10.0.0.14\"\n"+etcdTLS+"}\n", etcd), nil},
		{"nodes without port on two hosts", clusterSource(0, "  node \"db1\" {\n    host = \"a\"\n  }\n  node \"db2\" {\n    host = \"b\"\n    port = 15432\n  }\n") +
			"host \"a\" {\n  address = \"10.0.0.11\"\n}\nhost \"b\" {\n  address = \"10.0.0.12\"\n}\ndaemon {\n  etcd {\n" + etcd + "  }\n}\n", []string{"error Node on a Host Block Without Port"}},
		{"loopback address across hosts", strings.Replace(everyHostSource("", "", etcd), "10.0.0.11", "127.0.0.1", 1), []string{"error Loopback Host Address"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := summaries(t, tc.src)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("diagnostics differ (-want +got):\n%s\n%s", diff, tc.src)
			}
		})
	}
}

// TestEveryHostValid: the valid every-host fixture parses with no
// diagnostic at all, with its defaults filled in: the etcd prefix, the
// failover ttl, and the engine of the environment for hosts without docker.
func TestEveryHostValid(t *testing.T) {
	prepareSecrets(t, "testdata/secrets")
	f, diags := parseFixture(t, "testdata/valid/every_host.hcl")
	for _, d := range diags {
		t.Errorf("unexpected diagnostic: %s", d)
	}
	if f == nil {
		t.FailNow()
	}
	if !f.EveryHost() {
		t.Error("EveryHost() = false for a file with daemon.etcd")
	}
	want := &Etcd{
		Endpoints: []string{"https://10.0.0.11:2379", "https://[fd00::12]:2379", "https://etcd-3.example.org:2379"},
		Prefix:    "/pacsd",
		TLS:       &TLS{CA: "testdata/secrets/tls-ca.pem", Cert: "testdata/secrets/tls-cert.pem", Key: "testdata/secrets/tls-key.pem"},
	}
	if diff := cmp.Diff(want, f.Daemon.Etcd); diff != "" {
		t.Errorf("daemon.etcd differs (-want +got):\n%s", diff)
	}
	c := f.Clusters[0]
	if c.Failover.TTL.Duration != 10*time.Second || c.Failover.Failsafe {
		t.Errorf("failover %+v, want ttl 10s and no failsafe", c.Failover)
	}
	if got := c.Hosts(); !cmp.Equal(got, []string{"a", "b"}) {
		t.Errorf("Hosts() = %q, want [a b]", got)
	}
	a, b := f.Hosts[0], f.Hosts[1]
	if a.Docker != "" || c.Nodes[0].Docker != "" || b.Docker != "unix:///var/run/docker.sock" || c.Nodes[1].Docker != b.Docker {
		t.Errorf("docker endpoints: host a %q (node db1 %q), host b %q (node db2 %q); want \"\" for a and b's as written", a.Docker, c.Nodes[0].Docker, b.Docker, c.Nodes[1].Docker)
	}
	if a.Engine == "" || b.Engine == "" || a.Engine == b.Engine {
		t.Errorf("engines %q and %q, want two distinct engines", a.Engine, b.Engine)
	}
	if got := []string{c.Nodes[0].Address, c.Nodes[1].Address, c.Nodes[2].Address}; !cmp.Equal(got, []string{"10.0.0.11", "10.0.0.12", "10.0.0.11"}) {
		t.Errorf("node addresses %q", got)
	}
}

// TestEveryHostOff: a file without daemon.etcd is one of one controller,
// with no etcd settings and the failover defaults.
func TestEveryHostOff(t *testing.T) {
	prepareSecrets(t, "testdata/secrets")
	f, diags := Parse([]byte(clusterSource(1, "")), "testdata/pacs.hcl")
	if f == nil {
		t.Fatalf("unexpected errors:\n%s", diagsText(diags))
	}
	if f.EveryHost() || f.Daemon.Etcd != nil {
		t.Errorf("EveryHost() = %v, Etcd = %+v; want false and nil", f.EveryHost(), f.Daemon.Etcd)
	}
	if fo := f.Clusters[0].Failover; fo.TTL.Duration != 10*time.Second || fo.Failsafe {
		t.Errorf("failover %+v, want ttl 10s without failsafe", fo)
	}
	f, diags = Parse([]byte(everyHostSource("", "", "    endpoints = [\"http://127.0.0.1:2379\"]\n")), "testdata/pacs.hcl")
	if f == nil {
		t.Fatalf("unexpected errors:\n%s", diagsText(diags))
	}
	if got := f.Daemon.Etcd; got == nil || got.Prefix != DefaultEtcdPrefix || got.TLS != nil || !cmp.Equal(got.Endpoints, []string{"http://127.0.0.1:2379"}) {
		t.Errorf("daemon.etcd %+v, want the endpoint, prefix %q and no TLS", got, DefaultEtcdPrefix)
	}
}

// TestClusterHosts: Hosts lists the host of each node once, in the order of
// the first node on it, "" for the local engine.
func TestClusterHosts(t *testing.T) {
	for _, tc := range []struct {
		nodes []string
		want  []string
	}{
		{nil, nil},
		{[]string{""}, []string{""}},
		{[]string{"a", "b", "c"}, []string{"a", "b", "c"}},
		{[]string{"b", "a", "b", "", "a", ""}, []string{"b", "a", ""}},
	} {
		c := &Cluster{}
		for i, h := range tc.nodes {
			c.Nodes = append(c.Nodes, &Node{Name: fmt.Sprintf("db%d", i), Host: h})
		}
		if got := c.Hosts(); !cmp.Equal(got, tc.want) {
			t.Errorf("nodes on %q: Hosts() = %q, want %q", tc.nodes, got, tc.want)
		}
	}
}
