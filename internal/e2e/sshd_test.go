package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshLogin logs in to s as root with the keys of signers, checking the host
// key against knownHosts.
func sshLogin(s *SSHD, knownHosts string, signers ...ssh.Signer) (*ssh.Client, error) {
	cb, err := knownhosts.New(knownHosts)
	if err != nil {
		return nil, err
	}
	return ssh.Dial("tcp", s.Addr(), &ssh.ClientConfig{
		User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signers...)},
		HostKeyCallback: cb, Timeout: 10 * time.Second,
	})
}

// enginePing asks the engine behind c's forwarding to socket for /_ping.
func enginePing(c *ssh.Client, socket string) error {
	conn, err := c.Dial("unix", socket)
	if err != nil {
		return fmt.Errorf("while forwarding to %s: %w", socket, err)
	}
	defer conn.Close()
	if _, err := fmt.Fprint(conn, "GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n"); err != nil {
		return err
	}
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.Contains(status, " 200 ") {
		return fmt.Errorf("the engine answered %q", status)
	}
	return nil
}

func keyFileSigner(t *testing.T, file string) ssh.Signer {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sshdMounts lists the machine's mounts on /etc/passwd, /run and /run/sshd
// and under dir, those an SSHD's sshd makes in its own mount namespace.
func sshdMounts(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == "/etc/passwd" || f[4] == "/run" || f[4] == "/run/sshd" || strings.HasPrefix(f[4], dir)) {
			out = append(out, f[4]+" "+f[2])
		}
	}
	return strings.Join(out, "\n")
}

// listening reports whether /proc/<pid>/net/tcp (the network namespace of
// pid; "self" for the test's) has a socket listening on port.
func listening(t *testing.T, pid string, port int) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && strings.HasSuffix(f[1], fmt.Sprintf(":%04X", port)) && f[3] == "0A" {
			return true
		}
	}
	return false
}

