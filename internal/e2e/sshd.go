package e2e

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

const (
	// sshdCacheDir holds OpenSSH's server unpacked from Debian's package
	// (apt-get download, dpkg -x: nothing is installed and no service
	// starts), kept between runs.
	sshdCacheDir = "/var/cache/pacsd-e2e/openssh-server"
	// sshdDirParent holds each SSHD's files (keys, configuration, log):
	// outside /tmp, since sshd's StrictModes refuses an authorized_keys file
	// under a directory that others may write to.
	sshdDirParent = "/var/lib"
	// sshdReady bounds the wait for a started sshd to answer.
	sshdReady = 20 * time.Second
)

// sshdPorts hands out the ports of the SSHDs of this test binary, so that
// two of them on one host do not collide.
var sshdPorts atomic.Int32

func init() { sshdPorts.Store(2221) }

// SSHD is an OpenSSH server (Debian's sshd, unpacked from its package without
// installing it) running in a test host's network namespace, on the host's
// Address: the way to reach the host's Docker engine over ssh://, as pacsd
// reaches a real host's. It accepts one generated key for root (IdentityFile)
// and forwards to unix sockets (AllowStreamLocalForwarding yes), with
// StrictModes on and passwords off.
//
// sshd needs a privilege separation user and directory (sshd, /run/sshd) that
// this machine need not have: it runs in a mount namespace of its own, where
// /etc/passwd has the user (a copy) and /run is a fresh tmpfs with /run/sshd
// and, bound from the machine's /run, the directory of the host's engine
// socket. Nothing of it shows in the machine's mounts, users or /run.
//
// Everything made for it (processes, files) is removed when the test ends.
// Its methods fail the test that started it: call them from that test (or
// its subtests that run in turn), not from other goroutines.
type SSHD struct {
	// Port is where sshd listens, on the host's Address.
	Port int
	// Socket is the host's engine socket (its Host without unix://).
	Socket string
	// Endpoint is ssh://root@<Address>:<Port><Socket>: the host's engine
	// over ssh.
	Endpoint string
	// IdentityFile is a private key file (mode 0600) that sshd accepts for root.
	IdentityFile string
	// KnownHosts is a known_hosts file holding sshd's host key for
	// [<Address>]:<Port>.
	KnownHosts string
	// HostKey is sshd's host key.
	HostKey ssh.PublicKey
	// Dir holds its files: keys, configuration, log.
	Dir string

	t       testing.TB
	host    *TestHost
	bin     string // sshd
	libs    string // LD_LIBRARY_PATH for it, "" when none is needed
	config  string
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

// StartSSHD starts an sshd in h's network namespace and returns it, with a
// client key it accepts and a known_hosts file that holds its host key. The
// sshd binary is /usr/sbin/sshd when it is installed, $PACSD_E2E_SSHD when
// set, else Debian's openssh-server package unpacked into a cache directory
// (downloaded with apt-get once).
func StartSSHD(t testing.TB, h *TestHost) *SSHD {
	t.Helper()
	bin, libs, err := sshdBinary()
	if err != nil {
		t.Fatalf("sshd for test host %s: %v", h.Name, err)
	}
	dir, err := os.MkdirTemp(sshdDirParent, "pacsd-e2e-sshd-")
	if err != nil {
		t.Fatalf("while making the directory of sshd: %v", err)
	}
	socket := strings.TrimPrefix(h.Host, "unix://")
	s := &SSHD{
		Port: int(sshdPorts.Add(1)), Socket: socket, Dir: dir,
		IdentityFile: filepath.Join(dir, "client_key"), KnownHosts: filepath.Join(dir, "known_hosts"),
		t: t, host: h, bin: bin, libs: libs,
		config: filepath.Join(dir, "sshd_config"), logPath: filepath.Join(dir, "sshd.log"),
	}
	s.Endpoint = fmt.Sprintf("ssh://root@%s%s", net.JoinHostPort(h.Address, strconv.Itoa(s.Port)), socket)
	t.Cleanup(s.cleanup)
	if err := s.prepare(); err != nil {
		t.Fatalf("while preparing sshd for test host %s: %v", h.Name, err)
	}
	if err := s.start(); err != nil {
		t.Fatalf("test host %s: %v", h.Name, err)
	}
	return s
}

// prepare writes the host key, the client key, authorized_keys,
// known_hosts, the passwd copy and the configuration.
func (s *SSHD) prepare() error {
	hostFile := filepath.Join(s.Dir, "ssh_host_ed25519_key")
	hostKey, err := writeSSHKey(hostFile)
	if err != nil {
		return err
	}
	s.HostKey = hostKey
	clientKey, err := writeSSHKey(s.IdentityFile)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientKey), 0o600); err != nil {
		return err
	}
	if err := WriteKnownHosts(s.KnownHosts, s.Addr(), hostKey); err != nil {
		return err
	}
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return err
	}
	if !bytes.Contains(passwd, []byte("\nsshd:")) && !bytes.HasPrefix(passwd, []byte("sshd:")) {
		passwd = append(bytes.TrimRight(passwd, "\n"), []byte("\nsshd:x:65534:65534:sshd privilege separation:/run/sshd:/usr/sbin/nologin\n")...)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "passwd"), passwd, 0o644); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(s.Dir, "machine-run"), 0o700); err != nil {
		return err
	}
	config := fmt.Sprintf(`# sshd of a pacsd end-to-end test host
ListenAddress %s
HostKey %s
PidFile none
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes yes
AllowStreamLocalForwarding yes
AllowTcpForwarding local
AllowAgentForwarding no
X11Forwarding no
PermitTTY no
PrintMotd no
PrintLastLog no
UseDNS no
MaxStartups 64
LogLevel VERBOSE
`, s.Addr(), hostFile, filepath.Join(s.Dir, "authorized_keys"))
	return os.WriteFile(s.config, []byte(config), 0o600)
}

