package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pacsd/pacsd/pkg/daemon"
	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// statusTimeout bounds the request to the daemon.
const statusTimeout = 5 * time.Second

// statusWatchEvery is how often --watch prints the status again;
// statusWatchRounds, when not 0, ends --watch after that many (tests).
var (
	statusWatchEvery  = 2 * time.Second
	statusWatchRounds = 0
)

// newStatusCmd is 'pacsd status [CLUSTER]': it prints, per cluster, the
// controller or leader, the acting and the declared primary, the epoch, and
// per node its container, role, timeline, LSN, lag, replication state and
// why, slot retention, pending restart, work in progress and last action.
// It asks the running daemon (its /status); when none answers, it observes
// the nodes directly (one controller only). Exit 0 when the status was
// shown, 1 when it could not be (or a cluster could not be observed).
func newStatusCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status [CLUSTER] [-f FILE] [--host NAME] [--json] [--watch]",
		Short: "ask the running daemon: last passes, leader, primary's lease, hosts",
		Long: `Shows CLUSTER (every cluster of the file when it is left out): who controls
it (the daemon, or with pacsd on every host the leader and the primary's
lease), the acting and the declared primary, the epoch, whether it is paused,
and per node its host, container, role, timeline, LSN, lag, replication
state and why, slot retention, pending restart, work in progress and last
action. It asks the running daemon at daemon.listen (with daemon.tls and
daemon.token_file as the file says); when none answers, it observes the nodes
directly and says so. With pacsd on every host, --host (or PACSD_HOST) names
the host whose pacsd is asked.

Exit 0 when the status was shown, 1 when it could not be or a cluster could
not be observed, 2 for a cluster the file does not declare.`,
		Example: `  pacsd status -f /etc/pacsd/pacs.hcl
  pacsd status pacs --watch
  pacsd status --json | jq -r .clusters.pacs.acting
  pacsd status --host b   # pacsd on every host: ask host b's pacsd`,
		Args:              atMostOne("cluster"),
		ValidArgsFunction: completeCluster,
	}
	path := c.fileFlag(cmd)
	host := cmd.Flags().String("host", "", "with pacsd on every host (daemon.etcd), ask the pacsd of host `NAME` (env PACSD_HOST)")
	asJSON := cmd.Flags().Bool("json", false, "print the status as JSON (what the daemon's /status gives)")
	watch := cmd.Flags().Bool("watch", false, "print the status again every 2 s until interrupted")
	_ = cmd.RegisterFlagCompletionFunc("host", completeHost)
	cmd.RunE = action(func(args []string) int { return c.status(*path, clusterOf(args), *host, *asJSON, *watch) })
	return cmd
}

