package spec

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// The rules of ssh:// Docker endpoints live here, in one place: the parser
// reports a broken rule as a diagnostic, and the Docker adapter (pkg/docker)
// calls the same functions before it connects, so that validate never accepts
// what run refuses.

// DefaultSSHSocket is the Docker engine's socket on a host reached over ssh://
// when the endpoint names no path, as for the docker CLI.
const DefaultSSHSocket = "/var/run/docker.sock"

// DefaultSSHPort is the port of an ssh:// endpoint that names none.
const DefaultSSHPort = 22

// DefaultSSHKeyNames are the private keys in ~/.ssh that pacsd offers, after
// the keys of the ssh agent, to a host whose ssh block names no identity_file
// (OpenSSH's order).
var DefaultSSHKeyNames = []string{"id_ed25519", "id_ecdsa", "id_rsa"}

// SSHEndpoint is an ssh:// Docker endpoint, parsed: pacsd logs in as User at
// Host:Port and reaches the engine's unix socket Socket through the ssh
// connection (OpenSSH's direct-streamlocal forwarding; no docker CLI is
// needed on the host).
type SSHEndpoint struct {
	User string
	// Host is a host name (lower case) or an IP address, without brackets.
	Host string
	Port int
	// Socket is the absolute, cleaned path of the engine's socket on the host.
	Socket string
}

// Addr returns host:port, the address pacsd dials and the name known_hosts
// files know the host by ("[host]:port" in the file unless the port is 22).
func (e SSHEndpoint) Addr() string { return net.JoinHostPort(e.Host, strconv.Itoa(e.Port)) }

// String returns the endpoint with every default written out.
func (e SSHEndpoint) String() string {
	return "ssh://" + url.User(e.User).String() + "@" + e.Addr() + e.Socket
}

// engine returns the normalised form of the endpoint (see dockerEngine): the
// user does not count, since two users on one host reach one engine.
func (e SSHEndpoint) engine() string {
	host := strings.TrimSuffix(e.Host, ".")
	if ip := net.ParseIP(host); ip != nil {
		host = ip.String()
	}
	return "ssh://" + net.JoinHostPort(host, strconv.Itoa(e.Port)) + e.Socket
}

// ParseSSHEndpoint parses ssh://user@host[:port][/path/to/docker.sock]. The
// user is required (pacsd may run as another user than the one who validates
// the file); the port defaults to 22 and the socket to DefaultSSHSocket. A
// password, a query or a fragment is refused: pacsd authenticates with keys
// only. The error says what is wrong, without the endpoint.
func ParseSSHEndpoint(endpoint string) (SSHEndpoint, error) {
	rest, ok := strings.CutPrefix(endpoint, "ssh://")
	if !ok {
		return SSHEndpoint{}, errors.New("it does not start with ssh://")
	}
	if strings.ContainsAny(rest, " \t\r\n\x00") {
		return SSHEndpoint{}, errors.New("it holds white space or a control character")
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return SSHEndpoint{}, fmt.Errorf("it is not a URL (%v)", err)
	}
	if u.Opaque != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return SSHEndpoint{}, errors.New("it holds a query (?...) or a fragment (#...), which pacsd does not read")
	}
	if u.User == nil || u.User.Username() == "" {
		return SSHEndpoint{}, errors.New("it names no user to log in as")
	}
	if _, set := u.User.Password(); set {
		return SSHEndpoint{}, errors.New("it holds a password: pacsd logs in with ssh keys only (the agent's or a key file), so remove \":PASSWORD\"")
	}
	user := u.User.Username()
	if strings.HasPrefix(user, "-") || strings.ContainsAny(user, "@/:") {
		return SSHEndpoint{}, fmt.Errorf("the user %q is not a user name", user)
	}
	e := SSHEndpoint{User: user, Host: strings.ToLower(u.Hostname()), Port: DefaultSSHPort, Socket: DefaultSSHSocket}
	if e.Host == "" {
		return SSHEndpoint{}, errors.New("it names no host")
	}
	if net.ParseIP(e.Host) == nil && (!hostnamePattern.MatchString(e.Host) || strings.HasPrefix(u.Host, "[")) {
		return SSHEndpoint{}, fmt.Errorf("%q is not a host name or an IP address", u.Hostname())
	}
	if p := u.Port(); p != "" || strings.HasSuffix(u.Host, ":") {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return SSHEndpoint{}, fmt.Errorf("the port %q is not a number from 1 to 65535", p)
		}
		e.Port = n
	}
	if u.Path != "" && u.Path != "/" {
		e.Socket = path.Clean(u.Path)
	}
	return e, nil
}