// Addr returns <Address>:<Port>.
func (s *SSHD) Addr() string { return net.JoinHostPort(s.host.Address, strconv.Itoa(s.Port)) }

// sshdScript runs sshd in a mount namespace of its own (see SSHD): $1 is the
// SSHD's directory, $2 the sshd binary, $3 the directory of the engine's
// socket; the rest are sshd's arguments.
const sshdScript = `set -e
dir=$1 sshd=$2 sockdir=$3
shift 3
mount --bind "$dir/passwd" /etc/passwd
mount --rbind /run "$dir/machine-run"
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -m 0755 /run/sshd
case "$sockdir" in
/run/*)
	mkdir -p "$sockdir"
	mount --rbind "$dir/machine-run/${sockdir#/run/}" "$sockdir"
	;;
esac
exec "$sshd" "$@"
`

// start starts sshd and waits until it answers with its banner.
func (s *SSHD) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("sshd is running already")
	}
	sockdir, err := filepath.EvalSymlinks(filepath.Dir(s.Socket))
	if err != nil {
		return fmt.Errorf("while resolving the directory of the engine's socket %s: %w", s.Socket, err)
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command("nsenter", "--net="+s.host.Namespace, "--",
		"unshare", "--mount", "--propagation", "private", "--",
		"sh", "-c", sshdScript, "sshd-wrapper", s.Dir, s.bin, sockdir,
		"-D", "-e", "-f", s.config)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	if s.libs != "" {
		cmd.Env = append(cmd.Env, "LD_LIBRARY_PATH="+s.libs)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("while starting sshd: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	deadline := time.Now().Add(sshdReady)
	for {
		err := s.banner(time.Second)
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("sshd in the namespace of test host %s ended at its start (%v); its log ends:\n%s", s.host.Name, cmd.ProcessState, logTail(s.logPath, 20))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sshd in the namespace of test host %s does not answer on %s within %s (%v); its log ends:\n%s", s.host.Name, s.Addr(), sshdReady, err, logTail(s.logPath, 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// banner connects to sshd and reads its version line within timeout.
func (s *SSHD) banner(timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", s.Addr(), timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "SSH-2.0-") {
		return fmt.Errorf("unexpected banner %q", line)
	}
	return nil
}

// Answers returns nil when sshd answers a new connection with its banner
// within timeout.
func (s *SSHD) Answers(timeout time.Duration) error { return s.banner(timeout) }

// Pid returns the pid of the listening sshd, 0 when it is not running.
func (s *SSHD) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Processes returns the pids of the listening sshd and of every process it
// started (one or two per connection), the listening one first.
func (s *SSHD) Processes() []int {
	pid := s.Pid()
	if pid == 0 {
		return nil
	}
	return append([]int{pid}, descendants(pid)...)
}

// descendants returns the live processes below pid.
func descendants(pid int) []int {
	children := map[int][]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		p, _ := strconv.Atoi(strings.Split(path, "/")[2])
		pp, _ := strconv.Atoi(f[1])
		children[pp] = append(children[pp], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// Connections returns how many TCP connections to sshd are established in
// the host's namespace.
func (s *SSHD) Connections() int {
	pid := s.Pid()
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		s.t.Fatalf("while reading the TCP connections of sshd: %v", err)
	}
	port := fmt.Sprintf(":%04X", s.Port)
	n := 0
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && strings.HasSuffix(f[1], port) && f[3] == "01" { // local address, state ESTABLISHED
			n++
		}
	}
	return n
}

// Stop freezes sshd as a stopped or hung server: SIGSTOP to the listening
// sshd and to every connection's process, confirmed (every thread stopped).
// New connections then get no banner and open ones no answer.
func (s *SSHD) Stop() {
	s.t.Helper()
	pid := s.Pid()
	if pid == 0 {
		s.t.Fatalf("sshd of test host %s is not running", s.host.Name)
	}
	if err := stopProcess(pid); err != nil { // first, so that it starts no more
		s.t.Fatalf("sshd of test host %s: %v", s.host.Name, err)
	}
	for _, p := range descendants(pid) {
		if err := stopProcess(p); err != nil {
			s.t.Fatalf("sshd of test host %s: %v", s.host.Name, err)
		}
	}
}

// Continue undoes Stop.
func (s *SSHD) Continue() {
	for _, p := range s.Processes() {
		_ = syscall.Kill(p, syscall.SIGCONT)
	}
}

// Kill ends sshd and every connection's process with SIGKILL, as a crash or
// an sshd restart that takes the sessions along, and returns once they are
// gone: open connections are cut.
func (s *SSHD) Kill() {
	s.t.Helper()
	if err := s.kill(); err != nil {
		s.t.Fatalf("sshd of test host %s: %v", s.host.Name, err)
	}
}

func (s *SSHD) kill() error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return errors.New("sshd is not running")
	}
	pid := cmd.Process.Pid
	// Stopped first, so that it starts no more connection processes, and
	// killed after they are listed (they would go to init without it).
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	procs := descendants(pid)
	_ = syscall.Kill(pid, syscall.SIGKILL)
	var errs []error
	for _, p := range procs {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	for _, p := range procs {
		if proc, err := processOf(p); err == nil {
			errs = append(errs, proc.waitGone(confirmTimeout))
		}
	}
	select {
	case <-exited:
	case <-time.After(confirmTimeout):
		errs = append(errs, fmt.Errorf("sshd (pid %d) did not end within %s of SIGKILL", pid, confirmTimeout))
	}
	s.mu.Lock()
	s.cmd = nil
	s.mu.Unlock()
	return errors.Join(errs...)
}

// Start starts sshd again after Kill, with the same keys, on the same port.
func (s *SSHD) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("test host %s: %v", s.host.Name, err)
	}
}