// status shows the cluster name of the file at path, or every cluster when
// name is "", asking the pacsd of host.
func (c *cli) status(path, name, host string, asJSON, watch bool) int {
	f := c.loadSpec("status", path)
	if f == nil {
		return exitProblem
	}
	if name != "" {
		if _, err := pickCluster(f, name); err != nil {
			fmt.Fprintf(c.stderr, "pacsd status: %s: %v\n", path, err)
			return exitUsage
		}
	}
	addr, err := daemonAddr(f, hostOf(host, c.getenv))
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd status: %v\n", err)
		return exitUsage
	}
	cl, err := daemon.NewClient(f.Daemon, statusTimeout)
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd status: %v; run it as a user who may read the files of daemon.tls (pacsd's user or root)\n", err)
		return exitProblem
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for round := 1; ; round++ {
		st, problem, code := statusOf(ctx, c, cl, f, path, addr)
		if st == nil && !watch {
			return code
		}
		if st == nil { // --watch goes on: the daemon may be restarting
			select {
			case <-ctx.Done():
				return code
			case <-time.After(statusWatchEvery):
				continue
			}
		}
		if name != "" {
			for k := range st.Clusters {
				if k != name {
					delete(st.Clusters, k)
				}
			}
		}
		if watch && !asJSON && round > 1 {
			fmt.Fprintln(c.stdout)
		}
		for _, cs := range st.Clusters {
			if cs.Problem != "" {
				code = exitProblem // a cluster could not be observed
			}
		}
		if asJSON {
			enc := json.NewEncoder(c.stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(st)
		} else {
			if problem != "" {
				fmt.Fprintln(c.stdout, problem)
			}
			writeStatus(c.stdout, *st, time.Now())
		}
		if !watch || round == statusWatchRounds {
			return code
		}
		select {
		case <-ctx.Done():
			return code
		case <-time.After(statusWatchEvery):
		}
	}
}

// statusOf asks the daemon at addr for its status with cl (the file's
// daemon.tls and daemon.token_file); when it does not answer, it observes
// the clusters of f directly. problem says how the status was had when not
// from the daemon; st is nil when it could not be had at all (code says
// how to exit).
func statusOf(ctx context.Context, c *cli, cl *daemon.Client, f *spec.File, path, addr string) (st *daemon.Status, problem string, code int) {
	resp, err := cl.Get(ctx, addr, "/status")
	if why := tlsProblem(err); why != "" {
		fmt.Fprintf(c.stderr, "pacsd status: the daemon at %s answers, but not as daemon.tls says: %s\n", addr, why)
		return nil, "", exitProblem
	}
	if err == nil {
		defer resp.Body.Close()
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		switch {
		case resp.StatusCode == http.StatusUnauthorized:
			fmt.Fprintf(c.stderr, "pacsd status: the daemon at %s refused the credentials of %s (%s): the token of daemon.token_file (or the client certificate of daemon.tls) differs from the one the daemon read; reload it ('systemctl reload pacsd') if the file changed\n", addr, path, resp.Status)
			return nil, "", exitProblem
		case resp.StatusCode == http.StatusBadRequest && f.Daemon.TLS == nil && strings.Contains(string(body), "HTTPS"):
			fmt.Fprintf(c.stderr, "pacsd status: the daemon at %s serves HTTPS, and %s has no daemon.tls block: the daemon runs with another file, or the block was removed since it started (restart it: 'systemctl restart pacsd')\n", addr, path)
			return nil, "", exitProblem
		case rerr != nil || resp.StatusCode != http.StatusOK:
			fmt.Fprintf(c.stderr, "pacsd status: the daemon at %s answered %s (%v); is it pacsd?\n", addr, resp.Status, rerr)
			return nil, "", exitProblem
		}
		var s daemon.Status
		if err := json.Unmarshal(body, &s); err != nil {
			fmt.Fprintf(c.stderr, "pacsd status: the daemon at %s answered something that is not its status: %v\n", addr, err)
			return nil, "", exitProblem
		}
		return &s, "", exitOK
	}
	if f.EveryHost() {
		fmt.Fprintf(c.stderr, "pacsd status: the pacsd at %s does not answer (%v): start it ('systemctl start pacsd'), or ask another host's with --host NAME; with pacsd on every host, status is not observed directly\n", addr, err)
		return nil, "", exitProblem
	}
	s, oerr := observeStatus(ctx, f)
	note := fmt.Sprintf("(the daemon at %s does not answer: observed directly; start it with 'systemctl start pacsd' or 'pacsd run -f %s')", addr, path)
	if oerr != nil {
		fmt.Fprintf(c.stderr, "pacsd status: %v\n", oerr)
		return s, note, exitProblem
	}
	return s, note, exitOK
}

// observeStatus observes every cluster of f directly, as a pass would, and
// returns their views; the error names the clusters that could not be
// observed (their views say why).
func observeStatus(ctx context.Context, f *spec.File) (*daemon.Status, error) {
	st := &daemon.Status{Clusters: map[string]*daemon.ClusterStatus{}}
	d, err := deps(f, nil)
	defer closeRuntimes(d)
	var failed []string
	for _, cl := range f.Clusters {
		var obs *reconcile.Observed
		oerr := err
		if oerr == nil {
			octx, cancel := context.WithTimeout(ctx, 20*time.Second)
			obs, oerr = reconcile.Observe(octx, cl, d)
			cancel()
		}
		v := reconcile.View(cl, obs)
		v.Controller = "none answers: observed by 'pacsd status'"
		if ps, ok := d.Store.(interface {
			LoadPause(string) (reconcile.Pause, error)
		}); ok {
			p, _ := ps.LoadPause(cl.Name)
			v.Paused = p.Paused
		}
		v.ObservedAt = time.Now().UTC().Format(time.RFC3339)
		if oerr != nil {
			v.Problem = oerr.Error()
			failed = append(failed, cl.Name)
		}
		st.Clusters[cl.Name] = &daemon.ClusterStatus{ClusterView: v, Actions: []string{}}
	}
	if len(failed) > 0 {
		return st, fmt.Errorf("cannot observe cluster(s) %s", strings.Join(failed, ", "))
	}
	return st, nil
}

// tlsProblem says, for an error of the client, why the daemon's TLS does
// not fit the file's daemon.tls, with what to do; "" when the error is no
// such thing.
func tlsProblem(err error) string {
	var verify *tls.CertificateVerificationError
	var header tls.RecordHeaderError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &verify):
		return fmt.Sprintf("its certificate cannot be verified (%v): daemon.tls.ca (else client_ca, else the system's authorities) must have signed it, for the address asked (give it 127.0.0.1 and the host's address as subject alternative names)", verify.Err)
	case errors.As(err, &header), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return "it serves plain HTTP, and the file has a daemon.tls block: the daemon runs with another file, or the block was added since it started (restart it: 'systemctl restart pacsd')"
	case strings.Contains(err.Error(), "remote error: tls:"):
		return fmt.Sprintf("it refused this client's certificate (%v): daemon.tls.client_ca must have signed daemon.tls.cert, which must allow client authentication", err)
	}
	return ""
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