// redactedURL returns endpoint with the password of its user part, if any,
// replaced by "xxxxx", for messages.
func redactedURL(endpoint string) string {
	if u, err := url.Parse(endpoint); err == nil && u.User != nil {
		if _, set := u.User.Password(); set {
			return u.Redacted()
		}
	}
	return endpoint
}

// SSHError is a problem with what pacsd would use on an ssh:// endpoint: its
// key, its known_hosts file, or the host's entry in it. The parser reports it
// as a diagnostic with Summary and Detail; Error returns Detail.
type SSHError struct {
	// Summary is a Title-Case summary, such as "SSH Key Readable by Others".
	Summary string
	// Detail says, in full sentences, what is wrong and what to do.
	Detail string

	kind sshProblem
}

func (e *SSHError) Error() string { return e.Detail }

// sshProblem says what an SSHError is about, so that the parser can point at
// the right attribute and LoadSSHKeys can pass over missing default keys.
type sshProblem int

const (
	sshKeyProblem sshProblem = iota
	sshKeyMissing
	sshKeyPassphrase
	sshKnownHostsProblem
	sshHostUnknown
)

func sshErrorf(kind sshProblem, summary, format string, args ...any) *SSHError {
	return &SSHError{Summary: summary, Detail: fmt.Sprintf(format, args...), kind: kind}
}

// ReadSSHKey reads a private key file for ssh: an OpenSSH or PEM private key
// without a passphrase, in a regular file that only its owner may read (mode
// 0600 or 0400, as OpenSSH wants too). The error is an *SSHError.
func ReadSSHKey(file string) (ssh.Signer, error) {
	st, err := os.Stat(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, sshErrorf(sshKeyMissing, "SSH Key Not Found",
			"The ssh key file %s does not exist (relative paths are relative to the topology file). Make a key pair with \"ssh-keygen -t ed25519 -N '' -f %s\" and add the .pub file to the authorized_keys of the user on the host, or correct the path.", file, file)
	case err != nil:
		return nil, sshErrorf(sshKeyProblem, "Cannot Read SSH Key", "pacsd could not read the ssh key file %s: %s. Check the path and that pacsd may read the file.", file, unwrapPathError(err))
	case !st.Mode().IsRegular():
		return nil, sshErrorf(sshKeyProblem, "SSH Key Is Not a Regular File", "%s is not a regular file. Point to the private key file itself.", file)
	case st.Mode().Perm()&0o077 != 0:
		return nil, sshErrorf(sshKeyProblem, "SSH Key Readable by Others",
			"The ssh key file %s has mode %04o, so other users of this machine can read or change it (OpenSSH refuses such a key too). Run \"chmod 600 %s\" and try again.", file, st.Mode().Perm(), file)
	}
	b, err := readSmallFile(file)
	if err != nil {
		return nil, sshErrorf(sshKeyProblem, "Cannot Read SSH Key", "pacsd could not read the ssh key file %s: %s. Check that pacsd may read the file.", file, unwrapPathError(err))
	}
	signer, err := ssh.ParsePrivateKey(b)
	var missing *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &missing):
		return nil, sshErrorf(sshKeyPassphrase, "SSH Key Protected by a Passphrase",
			"The ssh key file %s is protected by a passphrase, which pacsd cannot ask for. Load the key into an ssh agent (ssh-add %s), leave identity_file out and run pacsd with SSH_AUTH_SOCK naming that agent; or give a key without a passphrase.", file, file)
	case err != nil:
		return nil, sshErrorf(sshKeyProblem, "Invalid SSH Key",
			"The file %s holds no private key pacsd can read (%s). Give the private key (not the .pub file) of a key pair made with ssh-keygen, such as \"ssh-keygen -t ed25519\".", file, strings.TrimPrefix(err.Error(), "ssh: "))
	}
	return signer, nil
}