// KnownHostsWith writes a known_hosts file that names key as sshd's host key
// (another key than its own: a host whose key changed, or an impostor) and
// returns its path.
func (s *SSHD) KnownHostsWith(key ssh.PublicKey) string {
	s.t.Helper()
	file := filepath.Join(s.Dir, fmt.Sprintf("known_hosts-%d", time.Now().UnixNano()))
	if err := WriteKnownHosts(file, s.Addr(), key); err != nil {
		s.t.Fatal(err)
	}
	return file
}

// cleanup ends sshd and removes its directory.
func (s *SSHD) cleanup() {
	if s.t.Failed() {
		if tail := logTail(s.logPath, 30); tail != "" {
			s.t.Logf("cleanup: sshd of test host %s: its log ends:\n%s", s.host.Name, tail)
		}
	}
	s.Continue()
	if s.Pid() != 0 {
		if err := s.kill(); err != nil {
			s.t.Errorf("cleanup: sshd of test host %s: %v", s.host.Name, err)
		}
	}
	if err := os.RemoveAll(s.Dir); err != nil {
		s.t.Errorf("cleanup: while removing %s: %v", s.Dir, err)
	}
}

// NewSSHKey writes a new ed25519 private key (mode 0600) into a directory
// of the test and returns the file and the public key: a key no sshd accepts.
func NewSSHKey(t testing.TB) (string, ssh.PublicKey) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "id_ed25519")
	pub, err := writeSSHKey(file)
	if err != nil {
		t.Fatal(err)
	}
	return file, pub
}