// writeStatus prints st as tables: per cluster a header and a row per node.
func writeStatus(w io.Writer, st daemon.Status, now time.Time) {
	names := make([]string, 0, len(st.Clusters))
	for name := range st.Clusters {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) == 0 {
		fmt.Fprintln(w, "no cluster has been observed yet (the first pass runs)")
	}
	for i, name := range names {
		cs := st.Clusters[name]
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "cluster %s: acting primary %s", name, orNone(cs.Acting))
		if cs.Declared != "" && cs.Declared != cs.Acting {
			fmt.Fprintf(w, " (the file declares %s)", cs.Declared)
		}
		fmt.Fprintf(w, ", epoch %d", cs.Epoch)
		if cs.Paused {
			fmt.Fprint(w, ", PAUSED: pacsd takes no action")
		}
		fmt.Fprintln(w)
		if cs.Controller != "" {
			fmt.Fprintf(w, "  controller: %s\n", cs.Controller)
		}
		if !cs.LastPass.IsZero() {
			fmt.Fprintf(w, "  last pass %s (%s, %s)\n", cs.Result, cs.LastPass.Local().Format(time.DateTime), cs.Duration)
		}
		if cs.Problem != "" {
			fmt.Fprintf(w, "  not observed: %s\n", cs.Problem)
		}
		if cs.Error != "" {
			fmt.Fprintf(w, "  error: %s\n", cs.Error)
		}
		if r := cs.FailoverRefused; r.Node != "" {
			fmt.Fprintf(w, "  failover of %s refused: %s\n", r.Node, r.Error)
		}
		writeNodes(w, cs.Nodes, now)
		writeCoordination(w, cs.Coordination)
	}
}

// writeNodes prints a cluster's nodes as a table, then why each standby
// that does not stream does not.
func writeNodes(w io.Writer, nodes []reconcile.NodeView, now time.Time) {
	if len(nodes) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NODE\tHOST\tCONTAINER\tROLE\tTL\tLSN\tLAG\tREPLICATION\tSYNC\tSLOT RETAINED\tPENDING RESTART\tWORK\tLAST ACTION")
	var whys []string
	for _, n := range nodes {
		host := n.Host
		if host == "" {
			host = "local"
		}
		tl := "-"
		if n.Timeline > 0 {
			tl = fmt.Sprint(n.Timeline)
		}
		sync := "-"
		if n.Sync {
			sync = "sync"
		}
		slot := "-"
		if n.SlotRetained != nil {
			slot = byteSize(*n.SlotRetained)
			if n.SlotStatus != "" {
				slot += " (" + n.SlotStatus + ")"
			}
		}
		pending := "-"
		if len(n.PendingRestart) > 0 {
			pending = strings.Join(n.PendingRestart, ",")
		}
		work := "-"
		if n.Work != nil {
			work = fmt.Sprintf("%s %.0f%%", n.Work.Kind, n.Work.Percent)
			if n.Work.Left != "" {
				work += ", " + n.Work.Left + " left"
			}
		}
		last := "-"
		if a := n.LastAction; a != nil {
			last = fmt.Sprintf("%s %s, %s ago", a.Kind, firstWord(a.Result), now.Sub(a.At).Round(time.Second))
		}
		lag := "-"
		if n.LagBytes != nil {
			lag = byteSize(*n.LagBytes)
			if n.LagSeconds != nil {
				lag += fmt.Sprintf(", %.1fs", *n.LagSeconds)
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Node, host, n.Container, n.Role, tl, orDash(n.LSN),
			lag, orDash(n.Replication), sync, slot, pending, work, last)
		if n.Why != "" {
			whys = append(whys, fmt.Sprintf("  %s: %s", n.Node, n.Why))
		}
	}
	_ = tw.Flush()
	for _, why := range whys {
		fmt.Fprintln(w, why)
	}
}

// writeCoordination prints, with pacsd on every host, the leader, the
// primary's lease and each host's pacsd with what it reports.
func writeCoordination(w io.Writer, co *daemon.CoordinationStatus) {
	if co == nil {
		return
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

// closeRuntimes closes the engines' clients of d.
func closeRuntimes(d reconcile.Deps) {
	for _, rt := range d.Runtimes {
		if c, ok := rt.(io.Closer); ok {
			_ = c.Close()
		}
	}
}

// byteSize prints a byte count for a table.
func byteSize(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// firstWord is a result's first word ("ok", "failed", "refused"), or
// "not acted on".
func firstWord(s string) string {
	if strings.HasPrefix(s, "not acted on") {
		return "not acted on"
	}
	if i := strings.IndexAny(s, " :"); i > 0 {
		return s[:i]
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
