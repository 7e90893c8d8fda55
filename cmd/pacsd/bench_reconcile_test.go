package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pacsd/pacsd/internal/bench"
	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// ProfileEnv names a directory: when set, the pass scenario writes the CPU
// profile of each cluster size's passes there (pass-<nodes>.pprof).
const profileEnv = "PACSD_BENCH_PROFILE"

// TestBenchReconcilePass measures a reconcile pass with nothing to do (the
// daemon's pass on a converged cluster: Observe, then Plan, which returns no
// action) on one cluster of 3, then 6, then 12 nodes, grown by apply. Each
// size runs 20 × PACSD_BENCH_RUNS passes after two to warm up. Targets:
// under 50 ms at 12 nodes, and growth at most linear (12 nodes at most 4
// times 3 nodes). The engine and server calls of the passes are timed too
// and logged, to say where the time goes.
func TestBenchReconcilePass(t *testing.T) {
	bench.Require(t)
	e := e2e.Require(t)
	sizes := []int{3, 6, 12}
	passes := 20 * bench.Runs(5)
	tp := benchTopology(t, e, nodeNames(sizes[0])...)
	medians, reused := map[int]float64{}, map[int]float64{}
	samples := map[int]bench.Sample{}
	for _, n := range sizes {
		tp.nodes = nodeNames(n)
		tp.write(t)
		tp.apply(t)
		s, calls := measurePasses(t, tp, passes, n, false)
		samples[n] = s
		medians[n] = s.Median().Seconds() * 1e3
		t.Logf("%d nodes: %d passes, median %.1f ms, %.2f ms per node; per pass, the engine and server calls (side by side, so they add up to more than the pass):\n%s",
			n, len(s), medians[n], medians[n]/float64(n), calls)
		kept, calls := measurePasses(t, tp, passes, n, true)
		reused[n] = kept.Median().Seconds() * 1e3
		t.Logf("%d nodes, what if each node's server connection were kept from pass to pass (not what pacsd does today): median %.1f ms; per pass:\n%s",
			n, reused[n], calls)
	}
	const scenario = "a reconcile pass with nothing to do (Observe + Plan) on one converged cluster"
	for _, n := range sizes {
		var target bench.Target
		if n == sizes[len(sizes)-1] {
			target = bench.Max("<", 50)
		}
		r := bench.NewRow(fmt.Sprintf("pass-%d", n), fmt.Sprintf("%s of %d nodes", scenario, n), "ms",
			bench.NewSide(fmt.Sprintf("Observe + Plan, %d nodes", n), samples[n].Millis()), nil, target)
		r.Note = fmt.Sprintf("%.2f ms per node; with each node's server connection kept from pass to pass (a what-if, not pacsd today): %.1f ms",
			medians[n]/float64(n), reused[n])
		bench.Record(t, r)
	}
	// Growth: the largest cluster against the smallest scaled linearly.
	small, large := sizes[0], sizes[len(sizes)-1]
	scale := float64(large) / float64(small)
	linear := make([]float64, len(samples[small]))
	for i, v := range samples[small].Millis() {
		linear[i] = v * scale
	}
	lin := bench.NewSide(fmt.Sprintf("%d nodes × %g (linear growth)", small, scale), linear)
	r := bench.NewRow("pass-growth", fmt.Sprintf("%s: %d nodes against %d nodes grown linearly", scenario, large, small), "ms",
		bench.NewSide(fmt.Sprintf("Observe + Plan, %d nodes", large), samples[large].Millis()), &lin, bench.Ratio("<=", 1))
	r.Note = fmt.Sprintf("per node: %.2f ms at %d nodes, %.2f ms at %d, %.2f ms at %d", medians[sizes[0]]/float64(sizes[0]), sizes[0],
		medians[sizes[1]]/float64(sizes[1]), sizes[1], medians[large]/float64(large), large)
	bench.Record(t, r)
}

// nodeNames returns db1 .. dbN.
func nodeNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("db%d", i+1)
	}
	return names
}

// measurePasses runs passes passes of Observe + Plan on tp's cluster, after
// two to warm up, each of which must plan nothing, and returns their
// durations and a summary of the engine and server calls of one pass. With
// keep, each node's server connection is opened once and used by every
// pass (what a pool would do), to show what that would save.
func measurePasses(t *testing.T, tp *topology, passes, nodes int, keep bool) (bench.Sample, string) {
	t.Helper()
	f, diags := spec.ParseFile(tp.path)
	if diags.HasErrors() {
		t.Fatalf("%s: %s", tp.path, diags.Error())
	}
	c := f.Clusters[0]
	d, err := deps(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := &callTimes{}
	for host, rt := range d.Runtimes {
		d.Runtimes[host] = timedRuntime{Runtime: rt, calls: calls}
	}
	d.DB = timedDB{Database: d.DB, calls: calls}
	if keep {
		k := &keptDB{Database: d.DB, conns: map[string]reconcile.DBConn{}}
		defer k.closeAll()
		d.DB = k
	}
	ctx := context.Background()
	pass := func() time.Duration {
		start := time.Now()
		obs, err := reconcile.Observe(ctx, c, d)
		if err != nil {
			t.Fatalf("%d nodes: Observe: %v", nodes, err)
		}
		actions, problems := reconcile.Plan(c, obs, d.Matches)
		took := time.Since(start)
		if len(actions) != 0 || len(problems) != 0 {
			t.Fatalf("%d nodes: the cluster is not converged: actions %v, problems %v", nodes, actions, problems)
		}
		return took
	}
	pass()
	pass()
	calls.reset()
	if dir := os.Getenv(profileEnv); dir != "" && !keep {
		path := filepath.Join(dir, fmt.Sprintf("pass-%d.pprof", nodes))
		pf, err := os.Create(path)
		if err != nil {
			t.Fatalf("while creating the CPU profile (%s): %v", profileEnv, err)
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			t.Fatal(err)
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = pf.Close()
			t.Logf("CPU profile of %d passes on %d nodes: %s", passes, nodes, path)
		}()
	}
	var s bench.Sample
	for i := 0; i < passes; i++ {
		s = append(s, pass())
	}
	return s, calls.summary(passes)
}

// callTimes adds up the wall time of the adapter calls of the passes, per
// method.
type callTimes struct {
	mu sync.Mutex
	n  map[string]int
	d  map[string]time.Duration
}

func (c *callTimes) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n, c.d = map[string]int{}, map[string]time.Duration{}
}

