package spec

import (
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultDockerEndpoint is the endpoint of the local Docker engine, the one a
// node without host runs on, when DOCKER_HOST is not set.
const DefaultDockerEndpoint = "unix:///var/run/docker.sock"

// dockerEngine returns the normalised form of a Docker endpoint, equal for two
// endpoints that the Docker client dials at the same place, or "" when the
// endpoint is not a unix:// or tcp:// endpoint the client understands. tls says
// whether the client speaks TLS to a tcp:// endpoint, which decides the port
// when none is written.
//
// The parts are read as the Docker client reads them. A unix:// path is
// cleaned and the symbolic links on it resolved (/var/run is usually a link to
// /run); a tcp:// host is lower-cased without a trailing dot, an IP address
// written in its canonical form, the port filled in (443 with TLS, 80
// without: the client speaks HTTPS or HTTP to the address as it is written),
// and the path cleaned. Two names that resolve to one address, or a tcp://
// and a unix:// endpoint of one engine, are not recognised as one engine.
func dockerEngine(endpoint string, tls bool) string {
	scheme, addr, ok := strings.Cut(endpoint, "://")
	if !ok || addr == "" {
		return ""
	}
	switch scheme {
	case "unix":
		if !strings.HasPrefix(addr, "/") {
			return ""
		}
		return "unix://" + resolveSocket(filepath.Clean(addr))
	case "tcp":
		u, err := url.Parse("tcp://" + addr)
		if err != nil || u.Hostname() == "" {
			return ""
		}
		host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
		if ip := net.ParseIP(host); ip != nil {
			host = ip.String()
		}
		port := u.Port()
		switch {
		case port == "" && tls:
			port = "443"
		case port == "":
			port = "80"
		default:
			n, err := strconv.Atoi(port)
			if err != nil {
				return ""
			}
			port = strconv.Itoa(n)
		}
		p := ""
		if u.Path != "" && path.Clean(u.Path) != "/" {
			p = path.Clean(u.Path)
		}
		return "tcp://" + net.JoinHostPort(host, port) + p
	}
	return ""
}

// resolveSocket resolves the symbolic links on the path of a socket, or of
// its directory when the socket does not exist (yet); it returns p as it is
// when neither resolves.
func resolveSocket(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	if r, err := filepath.EvalSymlinks(filepath.Dir(p)); err == nil {
		return filepath.Join(r, filepath.Base(p))
	}
	return p
}

// localEngines returns the normalised endpoints the local Docker engine may
// have: the default socket, and DOCKER_HOST when it is set (the Docker client
// of pacsd's process connects there instead). Both count, so that a node
// without host is compared with the nodes of a host block on either.
func localEngines() []string {
	engines := []string{dockerEngine(DefaultDockerEndpoint, false)}
	if env := os.Getenv("DOCKER_HOST"); env != "" {
		if e := dockerEngine(env, os.Getenv("DOCKER_CERT_PATH") != ""); e != "" && e != engines[0] {
			engines = append(engines, e)
		}
	}
	return engines
}
