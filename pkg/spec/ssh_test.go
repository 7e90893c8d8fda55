package spec

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func TestParseSSHEndpoint(t *testing.T) {
	for in, want := range map[string]SSHEndpoint{
		"ssh://pacsd@10.0.0.12":                       {User: "pacsd", Host: "10.0.0.12", Port: 22, Socket: "/var/run/docker.sock"},
		"ssh://pacsd@10.0.0.12/":                      {User: "pacsd", Host: "10.0.0.12", Port: 22, Socket: "/var/run/docker.sock"},
		"ssh://root@10.0.0.12:2222":                   {User: "root", Host: "10.0.0.12", Port: 2222, Socket: "/var/run/docker.sock"},
		"ssh://root@10.0.0.12:2222/run//docker.sock":  {User: "root", Host: "10.0.0.12", Port: 2222, Socket: "/run/docker.sock"},
		"ssh://me@DB-B.Example.org/run/user/1000/d.s": {User: "me", Host: "db-b.example.org", Port: 22, Socket: "/run/user/1000/d.s"},
		"ssh://me@[fd00::12]:2200":                    {User: "me", Host: "fd00::12", Port: 2200, Socket: "/var/run/docker.sock"},
		"ssh://first.last@host":                       {User: "first.last", Host: "host", Port: 22, Socket: "/var/run/docker.sock"},
		"ssh://pacsd@10.0.0.12:022":                   {User: "pacsd", Host: "10.0.0.12", Port: 22, Socket: "/var/run/docker.sock"},
	} {
		got, err := ParseSSHEndpoint(in)
		if err != nil {
			t.Errorf("ParseSSHEndpoint(%q): %v", in, err)
			continue
		}
		if got != want {
			t.Errorf("ParseSSHEndpoint(%q) = %+v, want %+v", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"tcp://pacsd@10.0.0.12":            "does not start with ssh://",
		"SSH://pacsd@10.0.0.12":            "does not start with ssh://",
		"ssh://10.0.0.12":                  "names no user",
		"ssh://@10.0.0.12":                 "names no user",
		"ssh://pacsd:pw@10.0.0.12":         "holds a password",
		"ssh://pacsd:@10.0.0.12":           "holds a password",
		"ssh://pacsd@":                     "names no host",
		"ssh://pacsd@:22":                  "names no host",
		"ssh://pacsd@10.0.0.12:":           "port",
		"ssh://pacsd@10.0.0.12:0":          "port",
		"ssh://pacsd@10.0.0.12:65536":      "port",
		"ssh://pacsd@10.0.0.12:ssh":        "not a URL",
		"ssh://pacsd@host_b":               "not a host name",
		"ssh://pacsd@host.":                "not a host name",
		"ssh://pacsd@[host]":               "not a URL",
		"ssh://pacsd@10.0.0.12?x=1":        "query",
		"ssh://pacsd@10.0.0.12#x":          "fragment",
		"ssh://pacsd@10.0.0.12/a b":        "white space",
		"ssh://-oProxyCommand=x@10.0.0.12": "not a user name",
	} {
		_, err := ParseSSHEndpoint(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSSHEndpoint(%q): got %v, want an error containing %q", in, err, want)
		}
	}
}

func TestSSHEndpointStringAndEngine(t *testing.T) {
	e, err := ParseSSHEndpoint("ssh://pacsd@Host.Example.org")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := e.String(), "ssh://pacsd@host.example.org:22/var/run/docker.sock"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := e.Addr(), "host.example.org:22"; got != want {
		t.Errorf("Addr() = %q, want %q", got, want)
	}
	same := [][2]string{
		{"ssh://a@10.0.0.12", "ssh://b@10.0.0.12:22/var/run/docker.sock"},
		{"ssh://a@[fd00::0012]:2222", "ssh://a@[fd00::12]:2222/var/run/docker.sock"},
		{"ssh://a@HOST", "ssh://a@host/var/run/./docker.sock"},
	}
	for _, p := range same {
		a, _ := ParseSSHEndpoint(p[0])
		b, _ := ParseSSHEndpoint(p[1])
		if a.engine() != b.engine() {
			t.Errorf("%s and %s: engines %q and %q, want one", p[0], p[1], a.engine(), b.engine())
		}
	}
	differ := [][2]string{
		{"ssh://a@10.0.0.12", "ssh://a@10.0.0.12:2222"},
		{"ssh://a@10.0.0.12", "ssh://a@10.0.0.12/run/docker.sock"},
		{"ssh://a@10.0.0.12", "ssh://a@10.0.0.13"},
	}
	for _, p := range differ {
		a, _ := ParseSSHEndpoint(p[0])
		b, _ := ParseSSHEndpoint(p[1])
		if a.engine() == b.engine() {
			t.Errorf("%s and %s: one engine %q, want two", p[0], p[1], a.engine())
		}
	}
}

// writeKey writes a new ed25519 private key to file with mode, encrypted
// when passphrase is not empty, and returns its public key.
func writeKey(t *testing.T, file string, mode os.FileMode, passphrase string) ssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "test key")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "test key", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(block), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, mode); err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fakeAgent returns the path of a unix socket that stands for an ssh agent
// (the parser only checks that SSH_AUTH_SOCK names a socket).
func fakeAgent(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return sock
}