// SSHKeys are the keys pacsd offers to an ssh server, in this order: the ssh
// agent's, then those of Files.
type SSHKeys struct {
	// Agent is the socket of the ssh agent (SSH_AUTH_SOCK), "" when its keys
	// are not offered. The agent is asked for its keys at each connection.
	Agent string
	// Files are the key files offered after the agent's keys, and Signers
	// their keys.
	Files   []string
	Signers []ssh.Signer
}

// LoadSSHKeys returns the keys pacsd offers on an ssh:// endpoint. With an
// identityFile, its key alone (read with ReadSSHKey). Without one ("") the
// keys of the agent of SSH_AUTH_SOCK when it names a socket, then those of
// DefaultSSHKeyNames in ~/.ssh that exist and have no passphrase; a default
// key file that exists but is readable by others or is no key is refused,
// and so is having no key at all. The error is an *SSHError.
func LoadSSHKeys(identityFile string) (SSHKeys, error) {
	if identityFile != "" {
		signer, err := ReadSSHKey(identityFile)
		if err != nil {
			return SSHKeys{}, err
		}
		return SSHKeys{Files: []string{identityFile}, Signers: []ssh.Signer{signer}}, nil
	}
	var keys SSHKeys
	var why []string
	switch sock := os.Getenv("SSH_AUTH_SOCK"); {
	case sock == "":
		why = append(why, "SSH_AUTH_SOCK is not set (no ssh agent)")
	default:
		if st, err := os.Stat(sock); err != nil || st.Mode().Type() != fs.ModeSocket {
			why = append(why, fmt.Sprintf("SSH_AUTH_SOCK names %s, which is not a socket (no ssh agent answers there)", sock))
		} else {
			keys.Agent = sock
		}
	}
	home, err := os.UserHomeDir()
	if err != nil {
		why = append(why, fmt.Sprintf("pacsd has no home directory to look for ~/.ssh/%s in (%v)", strings.Join(DefaultSSHKeyNames, ", "), err))
	} else {
		var protected []string
		for _, name := range DefaultSSHKeyNames {
			file := filepath.Join(home, ".ssh", name)
			signer, err := ReadSSHKey(file)
			var se *SSHError
			switch {
			case err == nil:
				keys.Files = append(keys.Files, file)
				keys.Signers = append(keys.Signers, signer)
			case errors.As(err, &se) && se.kind == sshKeyMissing:
			case errors.As(err, &se) && se.kind == sshKeyPassphrase:
				protected = append(protected, file)
			default:
				return SSHKeys{}, err
			}
		}
		if len(protected) > 0 {
			why = append(why, fmt.Sprintf("%s %s protected by a passphrase (pacsd uses such a key only through the agent)", strings.Join(protected, " and "), map[bool]string{true: "is", false: "are"}[len(protected) == 1]))
		} else {
			why = append(why, fmt.Sprintf("none of %s/.ssh/%s exists", home, strings.Join(DefaultSSHKeyNames, ", ")))
		}
	}
	if keys.Agent == "" && len(keys.Signers) == 0 {
		return SSHKeys{}, sshErrorf(sshKeyProblem, "No SSH Key",
			"pacsd has no ssh key to log in with: %s. Give identity_file in the host's ssh block (a key without a passphrase, mode 0600), or run pacsd with SSH_AUTH_SOCK naming an ssh agent that holds the key.", strings.Join(why, "; "))
	}
	return keys, nil
}

