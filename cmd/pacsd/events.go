package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
	"github.com/pacsd/pacsd/pkg/state"
)

// eventsHelp explains what events shows, in events --help.
const eventsHelp = `Prints the event history of CLUSTER (every cluster of the file when it is left
out), oldest first: each action pacsd carried out and each decision not to act
(a refused failover, drift found, a switchover that waits), with its result and
reason. It reads the cluster store (daemon.state_dir, or etcd with
daemon.etcd), whether pacsd runs or not; the store keeps the newest 1000
events of each cluster.
`

// eventReader is what events reads of a cluster store.
type eventReader interface {
	Events(cluster string, since time.Time) ([]reconcile.Event, error)
}

// newEventsCmd is 'pacsd events [CLUSTER]'.
func newEventsCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events [CLUSTER] [-f FILE] [--since DURATION|TIME] [--json]",
		Short: "show what pacsd did and decided not to do, oldest first",
		Long: eventsHelp + `
Exit 0 when the history was read (also when it is empty), 1 when the file is
invalid or the store cannot be read, 2 for a bad --since or a cluster the
file does not declare.`,
		Example: `  pacsd events -f /etc/pacsd/pacs.hcl
  pacsd events pacs --since 1h
  pacsd events --since 2025-03-01T12:00:00Z --json | jq -r '.[] | select(.kind == "failover")'`,
		Args:              atMostOne("cluster"),
		ValidArgsFunction: completeCluster,
	}
	path := c.fileFlag(cmd)
	since := cmd.Flags().String("since", "", "only events of the last `DURATION` (such as 1h or 30m), or from TIME on (RFC 3339, such as 2025-03-01T12:00:00Z)")
	asJSON := cmd.Flags().Bool("json", false, "print the events as a JSON array on stdout")
	_ = cmd.RegisterFlagCompletionFunc("since", cobra.NoFileCompletions)
	cmd.RunE = action(func(args []string) int { return c.events(*path, clusterOf(args), *since, *asJSON) })
	return cmd
}

// events prints the event history of the cluster name of the file at path,
// or of every cluster of the file when name is "".
func (c *cli) events(path, name, sinceArg string, asJSON bool) int {
	since, err := parseSince(sinceArg, time.Now())
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd events: %v\n", err)
		return exitUsage
	}
	f := c.loadSpec("events", path)
	if f == nil {
		return exitProblem
	}
	var clusters []string
	if name != "" {
		cl, err := pickCluster(f, name)
		if err != nil {
			fmt.Fprintf(c.stderr, "pacsd events: %s: %v\n", path, err)
			return exitUsage
		}
		clusters = []string{cl.Name}
	} else {
		for _, cl := range f.Clusters {
			clusters = append(clusters, cl.Name)
		}
	}
	store, closeStore, err := c.clusterStore(f)
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd events: %v\n", err)
		return exitProblem
	}
	defer closeStore()
	var evs []reconcile.Event
	for _, cl := range clusters {
		got, err := store.Events(cl, since)
		if err != nil {
			fmt.Fprintf(c.stderr, "pacsd events: %v\n", err)
			if errors.Is(err, os.ErrPermission) && !f.EveryHost() {
				fmt.Fprintf(c.stderr, "pacsd events: run it as the user pacsd runs as (the owner of %s)\n", f.Daemon.StateDir)
			}
			return exitProblem
		}
		evs = append(evs, got...)
	}
	// Several clusters: their histories merged.
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].At.Before(evs[j].At) })
	if asJSON {
		err = writeEventsJSON(c.stdout, evs)
	} else {
		err = writeEvents(c.stdout, evs)
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd events: while writing the events: %v\n", err)
		return exitProblem
	}
	return exitOK
}

// parseSince reads --since: "" is no limit (the zero time), a Go duration
// is that long before now, else an RFC 3339 time.
func parseSince(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("--since %q: give a positive duration, such as 1h (the events of the last hour)", v)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q is neither a duration nor a time: give a duration such as 1h, 30m or 48h (the events of that last while; there is no unit for days), or a time in RFC 3339 form such as 2025-03-01T12:00:00Z or 2025-03-01T13:00:00+01:00 (the events from then on)", v)
}

// cliStore is what the commands that read or write a cluster's state
// beside the record (events, pause, resume) need of the cluster store.
type cliStore interface {
	eventReader
	AppendEvent(e reconcile.Event) error
	LoadPause(cluster string) (reconcile.Pause, error)
	SavePause(cluster string, ps reconcile.Pause) error
	reconcile.Authorities
}

// clusterStore opens the cluster store of f: the state directory, or with
// pacsd on every host (daemon.etcd) etcd, connected as the service
// connects; done lets it go.
func (c *cli) clusterStore(f *spec.File) (store cliStore, done func(), err error) {
	if !f.EveryHost() {
		return &state.Store{Dir: f.Daemon.StateDir}, func() {}, nil
	}
	m := &everyHost{host: hostOf("", c.getenv)}
	e, err := m.etcd(f)
	if err != nil {
		return nil, nil, err
	}
	return e, m.close, nil
}

// writeEvents prints evs as a table, "no events" when there is none.
func writeEvents(w io.Writer, evs []reconcile.Event) error {
	if len(evs) == 0 {
		_, err := fmt.Fprintln(w, "no events")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tCLUSTER\tNODE\tKIND\tRESULT\tDURATION\tREASON")
	for _, e := range evs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.At.Local().Format(time.RFC3339), eventCell(e.Cluster), eventCell(e.Node),
			eventCell(e.Kind), eventCell(e.Result), eventCell(e.Duration), eventCell(e.Reason))
	}
	return tw.Flush()
}

// eventCell is s as one cell of the table: "-" when empty, on one line,
// without the tabs that would start another cell.
func eventCell(s string) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\t' || r == '\n' || r == '\r' }), " ")
	if s == "" {
		return "-"
	}
	return s
}

// writeEventsJSON prints evs as a JSON array ([] when there is none).
func writeEventsJSON(w io.Writer, evs []reconcile.Event) error {
	if evs == nil {
		evs = []reconcile.Event{}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(evs)
}
