package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pacsd/pacsd/pkg/spec"
)

// Session targets of the URLs conninfo prints. Read-write asks for the node
// that accepts writes; read-only prefers a standby and falls back to the
// primary, so that reads keep working when only the primary is left (the
// strict targets, libpq standby and JDBC secondary, fail then instead).
const (
	libpqReadWrite = "read-write"
	jdbcReadWrite  = "primary"
	libpqReadOnly  = "prefer-standby"
	jdbcReadOnly   = "preferSecondary"
)

// defaultPGPort is the port a node listens on inside its container, where
// clients on the cluster network reach it by container name.
const defaultPGPort = 5432

// conninfoHelp explains the URLs, in conninfo --help.
const conninfoHelp = `Prints a libpq URI and a JDBC URL (PostgreSQL JDBC driver, as dcm4chee-arc uses)
that list every node of CLUSTER (the file's only cluster when it is left out),
so that a client finds the acting primary by itself, without a proxy, after a
switchover or failover too:

  read-write  libpq target_session_attrs=read-write, JDBC targetServerType=primary:
              only the node that accepts writes.
  read-only   libpq target_session_attrs=prefer-standby (libpq 14 or later),
              JDBC targetServerType=preferSecondary: a standby when one answers,
              else the primary, so that reads keep working when only the primary
              is left. For standbys only, and an error when none answers, use
              target_session_attrs=standby (libpq) or targetServerType=secondary
              (JDBC) instead.

A node on a host block is listed as its host's address and its published port;
a node without host as its container name and port 5432, which clients on the
cluster's network (the archive's container joins it) reach. The nodes are
listed in file order with the file's primary first; which node is the acting
primary is not known without asking the engines, and it does not matter: a
client tries every node in turn and keeps the one that matches. The user is
the cluster's superuser unless --user names another role; the password is
never printed: libpq clients take it from PGPASSFILE (~/.pgpass) or
PGPASSWORD, JDBC clients from the datasource's password.

Every node speaks TLS with a certificate of the cluster's certificate
authority, and the URLs ask for sslmode=verify-full: the client checks that
the node's certificate names the host it dialled and chains to that CA, read
from sslrootcert. --ca-file PATH writes the CA's certificate (public, mode
0644) to PATH and names PATH in the URLs; without it, the URLs name
CLUSTER-ca.crt (relative to the client's working directory) and nothing is
written.

The JDBC driver remembers each node's role for hostRecheckSeconds (10 s by
default, for the whole JVM): for that long after a switchover it does not try
the new primary for targetServerType=primary if it last saw it as a standby.
Append &hostRecheckSeconds=2 to the URL to wait less.
`

// newConninfoCmd is 'pacsd conninfo [CLUSTER]': the client URLs of one
// cluster. It needs the file only, no engine; --ca-file reads the cluster
// store too.
func newConninfoCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "conninfo [CLUSTER] [-f FILE] [--user ROLE] [--ca-file PATH] [--json]",
		Short: "print libpq and JDBC URLs that find the acting primary (or a standby)",
		Long:  conninfoHelp,
		Example: `  pacsd conninfo -f /etc/pacsd/pacs.hcl
  pacsd conninfo pacs --user archive --ca-file /etc/pacs/pacs-ca.crt
  pacsd conninfo pacs --json | jq -r .read_write.jdbc`,
		Args:              atMostOne("cluster"),
		ValidArgsFunction: completeCluster,
	}
	path := c.fileFlag(cmd)
	user := cmd.Flags().String("user", "", "the `ROLE` the URLs log in as (default: the cluster's superuser)")
	asJSON := cmd.Flags().Bool("json", false, "print both URLs of both variants and the nodes as JSON on stdout")
	caFile := cmd.Flags().String("ca-file", "", "write the cluster's CA certificate to `PATH` and name it in the URLs (sslrootcert)")
	_ = cmd.RegisterFlagCompletionFunc("user", cobra.NoFileCompletions)
	cmd.RunE = action(func(args []string) int { return c.conninfo(*path, clusterOf(args), *user, *caFile, *asJSON) })
	return cmd
}