// sshDefaultsNote is the detail of the warning on a host whose ssh block
// leaves identity_file (keyDefault) or known_hosts (hostsDefault) out: the
// defaults were checked for the user this process runs as, with its HOME and
// its ssh agent, which need not be those pacsd runs with. keys are the keys
// the defaults gave, knownHosts the known_hosts file used.
func sshDefaultsNote(host string, keyDefault, hostsDefault bool, keys SSHKeys, knownHosts string) string {
	var left, used []string
	if keyDefault {
		left = append(left, "identity_file")
		if keys.Agent != "" {
			used = append(used, "the keys of the ssh agent at "+keys.Agent)
		}
		for _, f := range keys.Files {
			used = append(used, "the key file "+f)
		}
	}
	if hostsDefault {
		left = append(left, "known_hosts")
		used = append(used, "the known_hosts file "+knownHosts)
	}
	name := fmt.Sprintf("uid %d", os.Getuid())
	who := "with " + name
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = fmt.Sprintf("%q", u.Username)
		who = fmt.Sprintf("%q (uid %s)", u.Username, u.Uid)
	}
	home, agent := "HOME="+os.Getenv("HOME"), "SSH_AUTH_SOCK="+os.Getenv("SSH_AUTH_SOCK")
	if os.Getenv("HOME") == "" {
		home = "no HOME"
	}
	if os.Getenv("SSH_AUTH_SOCK") == "" {
		agent = "no SSH_AUTH_SOCK"
	}
	return fmt.Sprintf("Host %q leaves %s out of its ssh block, so pacsd uses the defaults of the user it runs as. They were checked for the user %s, with %s and %s, and gave %s. pacsd run, as a systemd service for example, may run as another user, with another HOME and no ssh agent, and would then find no key or no known_hosts file. If pacsd runs as another user than %s, set identity_file (a key without a passphrase, mode 0600) and known_hosts in the ssh block of host %q to files that user may read.",
		host, joinAnd(left), who, home, agent, joinAnd(used), name, host)
}

// joinAnd joins words as "a", "a and b" or "a, b and c".
func joinAnd(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// DefaultKnownHosts returns ~/.ssh/known_hosts of the user pacsd runs as, the
// known_hosts file of a host whose ssh block names none.
func DefaultKnownHosts() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", sshErrorf(sshKnownHostsProblem, "No Known Hosts File",
			"pacsd has no home directory, so no ~/.ssh/known_hosts to check the host's key against (%v). Give known_hosts in the host's ssh block.", err)
	}
	return filepath.Join(home, ".ssh", "known_hosts"), nil
}

// KnownHosts is what a known_hosts file says about one endpoint.
type KnownHosts struct {
	// File is the known_hosts file.
	File string
	// Callback checks a host key the endpoint presents (hashed host names,
	// @revoked and @cert-authority lines included).
	Callback ssh.HostKeyCallback
	// Keys are the keys the file holds for the endpoint's host and port.
	Keys []knownhosts.KnownKey
	// Authorities says that the file has @cert-authority lines, which may
	// vouch for the host though Keys is empty.
	Authorities bool
}

