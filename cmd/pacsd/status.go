package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pacsd/pacsd/pkg/daemon"
	"github.com/pacsd/pacsd/pkg/spec"
)

// statusTimeout bounds the request to the daemon.
const statusTimeout = 5 * time.Second

// runStatus asks the running daemon for its /status and prints, per
// cluster, its last pass and, with pacsd on every host, the leader, the
// primary's lease and each host's pacsd with what it sees of its nodes.
// Exit 0 when the daemon answered, 1 when it did not.
func runStatus(c *cli, args []string) int {
	fs := c.newFlags("status", "[-f FILE] [--host NAME] [--json]")
	path := c.fileFlag(fs)
	host := fs.String("host", "", "with pacsd on every host (daemon.etcd), ask the pacsd of host `NAME` (env PACSD_HOST)")
	asJSON := fs.Bool("json", false, "print the daemon's /status as JSON")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	f := c.loadSpec("status", *path)
	if f == nil {
		return exitProblem
	}
	addr, err := daemonAddr(f, hostOf(*host, c.getenv))
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd status: %v\n", err)
		return exitUsage
	}
	cl := &http.Client{Timeout: statusTimeout}
	resp, err := cl.Get("http://" + addr + "/status")
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd status: the daemon at %s does not answer (%v): start it ('systemctl start pacsd', or 'pacsd run'), or check daemon.listen in %s\n", addr, err, *path)
		return exitProblem
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		fmt.Fprintf(c.stderr, "pacsd status: the daemon at %s answered %s (%v); is it pacsd?\n", addr, resp.Status, err)
		return exitProblem
	}
	if *asJSON {
		_, _ = c.stdout.Write(body)
		return exitOK
	}
	var st daemon.Status
	if err := json.Unmarshal(body, &st); err != nil {
		fmt.Fprintf(c.stderr, "pacsd status: the daemon at %s answered something that is not its status: %v\n", addr, err)
		return exitProblem
	}
	writeStatus(c.stdout, st)
	return exitOK
}

// daemonAddr is where the daemon of f serves HTTP, seen from here: its
// listen address (loopback for an unspecified one), or, with pacsd on every
// host and host named, that host's address and the listen port.
func daemonAddr(f *spec.File, host string) (string, error) {
	h, port, err := net.SplitHostPort(f.Daemon.Listen)
	if err != nil {
		return "", fmt.Errorf("daemon.listen %q: %v", f.Daemon.Listen, err)
	}
	if host != "" && f.EveryHost() {
		i := slices.IndexFunc(f.Hosts, func(b *spec.Host) bool { return b.Name == host })
		if i < 0 {
			return "", fmt.Errorf("--host %q names no host block of the file", host)
		}
		if ip := net.ParseIP(h); h == "" || ip != nil && ip.IsUnspecified() {
			return net.JoinHostPort(f.Hosts[i].Address, port), nil
		}
	}
	if ip := net.ParseIP(h); h == "" || ip != nil && ip.IsUnspecified() {
		h = "127.0.0.1"
	}
	return net.JoinHostPort(h, port), nil
}

// writeStatus prints st as tables.
func writeStatus(w io.Writer, st daemon.Status) {
	names := make([]string, 0, len(st.Clusters))
	for name := range st.Clusters {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) == 0 {
		fmt.Fprintln(w, "no cluster has been converged yet (the first pass runs)")
	}
	for i, name := range names {
		cs := st.Clusters[name]
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "cluster %s: last pass %s (%s, %s)\n", name, cs.Result, cs.LastPass.Local().Format(time.DateTime), cs.Duration)
		if cs.Error != "" {
			fmt.Fprintf(w, "  error: %s\n", cs.Error)
		}
		if r := cs.FailoverRefused; r.Node != "" {
			fmt.Fprintf(w, "  failover of %s refused: %s\n", r.Node, r.Error)
		}
		co := cs.Coordination
		if co == nil {
			continue
		}
		lease := "held by no pacsd"
		if co.Lease != nil {
			lease = fmt.Sprintf("%s, held by the pacsd of %s", co.Lease.Node, co.Lease.Host)
		}
		fmt.Fprintf(w, "  asked: pacsd of %s; leader: %s; primary's lease: %s\n", co.Host, orNone(co.Leader), lease)
		if co.Error != "" {
			fmt.Fprintf(w, "  etcd: %s\n", co.Error)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  HOST\tREPORTED\tNODES")
		hosts := make([]string, 0, len(co.Hosts))
		for h := range co.Hosts {
			hosts = append(hosts, h)
		}
		sort.Strings(hosts)
		for _, h := range hosts {
			hs := co.Hosts[h]
			var nodes []string
			for n, what := range hs.Nodes {
				nodes = append(nodes, n+": "+what)
			}
			sort.Strings(nodes)
			fmt.Fprintf(tw, "  %s\t%s ago\t%s\n", h, time.Since(hs.ReportedAt).Round(time.Second), strings.Join(nodes, ", "))
		}
		_ = tw.Flush()
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