// clusterOf is the CLUSTER argument, "" when it is left out.
func clusterOf(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

// conninfo prints the client URLs of the cluster name of the file at path.
func (c *cli) conninfo(path, name, user, caFile string, asJSON bool) int {
	if strings.ContainsRune(user, 0) {
		fmt.Fprintf(c.stderr, "pacsd conninfo: the role name given with --user holds a NUL byte, which no PostgreSQL role name can hold; give the role's name\n")
		return exitUsage
	}
	f := c.loadSpec("conninfo", path)
	if f == nil {
		return exitProblem
	}
	cl, err := pickCluster(f, name)
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd conninfo: %s: %v\n", path, err)
		if errors.Is(err, errSeveralClusters) {
			return exitUsage
		}
		return exitProblem
	}
	rootCert := caFile
	if rootCert == "" {
		rootCert = cl.Name + "-ca.crt"
	} else if err := c.writeCA(f, cl, rootCert); err != nil {
		fmt.Fprintf(c.stderr, "pacsd conninfo: cluster %q: %v\n", cl.Name, err)
		return exitProblem
	}
	info, err := connInfo(cl, user, rootCert)
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd conninfo: %v\n", err)
		return exitProblem
	}
	if asJSON {
		err = writeConninfoJSON(c.stdout, info)
	} else {
		err = writeConninfo(c.stdout, info)
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd conninfo: while writing the URLs: %v\n", err)
		return exitProblem
	}
	return exitOK
}

// errSeveralClusters is returned by pickCluster when no cluster is named and
// the file has more than one.
var errSeveralClusters = errors.New("several clusters")

// pickCluster returns the cluster of f named name, or, when name is "", the
// file's only cluster. Its errors list the clusters of the file.
func pickCluster(f *spec.File, name string) (*spec.Cluster, error) {
	var names []string
	for _, c := range f.Clusters {
		if c.Name == name || (name == "" && len(f.Clusters) == 1) {
			return c, nil
		}
		names = append(names, strconv.Quote(c.Name))
	}
	list := strings.Join(names, ", ")
	switch {
	case len(f.Clusters) == 0:
		return nil, errors.New("the file declares no cluster; add a cluster block")
	case name == "":
		return nil, fmt.Errorf("%w: the file declares %d clusters (%s); name one, such as 'pacsd conninfo %s'", errSeveralClusters, len(f.Clusters), list, f.Clusters[0].Name)
	case len(f.Clusters) == 1:
		return nil, fmt.Errorf("no cluster %q; the file's cluster is %s", name, list)
	default:
		return nil, fmt.Errorf("no cluster %q; the file's clusters are %s", name, list)
	}
}

// conninfo is what conninfo prints of one cluster.
type conninfo struct {
	Cluster  string `json:"cluster"`
	Database string `json:"database"`
	User     string `json:"user"`
	// RootCert is the CA certificate the URLs verify the nodes with.
	RootCert  string         `json:"sslrootcert"`
	ReadWrite clientURLs     `json:"read_write"`
	ReadOnly  clientURLs     `json:"read_only"`
	Nodes     []conninfoNode `json:"nodes"`
}

// clientURLs is one variant (read-write or read-only) for both drivers.
type clientURLs struct {
	LibPQ string `json:"libpq"`
	JDBC  string `json:"jdbc"`
}

// conninfoNode is one node as the URLs list it.
type conninfoNode struct {
	Node string `json:"node"`
	// Host and Port are where a client reaches the node.
	Host string `json:"host"`
	Port int    `json:"port"`
	// HostBlock names the node's host block, "" for the local engine.
	HostBlock string `json:"host_block,omitempty"`
	Container string `json:"container"`
	// FilePrimary is true for the node the file names as primary (not
	// necessarily the acting one).
	FilePrimary bool `json:"file_primary"`
}

// writeCA writes the CA certificate of cluster cl to path (0644), from its
// cluster store or the operator's file (tls.ca).
func (c *cli) writeCA(f *spec.File, cl *spec.Cluster, path string) error {
	var pem []byte
	if cl.TLS.CA != "" {
		// The operator's CA: its certificate only, not its key.
		b, err := os.ReadFile(cl.TLS.CA)
		if err != nil {
			return fmt.Errorf("while reading the CA certificate of its tls block: %w", err)
		}
		pem = b
	} else {
		store, done, err := c.clusterStore(f)
		if err != nil {
			return err
		}
		defer done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		a, err := store.Authority(ctx, cl.Name)
		if err != nil {
			return fmt.Errorf("while reading its certificate authority: %w; run conninfo as the service's user (it reads the state directory or etcd)", err)
		}
		pem = a.CertPEM()
	}
	if err := os.WriteFile(path, pem, 0o644); err != nil {
		return fmt.Errorf("while writing its CA certificate: %w", err)
	}
	return nil
}