const sshHostFile = `cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name     = "pacs"
    password = env("PACSD_TEST_PASSWORD")
  }
  node "db1" {
    host = "b"
    port = 15432
  }
}
host "b" {
  docker  = "ssh://pacsd@10.0.0.12:2222"
  address = "10.0.0.12"
}
`

// TestSSHDefaults checks what a host block without an ssh block uses: the
// agent of SSH_AUTH_SOCK, then ~/.ssh/id_ed25519, id_ecdsa and id_rsa, and
// ~/.ssh/known_hosts; what is refused; and that defaults that pass get a
// warning naming the user, HOME and agent socket they were checked for.
func TestSSHDefaults(t *testing.T) {
	hostKey := writeKey(t, filepath.Join(t.TempDir(), "host"), 0o600, "")
	knownLine := knownhosts.Line([]string{"[10.0.0.12]:2222"}, hostKey) + "\n"
	ownKey := filepath.Join(t.TempDir(), "own-key")
	writeKey(t, ownKey, 0o600, "")
	ownKnownHosts := filepath.Join(t.TempDir(), "own-known_hosts")
	if err := os.WriteFile(ownKnownHosts, []byte(knownLine), 0o644); err != nil {
		t.Fatal(err)
	}
	type setup struct {
		agent      bool   // SSH_AUTH_SOCK names a socket
		agentPath  string // SSH_AUTH_SOCK names this instead
		keys       map[string]os.FileMode
		passphrase bool // the keys have a passphrase
		knownHosts string
		ssh        string // the attributes of an ssh block, none when ""
	}
	const defaults = "SSH Defaults Depend on the User"
	for _, tc := range []struct {
		name  string
		setup setup
		want  []string // summaries; each problem points at the docker attribute
		gist  string   // in every detail
		left  string   // the attributes the defaults warning says are left out
		used  []string // what the defaults warning says the defaults gave, below HOME ("" is the agent's socket)
	}{
		{name: "agent", setup: setup{agent: true, knownHosts: knownLine}, want: []string{defaults}, left: "identity_file and known_hosts", used: []string{"", ".ssh/known_hosts"}},
		{name: "default key", setup: setup{keys: map[string]os.FileMode{"id_ed25519": 0o600}, knownHosts: knownLine}, want: []string{defaults}, gist: "no SSH_AUTH_SOCK", left: "identity_file and known_hosts", used: []string{".ssh/id_ed25519", ".ssh/known_hosts"}},
		{name: "rsa key only", setup: setup{keys: map[string]os.FileMode{"id_rsa": 0o400}, knownHosts: knownLine}, want: []string{defaults}, left: "identity_file and known_hosts", used: []string{".ssh/id_rsa"}},
		{name: "nothing", setup: setup{knownHosts: knownLine}, want: []string{"No SSH Key"}, gist: "SSH_AUTH_SOCK is not set"},
		{name: "agent socket missing", setup: setup{agentPath: "/nonexistent/agent.sock", knownHosts: knownLine}, want: []string{"No SSH Key"}, gist: "not a socket"},
		{name: "passphrase without agent", setup: setup{keys: map[string]os.FileMode{"id_ecdsa": 0o600}, passphrase: true, knownHosts: knownLine}, want: []string{"No SSH Key"}, gist: "passphrase"},
		{name: "passphrase with agent", setup: setup{agent: true, keys: map[string]os.FileMode{"id_ed25519": 0o600}, passphrase: true, knownHosts: knownLine}, want: []string{defaults}, left: "identity_file and known_hosts", used: []string{""}},
		{name: "open default key", setup: setup{agent: true, keys: map[string]os.FileMode{"id_rsa": 0o644}, knownHosts: knownLine}, want: []string{"SSH Key Readable by Others"}, gist: "chmod 600"},
		{name: "no known_hosts", setup: setup{agent: true}, want: []string{"Known Hosts File Not Found"}, gist: "ssh-keyscan -p 2222 10.0.0.12"},
		{name: "host not known", setup: setup{agent: true, knownHosts: knownhosts.Line([]string{"10.0.0.12"}, hostKey) + "\n"}, want: []string{"Unknown SSH Host"}, gist: "ssh-keyscan -p 2222 10.0.0.12 >>"},
		{name: "hashed entry", setup: setup{agent: true, knownHosts: knownhosts.Line([]string{knownhosts.HashHostname("[10.0.0.12]:2222")}, hostKey) + "\n"}, want: []string{defaults}, left: "identity_file and known_hosts"},
		{name: "certificate authority", setup: setup{agent: true, knownHosts: "@cert-authority *.example.org " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hostKey))) + "\n"}, want: []string{defaults}, left: "identity_file and known_hosts"},
		{name: "known_hosts default", setup: setup{knownHosts: knownLine, ssh: fmt.Sprintf("identity_file = %q", ownKey)}, want: []string{defaults}, left: "known_hosts out", used: []string{".ssh/known_hosts"}},
		{name: "key default", setup: setup{keys: map[string]os.FileMode{"id_ecdsa": 0o600}, ssh: fmt.Sprintf("known_hosts = %q", ownKnownHosts)}, want: []string{defaults}, left: "identity_file out", used: []string{".ssh/id_ecdsa"}},
		{name: "no defaults", setup: setup{ssh: fmt.Sprintf("identity_file = %q\nknown_hosts = %q", ownKey, ownKnownHosts)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PACSD_TEST_PASSWORD", "from-the-environment")
			home := t.TempDir()
			t.Setenv("HOME", home)
			t.Setenv("SSH_AUTH_SOCK", tc.setup.agentPath)
			agent := ""
			if tc.setup.agent {
				agent = fakeAgent(t)
				t.Setenv("SSH_AUTH_SOCK", agent)
			}
			pass := ""
			if tc.setup.passphrase {
				pass = "secret passphrase"
			}
			for name, mode := range tc.setup.keys {
				writeKey(t, filepath.Join(home, ".ssh", name), mode, pass)
			}
			if tc.setup.knownHosts != "" {
				if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(home, ".ssh", "known_hosts"), []byte(tc.setup.knownHosts), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			src := sshHostFile
			if tc.setup.ssh != "" {
				src = strings.TrimSuffix(src, "}\n") + "  ssh {\n" + tc.setup.ssh + "\n  }\n}\n"
			}
			f, diags := Parse([]byte(src), filepath.Join(t.TempDir(), "pacs.hcl"))
			var got []string
			for _, d := range diags {
				got = append(got, d.Summary)
				if d.Subject == nil || d.Subject.Start.Line != 14 {
					t.Errorf("%s: points at %v, want the docker attribute (line 14)", d.Summary, d.Subject)
				}
				if !strings.Contains(d.Detail, tc.gist) {
					t.Errorf("%s: detail %q does not say %q", d.Summary, d.Detail, tc.gist)
				}
				checkDiagnosticText(t, d, true)
				if d.Summary != defaults {
					continue
				}
				if d.Severity != hcl.DiagWarning {
					t.Errorf("%s is an error, want a warning", d.Summary)
				}
				says := []string{"leaves " + tc.left, "HOME=" + home + " and", "set identity_file (a key without a passphrase, mode 0600) and known_hosts"}
				if u, err := user.Current(); err == nil {
					says = append(says, fmt.Sprintf("for the user %q (uid %s)", u.Username, u.Uid))
				}
				if agent != "" {
					says = append(says, "SSH_AUTH_SOCK="+agent, "the keys of the ssh agent at "+agent)
				} else {
					says = append(says, "no SSH_AUTH_SOCK")
				}
				for _, u := range tc.used {
					if u != "" {
						says = append(says, filepath.Join(home, u))
					}
				}
				for _, s := range says {
					if !strings.Contains(d.Detail, s) {
						t.Errorf("%s: detail %q does not say %q", d.Summary, d.Detail, s)
					}
				}
				if strings.Contains(d.Detail, ownKey) || strings.Contains(d.Detail, ownKnownHosts) {
					t.Errorf("%s: detail %q names a file of the ssh block as a default", d.Summary, d.Detail)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("diagnostics differ (-want +got):\n%s\n%s", diff, diagsText(diags))
			}
			if diags.HasErrors() {
				return
			}
			want := &SSH{KnownHosts: filepath.Join(home, ".ssh", "known_hosts")}
			if strings.Contains(tc.setup.ssh, "identity_file") {
				want.IdentityFile = ownKey
			}
			if strings.Contains(tc.setup.ssh, "known_hosts") {
				want.KnownHosts = ownKnownHosts
			}
			if diff := cmp.Diff(want, f.Hosts[0].SSH); diff != "" {
				t.Errorf("Host.SSH differs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadKnownHosts(t *testing.T) {
	dir := t.TempDir()
	hostKey := writeKey(t, filepath.Join(dir, "host"), 0o600, "")
	e, _ := ParseSSHEndpoint("ssh://pacsd@db-b.example.org")
	file := filepath.Join(dir, "known_hosts")
	content := "# comment\n\n" + knownhosts.Line([]string{"db-b.example.org", "10.0.0.14"}, hostKey) + "\n"
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := LoadKnownHosts(file, &e)
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Keys) != 1 || ssh.FingerprintSHA256(k.Keys[0].Key) != ssh.FingerprintSHA256(hostKey) || k.Keys[0].Line != 3 {
		t.Errorf("Keys = %+v, want the host key on line 3", k.Keys)
	}
	if err := k.Callback(e.Addr(), &net.TCPAddr{IP: net.IPv4(10, 0, 0, 14), Port: 22}, hostKey); err != nil {
		t.Errorf("the known key is refused: %v", err)
	}
	if _, err := LoadKnownHosts(file, nil); err != nil {
		t.Errorf("without an endpoint: %v", err)
	}
	if err := os.Chmod(file, 0o664); err != nil {
		t.Fatal(err)
	}
	_, err = LoadKnownHosts(file, &e)
	if se, ok := err.(*SSHError); !ok || se.Summary != "Known Hosts File Writable by Others" || !strings.Contains(se.Detail, "chmod 644") {
		t.Errorf("a group-writable file: got %v, want Known Hosts File Writable by Others", err)
	}
}

// TestSSHKeyForms reads the key forms ssh-keygen writes (OpenSSH, PEM RSA,
// PKCS #8) and refuses a public key given as identity_file.
func TestSSHKeyForms(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "key")
	pub := writeKey(t, file, 0o600, "")
	s, err := ReadSSHKey(file)
	if err != nil {
		t.Fatal(err)
	}
	if ssh.FingerprintSHA256(s.PublicKey()) != ssh.FingerprintSHA256(pub) {
		t.Error("ReadSSHKey returned another key")
	}
	pubFile := filepath.Join(dir, "key.pub")
	if err := os.WriteFile(pubFile, ssh.MarshalAuthorizedKey(pub), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSSHKey(pubFile); err == nil || !strings.Contains(err.Error(), "not the .pub file") {
		t.Errorf("a public key: got %v, want Invalid SSH Key", err)
	}
	keys, err := LoadSSHKeys(file)
	if err != nil || len(keys.Signers) != 1 || keys.Agent != "" || keys.Files[0] != file {
		t.Errorf("LoadSSHKeys(%q) = %+v, %v; want the file's key alone", file, keys, err)
	}
}

// TestSSHPasswordNeverShown checks that a password written into an ssh://
// endpoint does not show in the diagnostic's detail.
func TestSSHPasswordNeverShown(t *testing.T) {
	t.Setenv("PACSD_TEST_PASSWORD", "from-the-environment")
	src := strings.Replace(sshHostFile, "ssh://pacsd@10.0.0.12:2222", "ssh://pacsd:Hunter2-pw@10.0.0.12:2222", 1)
	_, diags := Parse([]byte(src), filepath.Join(t.TempDir(), "pacs.hcl"))
	if !diags.HasErrors() {
		t.Fatal("an endpoint with a password was accepted")
	}
	for _, d := range diags {
		if strings.Contains(d.Detail, "Hunter2") || strings.Contains(d.Summary, "Hunter2") {
			t.Errorf("the password shows in %q: %s", d.Summary, d.Detail)
		}
	}
	if d := diags[0]; d.Summary != "Invalid SSH Endpoint" || d.Severity != hcl.DiagError {
		t.Errorf("got %s, want Invalid SSH Endpoint", fmt.Sprint(d))
	}
}
