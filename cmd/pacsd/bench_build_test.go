package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/volume"

	"github.com/pacsd/pacsd/internal/bench"
	"github.com/pacsd/pacsd/internal/e2e"
)

// buildSizeEnv overrides the size of the database the standby build scenario
// copies, in MB (default 1000), for quick trials of the scenario itself.
const buildSizeEnv = "PACSD_BENCH_BUILD_MB"

// TestBenchStandbyBuild measures the build of a standby from a primary that
// holds 1 GB: `pacsd apply` with the standby's container and volume gone,
// until it streams, against a bare pg_basebackup of the same primary into an
// empty volume by hand (internal/bench/scripts/basebackup.sh), alternating
// the two. Both are reported as throughput (the primary's databases in MB,
// divided by the time): target, pacsd at least 0.9 of the bare copy's.
func TestBenchStandbyBuild(t *testing.T) {
	bench.Require(t)
	e := e2e.Require(t)
	mb := 1000
	if v, err := strconv.Atoi(os.Getenv(buildSizeEnv)); err == nil && v > 0 {
		mb = v
	}
	tp := benchTopology(t, e, "db1")
	tp.apply(t)
	primary := tp.node("db1")
	size := fillDatabase(t, primary, int64(mb)*1e6)
	t.Logf("the primary's databases hold %.0f MB", float64(size)/1e6)

	tp.nodes = []string{"db1", "db2"}
	tp.write(t)
	secrets := t.TempDir()
	pgpass := "*:5432:*:replicator:" + strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(tp.replPW) + "\n"
	if err := os.WriteFile(filepath.Join(secrets, "replication.pgpass"), []byte(pgpass), 0o600); err != nil {
		t.Fatal(err)
	}
	var copies []time.Duration // pacsd's base-backup action alone
	n := 0
	pacsd := func(t *testing.T) time.Duration {
		removeNode(t, e, tp.container("db2"))
		primary.ExecSQL("CHECKPOINT")
		start := time.Now()
		code, stdout, stderr := runCLI(t, nil, "apply", "-f", tp.path)
		if code != exitOK {
			t.Fatalf("pacsd apply: exit %d\n%s%s", code, stdout, stderr)
		}
		end := pollFast(t, time.Minute, "db2 streaming", tp.node("db2").Streaming)
		if d, ok := actionDuration(stderr, "base-backup"); ok {
			copies = append(copies, d)
		} else {
			t.Logf("pacsd apply logged no base-backup action with a duration:\n%s", stderr)
		}
		return end.Sub(start)
	}
	bare := func(t *testing.T) time.Duration {
		n++
		vol := fmt.Sprintf("bench-%s-bare-%d", e.RunID, n)
		if _, err := e.Docker.VolumeCreate(e.Ctx(time.Minute), volume.CreateOptions{Name: vol, Labels: e.Labels()}); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = e.Docker.VolumeRemove(context.Background(), vol, true) }()
		primary.ExecSQL("CHECKPOINT")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		env := []string{"IMAGE=" + e.Image, "NETWORK=" + tp.name, "HOST=" + tp.container("db1"), "VOLUME=" + vol,
			"NAME=" + vol, "LABEL=" + e2e.LabelRun + "=" + e.RunID, "SECRETS=" + secrets}
		start := time.Now()
		if _, _, err := bench.RunScript(ctx, bench.BaseBackupScript, env); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	p, b := bench.Compare(t, "standby build from a 1 GB primary", bench.Runs(5), pacsd, bare)
	mbps := func(s bench.Sample) []float64 {
		v := make([]float64, len(s))
		for i, d := range s {
			v[i] = float64(size) / 1e6 / d.Seconds()
		}
		return v
	}
	base := bench.NewSide("a bare pg_basebackup -X stream -c fast into an empty volume (internal/bench/scripts/basebackup.sh)", mbps(b))
	r := bench.NewRow("standby-build", fmt.Sprintf("the build of a standby from a primary holding %.0f MB, as throughput", float64(size)/1e6), "MB/s",
		bench.NewSide("pacsd apply, the standby's container and volume gone, until it streams", mbps(p)), &base, bench.Ratio(">=", 0.9))
	if len(copies) > 0 {
		r.Note = fmt.Sprintf("pacsd's base-backup action alone: median %.0f MB/s (%.2f s)", float64(size)/1e6/bench.Sample(copies).Median().Seconds(),
			bench.Sample(copies).Median().Seconds())
	}
	bench.Record(t, r)
}

// fillDatabase adds rows of about 1 kB to a table on the primary until its
// databases hold at least size bytes, and returns what they hold.
func fillDatabase(t *testing.T, n *e2e.Node, size int64) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	conn, err := n.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	have := func() int64 {
		var b int64
		if err := conn.QueryRow(ctx, "SELECT sum(pg_database_size(oid))::bigint FROM pg_database").Scan(&b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE bench_fill (id bigint, pad text)"); err != nil {
		t.Fatal(err)
	}
	// Rows of about 1 kB that stay inline and uncompressed (below the TOAST
	// threshold): about 8 a page, 100 MB a batch.
	start := time.Now()
	for next := int64(1); have() < size; next += 100_000 {
		if _, err := conn.Exec(ctx, "INSERT INTO bench_fill SELECT g, repeat(md5(g::text), 30) FROM generate_series($1::bigint, $1::bigint + 99999) g", next); err != nil {
			t.Fatalf("while filling the primary: %v", err)
		}
	}
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		t.Fatal(err)
	}
	got := have()
	t.Logf("filled the primary to %.0f MB in %.1fs", float64(got)/1e6, time.Since(start).Seconds())
	return got
}

// removeNode removes a node's container and its volumes (pacsd builds it
// again from nothing), when it exists.
func removeNode(t *testing.T, e *e2e.Env, name string) {
	t.Helper()
	ctx := e.Ctx(2 * time.Minute)
	c, err := e.Docker.ContainerInspect(ctx, name)
	if err != nil {
		return // absent
	}
	if err := e.Docker.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
		t.Fatalf("while removing container %s: %v", name, err)
	}
	for _, m := range c.Mounts {
		if m.Type == "volume" {
			if err := e.Docker.VolumeRemove(ctx, m.Name, true); err != nil {
				t.Fatalf("while removing volume %s of %s: %v", m.Name, name, err)
			}
		}
	}
}

// actionDuration returns the duration of the first action of kind that pacsd
// logged as done (JSON log lines).
func actionDuration(log, kind string) (time.Duration, bool) {
	for _, line := range strings.Split(log, "\n") {
		var l struct{ Msg, Action, Duration string }
		if json.Unmarshal([]byte(line), &l) != nil || l.Msg != "action done" || l.Action != kind {
			continue
		}
		if d, err := time.ParseDuration(l.Duration); err == nil {
			return d, true
		}
	}
	return 0, false
}
