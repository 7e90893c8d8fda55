package spec

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"github.com/hashicorp/hcl/v2"
)

// etcdEndpoint is an endpoint of daemon.etcd that parsed.
type etcdEndpoint struct {
	url      string // as written
	https    bool
	loopback bool // its host is loopback
	rng      hcl.Range
}

// decodeEtcdBlock decodes daemon.etcd, the etcd cluster the pacsd of every
// host coordinates through. The block's presence alone makes the file one
// of pacsd on every host, so it returns an *Etcd even when the block has
// errors (reported, so that no file results).
//
// The endpoints carry the cluster state, the elections and the primaries'
// leases, which decide fencing and promotion: https:// endpoints need a tls
// block (pacsd verifies the members with its CA), a tls block needs https://
// endpoints, and an http:// endpoint off loopback gets a warning.
func (d *decoder) decodeEtcdBlock(block *hcl.Block) *Etcd {
	e := &Etcd{Endpoints: []string{}, Prefix: DefaultEtcdPrefix}
	content := d.content(block.Body, etcdSchema)
	var endpoints []etcdEndpoint // the valid ones, each once
	if attr := d.stringList(content.Attributes, "endpoints", &e.Endpoints); attr != nil {
		if len(e.Endpoints) == 0 {
			d.errorf(attr.Expr.Range(), "No Etcd Endpoints",
				"The etcd block lists no endpoint. Give the client URLs of the etcd members, such as [\"https://10.0.0.11:2379\", \"https://10.0.0.12:2379\", \"https://10.0.0.13:2379\"].")
		}
		ranges := elementRanges(attr.Expr, len(e.Endpoints))
		seen := map[string]hcl.Range{}
		for i, u := range e.Endpoints {
			key, host, problem := parseEtcdEndpoint(u)
			if problem != "" {
				d.errorf(ranges[i], "Invalid Etcd Endpoint",
					"The etcd endpoint %q cannot be used: %s. Write the client URL of an etcd member as https://HOST:PORT, such as \"https://10.0.0.11:2379\" (http:// only where etcd listens on loopback).", redactedURL(u), problem)
				continue
			}
			if first, dup := seen[key]; dup {
				d.errorf(ranges[i], "Duplicate Etcd Endpoint",
					"The etcd endpoint %q names the same member as the endpoint at %s. List each etcd member once.", u, first)
				continue
			}
			seen[key] = ranges[i]
			endpoints = append(endpoints, etcdEndpoint{url: u, https: strings.HasPrefix(key, "https://"), loopback: loopbackHost(host), rng: ranges[i]})
		}
	}
	if attr := d.str(content.Attributes, "prefix", &e.Prefix); attr != nil {
		if problem := etcdPrefixProblem(e.Prefix); problem != "" {
			d.errorf(attr.Expr.Range(), "Invalid Etcd Prefix",
				"The etcd prefix %q %s. pacsd keeps its keys under the prefix, so it starts with \"/\", does not end with \"/\" and holds no white space or control character, such as %q (the default) or \"/pacsd/site-a\".", e.Prefix, problem, DefaultEtcdPrefix)
		}
	}
	tlsBlock := d.single(content.Blocks, "tls", "The etcd block")
	if tlsBlock != nil {
		e.TLS = d.decodeTLSBlock(tlsBlock, "etcd")
	}
	var plain, secure []string
	for _, ep := range endpoints {
		if ep.https {
			secure = append(secure, ep.url)
		} else {
			plain = append(plain, ep.url)
		}
	}
	switch {
	case tlsBlock != nil && len(plain) > 0:
		d.errorf(tlsBlock.DefRange, "Etcd TLS Without https://",
			"The etcd block has a tls block, but %s http://, where pacsd would send the cluster state and the leases unencrypted and never use the certificates. Write every endpoint as https://, or remove the tls block if etcd listens on loopback only.", endpointList(plain))
	case tlsBlock == nil && len(secure) > 0:
		d.errorf(block.DefRange, "Etcd https:// Without TLS",
			"The etcd block has no tls block, but %s https://, and pacsd needs the CA that signed the etcd members' certificates to verify them. Add a tls block to the etcd block with ca, and the cert and key of pacsd's client certificate.", endpointList(secure))
	case tlsBlock == nil:
		for _, ep := range endpoints {
			if !ep.loopback {
				d.warnf(ep.rng, "Unencrypted Etcd Endpoint",
					"The etcd endpoint %q is http:// on an address that is not loopback, so the cluster state, the elections and the primaries' leases travel unencrypted and unauthenticated: anyone on the network could read them, or change them and make pacsd fence or promote. Use https:// with a tls block (the etcd members' CA, and pacsd's client certificate and key).", ep.url)
			}
		}
	}
	return e
}

// endpointList returns `the endpoint "a" is` or `the endpoints "a", "b" are`.
func endpointList(urls []string) string {
	if len(urls) == 1 {
		return fmt.Sprintf("the endpoint %q is", urls[0])
	}
	return fmt.Sprintf("the endpoints %s are", quoteList(urls))
}

// parseEtcdEndpoint checks an etcd client URL: http:// or https://, a host
// (an IP address or a host name) and a port, nothing else. It returns the
// endpoint normalised (equal for two URLs that name one member the same
// way), its host, or a phrase that says what is wrong.
func parseEtcdEndpoint(s string) (key, host, problem string) {
	scheme, _, _ := strings.Cut(s, "://")
	if scheme != "https" && scheme != "http" {
		return "", "", "it does not start with https:// or http://"
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", "", "it is not a URL"
	}
	host = u.Hostname()
	port := u.Port()
	n, perr := strconv.Atoi(port)
	switch {
	case u.User != nil:
		return "", "", "it holds user information (USER@ before the host), which etcd's client does not read; pacsd authenticates to etcd with the client certificate of the tls block"
	case host == "":
		return "", "", "it names no host"
	case !validHostAddress(host):
		return "", "", fmt.Sprintf("its host %q is not an IP address or host name", host)
	case port == "":
		return "", "", "it has no port (etcd's client port is usually 2379)"
	case perr != nil || n < 1 || n > 65535:
		return "", "", fmt.Sprintf("its port %q is outside 1-65535", port)
	case u.Path != "" || u.RawPath != "":
		return "", "", fmt.Sprintf("it has a path (%q), which etcd's client does not read", u.Path)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		return "", "", "it has a query or a fragment, which etcd's client does not read"
	}
	canonical := strings.TrimSuffix(strings.ToLower(host), ".")
	if ip := net.ParseIP(host); ip != nil {
		canonical = ip.String()
	}
	return scheme + "://" + net.JoinHostPort(canonical, strconv.Itoa(n)), host, ""
}

// etcdPrefixProblem returns a phrase that says what is wrong with an etcd
// key prefix, or "".
func etcdPrefixProblem(p string) string {
	switch {
	case !strings.HasPrefix(p, "/"):
		return "does not start with \"/\""
	case strings.HasSuffix(p, "/"):
		return "ends with \"/\""
	case strings.IndexFunc(p, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return "holds white space or a control character"
	}
	return ""
}

// elementRanges returns the range of each of the n elements of a list
// expression written out in the file, or the whole expression's range n
// times when it is not one (such as a function's result).
func elementRanges(expr hcl.Expression, n int) []hcl.Range {
	exprs, diags := hcl.ExprList(expr)
	ranges := make([]hcl.Range, n)
	for i := range ranges {
		ranges[i] = expr.Range()
		if !diags.HasErrors() && len(exprs) == n {
			ranges[i] = exprs[i].Range()
		}
	}
	return ranges
}