// writeSSHKey writes a new ed25519 private key in OpenSSH's format with mode
// 0600 and returns its public key.
func writeSSHKey(file string) (ssh.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "pacsd e2e")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	return ssh.NewPublicKey(pub)
}

// WriteKnownHosts writes a known_hosts file (mode 0644) naming key as the
// host key of addr (host:port).
func WriteKnownHosts(file, addr string, key ssh.PublicKey) error {
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, key) + "\n"
	return os.WriteFile(file, []byte(line), 0o644)
}

// StartSSHAgent starts an ssh-agent of the test's own (ssh-agent -D on a
// socket in a directory of the test), loads the key files into it with
// ssh-add, and returns its socket, a value for SSH_AUTH_SOCK. The agent ends
// when the test does.
func StartSSHAgent(t testing.TB, keys ...string) string {
	t.Helper()
	for _, bin := range []string{"ssh-agent", "ssh-add"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("the test needs %s (Debian's openssh-client): %v", bin, err)
		}
	}
	dir, err := os.MkdirTemp("", "pacsd-e2e-agent-")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "agent.sock")
	var out bytes.Buffer
	cmd := exec.Command("ssh-agent", "-D", "-a", sock)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("while starting ssh-agent: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(confirmTimeout):
			t.Errorf("cleanup: ssh-agent (pid %d) did not end within %s of SIGKILL", cmd.Process.Pid, confirmTimeout)
		}
		_ = os.RemoveAll(dir)
	})
	if err := waitUntil(10*time.Second, func() error {
		st, err := os.Stat(sock)
		if err == nil && st.Mode().Type() != os.ModeSocket {
			return fmt.Errorf("%s is not a socket", sock)
		}
		return err
	}); err != nil {
		t.Fatalf("ssh-agent made no socket: %v; it said: %s", err, out.String())
	}
	for _, k := range keys {
		add := exec.Command("ssh-add", k)
		add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		add.Stdin = nil
		if b, err := add.CombinedOutput(); err != nil {
			t.Fatalf("ssh-add %s: %v: %s", k, err, b)
		}
	}
	return sock
}

// logTail returns the last n lines of the file at path, "" when it cannot
// be read.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// sshdLibs are the libraries sshd links that a Debian machine without
// openssh-server may lack, with the packages that hold them.
var sshdLibs = map[string]string{"libwrap.so.0": "libwrap0"}

var (
	sshdOnce          sync.Once
	sshdBin, sshdLib  string
	errSSHDUnprepared error
)

// sshdBinary returns the sshd to run and the LD_LIBRARY_PATH it needs.
func sshdBinary() (string, string, error) {
	sshdOnce.Do(func() { sshdBin, sshdLib, errSSHDUnprepared = findSSHD() })
	return sshdBin, sshdLib, errSSHDUnprepared
}