// connInfo builds the URLs of cluster c for user ("" for the superuser),
// verifying each node's certificate with the CA certificate at rootCert.
// The nodes are in file order with the file's primary first. Pure.
func connInfo(c *spec.Cluster, user, rootCert string) (conninfo, error) {
	if user == "" {
		user = c.Superuser.Name
	}
	info := conninfo{Cluster: c.Name, Database: c.Database, User: user, RootCert: rootCert, Nodes: []conninfoNode{}}
	ordered := make([]*spec.Node, 0, len(c.Nodes))
	if p := c.Node(c.Primary); p != nil {
		ordered = append(ordered, p)
	}
	for _, n := range c.Nodes {
		if n.Name != c.Primary {
			ordered = append(ordered, n)
		}
	}
	if len(ordered) == 0 {
		return info, fmt.Errorf("cluster %q has no node; declare one with a node block", c.Name)
	}
	hosts := make([]string, 0, len(ordered))
	for _, n := range ordered {
		cn := conninfoNode{Node: n.Name, Host: n.Container, Port: defaultPGPort, HostBlock: n.Host, Container: n.Container, FilePrimary: n.Name == c.Primary}
		if n.Host != "" {
			if n.Address == "" || n.Port == 0 {
				return info, fmt.Errorf("node %q of cluster %q runs on host %q but has no published port or its host no address, so clients on other machines cannot reach it; give the node a port and the host block an address, then run 'pacsd validate'", n.Name, c.Name, n.Host)
			}
			cn.Host, cn.Port = n.Address, n.Port
		}
		info.Nodes = append(info.Nodes, cn)
		hosts = append(hosts, hostPort(cn.Host, cn.Port))
	}
	list := strings.Join(hosts, ",")
	db := escapeURLPart(c.Database)
	tls := "sslmode=verify-full&sslrootcert=" + escapeURLPart(rootCert)
	libpq := "postgresql://" + escapeURLPart(user) + "@" + list + "/" + db + "?" + tls + "&target_session_attrs="
	jdbc := "jdbc:postgresql://" + list + "/" + db + "?ssl=true&" + tls + "&targetServerType="
	info.ReadWrite = clientURLs{LibPQ: libpq + libpqReadWrite, JDBC: jdbc + jdbcReadWrite}
	info.ReadOnly = clientURLs{LibPQ: libpq + libpqReadOnly, JDBC: jdbc + jdbcReadOnly}
	return info, nil
}

// hostPort joins a host and a port as both URL forms write them: an IPv6
// address in brackets.
func hostPort(host string, port int) string {
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(port)
}

// escapeURLPart percent-encodes every byte of s but letters, digits and
// "-._~", for a user name or database in a libpq URI or a JDBC URL: libpq
// decodes every percent-encoded part, and the JDBC driver URL-decodes the
// database (where an unescaped "+" would turn into a space).
func escapeURLPart(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9', ch == '-', ch == '.', ch == '_', ch == '~':
			b.WriteByte(ch)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[ch>>4])
			b.WriteByte(hex[ch&15])
		}
	}
	return b.String()
}

// writeConninfo prints the URLs for people: one line a URL, after a line
// naming the nodes.
func writeConninfo(w io.Writer, info conninfo) error {
	var b strings.Builder
	fmt.Fprintf(&b, "cluster %q, database %q, user %q; nodes:", info.Cluster, info.Database, info.User)
	for i, n := range info.Nodes {
		sep := ","
		if i == 0 {
			sep = ""
		}
		fmt.Fprintf(&b, "%s %s %s", sep, n.Node, hostPort(n.Host, n.Port))
		if n.FilePrimary {
			b.WriteString(" (the file's primary)")
		}
	}
	fmt.Fprintf(&b, "\n\nread-write (the node that accepts writes):\n  libpq  %s\n  JDBC   %s\n", info.ReadWrite.LibPQ, info.ReadWrite.JDBC)
	fmt.Fprintf(&b, "\nread-only (a standby, else the primary):\n  libpq  %s\n  JDBC   %s\n", info.ReadOnly.LibPQ, info.ReadOnly.JDBC)
	b.WriteString("\nA client tries the nodes in turn and keeps the one that matches: the order does not matter.\n")
	fmt.Fprintf(&b, "Each node's certificate is verified with the cluster's CA certificate in %s (pacsd conninfo --ca-file PATH writes it).\n", info.RootCert)
	b.WriteString("The password is not printed: libpq reads it from PGPASSFILE (~/.pgpass) or PGPASSWORD, JDBC from the datasource's password.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeConninfoJSON(w io.Writer, info conninfo) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(info); err != nil {
		return fmt.Errorf("while encoding the URLs: %w", err)
	}
	return nil
}