// since records one call of method that began at start.
func (c *callTimes) since(method string, start time.Time) {
	took := time.Since(start)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n, c.d = map[string]int{}, map[string]time.Duration{}
	}
	c.n[method]++
	c.d[method] += took
}

// summary lists, per pass, each method's calls and their mean wall time,
// the costliest first.
func (c *callTimes) summary(passes int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	methods := make([]string, 0, len(c.n))
	for m := range c.n {
		methods = append(methods, m)
	}
	slices.SortFunc(methods, func(a, b string) int { return int(c.d[b] - c.d[a]) })
	var b strings.Builder
	for _, m := range methods {
		fmt.Fprintf(&b, "  %-36s %5.1f calls, %6.2f ms each, %6.2f ms in all\n", m, float64(c.n[m])/float64(passes),
			float64(c.d[m].Microseconds())/1e3/float64(c.n[m]), float64(c.d[m].Microseconds())/1e3/float64(passes))
	}
	return b.String()
}

// timedRuntime times the engine calls a pass makes.
type timedRuntime struct {
	reconcile.Runtime
	calls *callTimes
}

func (r timedRuntime) NetworkInspect(ctx context.Context, name, cluster string) (*reconcile.NetworkState, error) {
	defer r.calls.since("engine NetworkInspect", time.Now())
	return r.Runtime.NetworkInspect(ctx, name, cluster)
}

func (r timedRuntime) ImageInspect(ctx context.Context, ref string) (*reconcile.ImageState, error) {
	defer r.calls.since("engine ImageInspect", time.Now())
	return r.Runtime.ImageInspect(ctx, ref)
}

func (r timedRuntime) ContainerInspect(ctx context.Context, name, cluster, node string) (*reconcile.ContainerState, error) {
	defer r.calls.since("engine ContainerInspect", time.Now())
	return r.Runtime.ContainerInspect(ctx, name, cluster, node)
}

func (r timedRuntime) NodeContainers(ctx context.Context, cluster, node string) ([]string, error) {
	defer r.calls.since("engine NodeContainers (list by label)", time.Now())
	return r.Runtime.NodeContainers(ctx, cluster, node)
}

func (r timedRuntime) ReadFiles(ctx context.Context, id string, paths []string) (map[string][]byte, error) {
	defer r.calls.since("engine ReadFiles", time.Now())
	return r.Runtime.ReadFiles(ctx, id, paths)
}

func (r timedRuntime) DataInspect(ctx context.Context, image string, m reconcile.Mount) (reconcile.DataState, error) {
	defer r.calls.since("engine DataInspect", time.Now())
	return r.Runtime.DataInspect(ctx, image, m)
}

// timedDB times the server calls a pass makes.
type timedDB struct {
	reconcile.Database
	calls *callTimes
}

func (db timedDB) Connect(ctx context.Context, addr, user string, password spec.Secret, database string) (reconcile.DBConn, error) {
	defer db.calls.since("server Connect (TCP, SCRAM)", time.Now())
	conn, err := db.Database.Connect(ctx, addr, user, password, database)
	if err != nil {
		return nil, err
	}
	return timedConn{DBConn: conn, calls: db.calls}, nil
}

type timedConn struct {
	reconcile.DBConn
	calls *callTimes
}

func (c timedConn) State(ctx context.Context) (*reconcile.DBState, error) {
	defer c.calls.since("server State", time.Now())
	return c.DBConn.State(ctx)
}

func (c timedConn) ReadFiles(ctx context.Context, paths, digests []string) (map[string][]byte, error) {
	defer c.calls.since("server ReadFiles", time.Now())
	return c.DBConn.ReadFiles(ctx, paths, digests)
}

func (c timedConn) Close() {
	defer c.calls.since("server Close", time.Now())
	c.DBConn.Close()
}

// keptDB opens one connection per server and user and hands it out again
// on every Connect; Close of a handed-out connection keeps it open.
type keptDB struct {
	reconcile.Database
	mu    sync.Mutex
	conns map[string]reconcile.DBConn
}

func (k *keptDB) Connect(ctx context.Context, addr, user string, password spec.Secret, database string) (reconcile.DBConn, error) {
	key := addr + " " + user + " " + database
	k.mu.Lock()
	conn := k.conns[key]
	k.mu.Unlock()
	if conn == nil {
		var err error
		if conn, err = k.Database.Connect(ctx, addr, user, password, database); err != nil {
			return nil, err
		}
		k.mu.Lock()
		k.conns[key] = conn
		k.mu.Unlock()
	}
	return keptConn{conn}, nil
}

func (k *keptDB) closeAll() {
	for _, c := range k.conns {
		c.Close()
	}
}

type keptConn struct{ reconcile.DBConn }

func (keptConn) Close() {}