func findSSHD() (string, string, error) {
	if p := os.Getenv("PACSD_E2E_SSHD"); p != "" {
		return p, "", nil
	}
	if _, err := os.Stat("/usr/sbin/sshd"); err == nil {
		return "/usr/sbin/sshd", "", nil
	}
	if err := os.MkdirAll(sshdCacheDir, 0o755); err != nil {
		return "", "", err
	}
	lock, err := os.OpenFile(filepath.Join(sshdCacheDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil { // another test binary may be unpacking
		return "", "", fmt.Errorf("while locking %s: %w", lock.Name(), err)
	}
	root := filepath.Join(sshdCacheDir, "root")
	bin := filepath.Join(root, "usr", "sbin", "sshd")
	if _, err := os.Stat(bin); err == nil {
		if libs := libDirs(root); len(missingLibs(bin, libs)) == 0 {
			return bin, libs, nil
		}
	}
	// Unpack into a new directory and put it in place at once, so that an
	// interrupted run leaves no half-unpacked tree.
	work, err := os.MkdirTemp(sshdCacheDir, "unpack-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(work)
	newRoot := filepath.Join(work, "root")
	newBin := filepath.Join(newRoot, "usr", "sbin", "sshd")
	packages := []string{"openssh-server"}
	for round := 0; round < 2; round++ {
		if err := unpackDebs(work, newRoot, packages); err != nil {
			return "", "", err
		}
		missing := missingLibs(newBin, libDirs(newRoot))
		if len(missing) == 0 {
			_ = os.RemoveAll(root)
			if err := os.Rename(newRoot, root); err != nil {
				return "", "", err
			}
			return bin, libDirs(root), nil
		}
		packages = nil
		for _, lib := range missing {
			pkg, ok := sshdLibs[lib]
			if !ok {
				return "", "", fmt.Errorf("sshd (unpacked from Debian's openssh-server) needs %s, which this machine lacks and the test does not know the package of; install openssh-server, or set PACSD_E2E_SSHD to an sshd that runs here", lib)
			}
			packages = append(packages, pkg)
		}
	}
	return "", "", fmt.Errorf("sshd unpacked from Debian's packages still lacks libraries; install openssh-server, or set PACSD_E2E_SSHD to an sshd that runs here")
}

// libDirs returns the library directories of an unpacked tree, as an
// LD_LIBRARY_PATH value.
func libDirs(root string) string {
	var dirs []string
	for _, pattern := range []string{"usr/lib/*-linux-*", "lib/*-linux-*"} {
		m, _ := filepath.Glob(filepath.Join(root, pattern))
		dirs = append(dirs, m...)
	}
	return strings.Join(dirs, ":")
}

// unpackDebs downloads Debian packages with apt-get download (nothing is
// installed) into work and unpacks them into root with dpkg -x.
func unpackDebs(work, root string, packages []string) error {
	dl := exec.Command("apt-get", append([]string{"download"}, packages...)...)
	dl.Dir = work
	if out, err := dl.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get download %s (in %s): %v: %s; the end-to-end tests unpack sshd from Debian's package: make the package mirror reachable, install openssh-server, or set PACSD_E2E_SSHD", strings.Join(packages, " "), work, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(work, "*.deb"))
	if len(debs) == 0 {
		return fmt.Errorf("apt-get download %s left no .deb in %s", strings.Join(packages, " "), work)
	}
	for _, deb := range debs {
		if out, err := exec.Command("dpkg", "-x", deb, root).CombinedOutput(); err != nil {
			return fmt.Errorf("dpkg -x %s: %v: %s", deb, err, out)
		}
		if err := os.Remove(deb); err != nil {
			return err
		}
	}
	return nil
}

// missingLibs returns the libraries ldd finds missing for bin with libs on
// LD_LIBRARY_PATH.
func missingLibs(bin, libs string) []string {
	cmd := exec.Command("ldd", bin)
	cmd.Env = []string{"LD_LIBRARY_PATH=" + libs}
	out, _ := cmd.Output()
	var missing []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if lib, _, ok := strings.Cut(strings.TrimSpace(sc.Text()), " => not found"); ok {
			missing = append(missing, lib)
		}
	}
	return missing
}