// TestE2ESSHD checks the test bed's sshd: it runs in the test host's network
// namespace only, leaves the machine's users, mounts and /run alone, forwards
// to the host's engine socket for the key it was made with (directly or from
// an ssh-agent) and for no other, keeps StrictModes, and stops, continues,
// dies and starts again as the tests need; its cleanup leaves nothing.
func TestE2ESSHD(t *testing.T) {
	h := RequireTestHost(t)
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	_, runSSHD := os.Stat("/run/sshd")
	mounts := sshdMounts(t, sshdDirParent+"/pacsd-e2e-sshd-")
	s := StartSSHD(t, h)
	pid := fmt.Sprint(s.Pid())

	// Where it runs.
	ns, err := os.Stat(h.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat("/proc/" + pid + "/ns/net"); err != nil || !os.SameFile(st, ns) {
		t.Errorf("sshd (pid %s) is not in the network namespace of test host %s (%v)", pid, h.Name, err)
	}
	if !listening(t, pid, s.Port) {
		t.Errorf("sshd does not listen on port %d in the host's namespace", s.Port)
	}
	if listening(t, "self", s.Port) {
		t.Errorf("something listens on port %d in the machine's namespace", s.Port)
	}
	if now, _ := os.ReadFile("/etc/passwd"); string(now) != string(passwd) {
		t.Error("the machine's /etc/passwd changed")
	}
	if _, err := os.Stat("/run/sshd"); (err == nil) != (runSSHD == nil) {
		t.Errorf("the machine's /run/sshd changed (it existed: %v, it exists: %v)", runSSHD == nil, err == nil)
	}
	if now := sshdMounts(t, s.Dir); now != mounts {
		t.Errorf("the machine's mounts of /etc/passwd, /run and sshd's directory changed from\n%s\nto\n%s", mounts, now)
	}

	// Logins and forwarding.
	key := keyFileSigner(t, s.IdentityFile)
	c, err := sshLogin(s, s.KnownHosts, key)
	if err != nil {
		t.Fatalf("login with the SSHD's key: %v", err)
	}
	if err := enginePing(c, s.Socket); err != nil {
		t.Fatalf("the host's engine through sshd: %v", err)
	}
	other, _ := NewSSHKey(t)
	if _, err := sshLogin(s, s.KnownHosts, keyFileSigner(t, other)); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("login with a key not in authorized_keys: got %v, want refused", err)
	}
	otherHost, _ := NewSSHKey(t)
	var ke *knownhosts.KeyError
	if _, err := sshLogin(s, s.KnownHostsWith(keyFileSigner(t, otherHost).PublicKey()), key); !errors.As(err, &ke) || len(ke.Want) != 1 {
		t.Errorf("login checking against another host key: got %v, want a key mismatch", err)
	}
	// Debian's sshd lets a file be writable by a group that holds its owner
	// alone (root's), so StrictModes shows with a file others may write.
	if err := os.Chmod(s.Dir+"/authorized_keys", 0o602); err != nil {
		t.Fatal(err)
	}
	if _, err := sshLogin(s, s.KnownHosts, key); err == nil {
		t.Error("sshd accepted an authorized_keys file that others may write: StrictModes is off")
	}
	if err := os.Chmod(s.Dir+"/authorized_keys", 0o600); err != nil {
		t.Fatal(err)
	}
	sock := StartSSHAgent(t, s.IdentityFile)
	ac, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	agentKeys, err := agent.NewClient(ac).Signers()
	if err != nil || len(agentKeys) != 1 {
		t.Fatalf("the agent holds %d keys (%v), want 1", len(agentKeys), err)
	}
	ca, err := sshLogin(s, s.KnownHosts, agentKeys...)
	if err != nil {
		t.Fatalf("login with the agent's key: %v", err)
	}
	if err := enginePing(ca, s.Socket); err != nil {
		t.Errorf("the engine through a login with the agent's key: %v", err)
	}
	_ = ca.Close()
	_ = ac.Close()

	// Stopped: every process stopped, no banner, and back after Continue.
	s.Stop()
	for _, p := range s.Processes() {
		if err := allStopped(p); err != nil {
			t.Errorf("after Stop: pid %d: %v", p, err)
		}
	}
	if err := s.Answers(time.Second); err == nil {
		t.Error("a stopped sshd answered")
	}
	s.Continue()
	if err := s.Answers(5 * time.Second); err != nil {
		t.Errorf("sshd after Continue: %v", err)
	}
	if err := enginePing(c, s.Socket); err != nil {
		t.Errorf("the open connection after Continue: %v", err)
	}

	// Killed: the open connection ends, nothing answers, and Start brings it
	// back with the same host key.
	procs := s.Processes()
	if len(procs) < 2 {
		t.Errorf("sshd has %d processes with a connection open, want its own and the connection's", len(procs))
	}
	s.Kill()
	for _, p := range procs {
		if proc, err := processOf(p); err == nil && proc.gone() != nil {
			t.Errorf("pid %d of sshd runs after Kill", p)
		}
	}
	ended := make(chan error, 1)
	go func() { ended <- c.Wait() }()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Error("the open connection did not end when sshd was killed")
	}
	if err := s.Answers(time.Second); err == nil {
		t.Error("a killed sshd answered")
	}
	s.Start()
	c2, err := sshLogin(s, s.KnownHosts, key)
	if err != nil {
		t.Fatalf("login after Start: %v", err)
	}
	if err := enginePing(c2, s.Socket); err != nil {
		t.Errorf("the engine after Start: %v", err)
	}
	_ = c2.Close()

	// Cleanup: a second sshd, made in a subtest, is gone with its files
	// when the subtest ends.
	var second *SSHD
	var secondProcs []int
	t.Run("cleanup", func(t *testing.T) {
		second = StartSSHD(t, h)
		if second.Port == s.Port {
			t.Errorf("two SSHDs on port %d", s.Port)
		}
		c, err := sshLogin(second, second.KnownHosts, keyFileSigner(t, second.IdentityFile))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		secondProcs = second.Processes()
	})
	for _, p := range secondProcs {
		if proc, err := processOf(p); err == nil && proc.gone() != nil {
			t.Errorf("pid %d of the subtest's sshd runs after its cleanup", p)
		}
	}
	if second != nil {
		if _, err := os.Stat(second.Dir); err == nil {
			t.Errorf("%s is left after the subtest's cleanup", second.Dir)
		}
	}
}