// LoadKnownHosts reads a known_hosts file (OpenSSH's format) and, when e is
// not nil, what it knows about e. It refuses a file that is missing, not a
// regular file, writable by others than its owner (they could make pacsd
// trust an impostor) or holds no entry that parses, and, for e, a file that
// holds no key for e's host and port (and no @cert-authority line): pacsd
// connects only to hosts whose key it knows. The error is an *SSHError.
func LoadKnownHosts(file string, e *SSHEndpoint) (*KnownHosts, error) {
	st, err := os.Stat(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		add := "ssh-keyscan -p PORT HOST"
		if e != nil {
			add = fmt.Sprintf("ssh-keyscan -p %d %s", e.Port, e.Host)
		}
		return nil, sshErrorf(sshKnownHostsProblem, "Known Hosts File Not Found",
			"The known_hosts file %s does not exist (relative paths are relative to the topology file). Create it with the host's key: run \"%s\", check that the fingerprint of the key it prints (pipe it to \"ssh-keygen -lf -\") is the one the host shows (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the host), then \"%s >> %s\".", file, add, add, file)
	case err != nil:
		return nil, sshErrorf(sshKnownHostsProblem, "Cannot Read Known Hosts File", "pacsd could not read the known_hosts file %s: %s. Check the path and that pacsd may read the file.", file, unwrapPathError(err))
	case !st.Mode().IsRegular():
		return nil, sshErrorf(sshKnownHostsProblem, "Known Hosts File Is Not a Regular File", "%s is not a regular file. Point to a known_hosts file.", file)
	case st.Mode().Perm()&0o022 != 0:
		return nil, sshErrorf(sshKnownHostsProblem, "Known Hosts File Writable by Others",
			"The known_hosts file %s has mode %04o, so other users of this machine could add a key and make pacsd trust an impostor. Run \"chmod 644 %s\" (or 600) and try again.", file, st.Mode().Perm(), file)
	}
	b, err := readSmallFile(file)
	if err != nil {
		return nil, sshErrorf(sshKnownHostsProblem, "Cannot Read Known Hosts File", "pacsd could not read the known_hosts file %s: %s. Check that pacsd may read the file.", file, unwrapPathError(err))
	}
	cb, err := knownhosts.New(file)
	if err != nil {
		return nil, sshErrorf(sshKnownHostsProblem, "Invalid Known Hosts File",
			"The known_hosts file %s cannot be read as one (%s). Give a file of lines such as ssh-keyscan prints (\"[HOST]:PORT ssh-ed25519 AAAA...\").", file, strings.TrimPrefix(err.Error(), "knownhosts: "))
	}
	k := &KnownHosts{File: file, Callback: cb, Authorities: hasAuthorities(b)}
	if e == nil {
		return k, nil
	}
	k.Keys = k.Lookup(*e)
	if len(k.Keys) == 0 && !k.Authorities {
		return nil, UnknownSSHHost(*e, file, nil)
	}
	return k, nil
}

// UnknownSSHHost is the error of a host whose key the known_hosts file does
// not hold; presented is the key the host showed, nil when not connected.
func UnknownSSHHost(e SSHEndpoint, file string, presented ssh.PublicKey) *SSHError {
	scan := fmt.Sprintf("ssh-keyscan -p %d %s", e.Port, e.Host)
	shown := ""
	if presented != nil {
		shown = fmt.Sprintf(" The host presented the %s key %s.", presented.Type(), ssh.FingerprintSHA256(presented))
	}
	return sshErrorf(sshHostUnknown, "Unknown SSH Host",
		"The known_hosts file %s holds no key for %s, so pacsd cannot tell the host from an impostor and does not connect.%s Check the key's fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) against the one \"%s | ssh-keygen -lf -\" shows here, then add it: \"%s >> %s\".", file, knownhosts.Normalize(e.Addr()), shown, scan, scan, file)
}

// hasAuthorities reports whether a known_hosts file holds @cert-authority lines.
func hasAuthorities(b []byte) bool {
	for line := range bytes.Lines(b) {
		if bytes.HasPrefix(bytes.TrimLeft(line, " \t"), []byte("@cert-authority")) {
			return true
		}
	}
	return false
}

// probeKey is a key no host has: checked against a known_hosts file, it
// makes the file name the keys it holds for a host.
var probeKey = sync.OnceValue(func() ssh.PublicKey {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		panic(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return k
})

// Lookup returns the keys the file holds for e's host and port.
func (k *KnownHosts) Lookup(e SSHEndpoint) []knownhosts.KnownKey {
	// The remote address counts only when the host name is empty.
	err := k.Callback(e.Addr(), &net.TCPAddr{IP: net.IPv4zero, Port: e.Port}, probeKey())
	var ke *knownhosts.KeyError
	if errors.As(err, &ke) {
		return ke.Want
	}
	return nil
}
