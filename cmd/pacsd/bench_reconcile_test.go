package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pacsd/pacsd/internal/bench"
	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// profileEnv names a directory: when set, the pass scenario writes the CPU
// profile of its passes there (passes.pprof), each sample labelled with the
// cluster's size (nodes) and whether connections were kept (conns): filter
// with go tool pprof -tagfocus nodes=12.
const profileEnv = "PACSD_BENCH_PROFILE"

// TestBenchReconcilePass measures a reconcile pass with nothing to do (the
// daemon's pass on a converged cluster: Observe, then Plan, which returns no
// action) on three clusters of 3, 6 and 12 nodes, converged by apply, their
// passes taken in turn (20 × PACSD_BENCH_RUNS each, after two to warm up)
// so that the load of the machine weighs on every size alike. Targets: under
// 50 ms at 12 nodes, and growth at most linear (12 nodes at most 4 times 3
// nodes). The engine and server calls of the passes are timed too and
// logged, to say where the time goes, and every pass is taken a second time
// with each node's server connection kept from pass to pass (a what-if: what
// a connection pool would save; pacsd connects anew in every pass).
func TestBenchReconcilePass(t *testing.T) {
	bench.Require(t)
	sizes := []int{3, 6, 12}
	passes := 20 * bench.Runs(5)
	var ps []*passer
	for _, n := range sizes {
		e := e2e.Require(t)
		tp := benchTopology(t, e, nodeNames(n)...)
		tp.apply(t)
		ps = append(ps, newPasser(t, tp, n))
	}
	for _, p := range ps {
		for i := 0; i < 2; i++ {
			p.pass(t, false)
			p.pass(t, true)
		}
		p.calls.reset()
		p.keptCalls.reset()
	}
	if dir := os.Getenv(profileEnv); dir != "" {
		path := filepath.Join(dir, "passes.pprof")
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
			t.Logf("CPU profile of the passes: %s (go tool pprof -tagfocus nodes=12 -top pacsd.test %s)", path, path)
		}()
	}
	for i := 0; i < passes; i++ {
		for j := range ps {
			p := ps[(i+j)%len(ps)] // each size goes first in turn
			p.today = append(p.today, p.pass(t, false))
			p.kept = append(p.kept, p.pass(t, true))
		}
	}
	const scenario = "a reconcile pass with nothing to do (Observe + Plan) on one converged cluster"
	median := func(s bench.Sample) float64 { return s.Median().Seconds() * 1e3 }
	for _, p := range ps {
		t.Logf("%d nodes: %d passes, median %.1f ms, %.2f ms per node; per pass, the engine and server calls (side by side, so they add up to more than the pass):\n%s",
			p.nodes, len(p.today), median(p.today), median(p.today)/float64(p.nodes), p.calls.summary(passes))
		t.Logf("%d nodes, what if each node's server connection were kept from pass to pass (not what pacsd does today): median %.1f ms; per pass:\n%s",
			p.nodes, median(p.kept), p.keptCalls.summary(passes))
	}
	for i, p := range ps {
		var target bench.Target
		if i == len(ps)-1 {
			target = bench.Max("<", 50)
		}
		r := bench.NewRow(fmt.Sprintf("pass-%d", p.nodes), fmt.Sprintf("%s of %d nodes", scenario, p.nodes), "ms",
			bench.NewSide(fmt.Sprintf("Observe + Plan, %d nodes", p.nodes), p.today.Millis()), nil, target)
		r.Note = fmt.Sprintf("%.2f ms per node; with each node's server connection kept from pass to pass (a what-if, not pacsd today): %.1f ms",
			median(p.today)/float64(p.nodes), median(p.kept))
		bench.Record(t, r)
	}
	// Growth: the largest cluster against the smallest scaled linearly.
	small, large := ps[0], ps[len(ps)-1]
	scale := float64(large.nodes) / float64(small.nodes)
	linear := small.today.Millis()
	for i := range linear {
		linear[i] *= scale
	}
	lin := bench.NewSide(fmt.Sprintf("%d nodes × %g (linear growth)", small.nodes, scale), linear)
	r := bench.NewRow("pass-growth", fmt.Sprintf("%s: %d nodes against %d nodes grown linearly", scenario, large.nodes, small.nodes), "ms",
		bench.NewSide(fmt.Sprintf("Observe + Plan, %d nodes", large.nodes), large.today.Millis()), &lin, bench.Ratio("<=", 1))
	var per []string
	for _, p := range ps {
		per = append(per, fmt.Sprintf("%.2f ms at %d nodes", median(p.today)/float64(p.nodes), p.nodes))
	}
	r.Note = "per node: " + strings.Join(per, ", ")
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

// passer takes reconcile passes on one converged cluster, through pacsd's
// own adapters (as `pacsd run` wires them) with their calls timed.
type passer struct {
	nodes            int
	c                *spec.Cluster
	d, dKept         reconcile.Deps
	calls, keptCalls *callTimes
	// today and kept are the durations of the passes as pacsd takes them
	// and with each node's server connection kept.
	today, kept bench.Sample
}

func newPasser(t *testing.T, tp *topology, nodes int) *passer {
	t.Helper()
	f, diags := spec.ParseFile(tp.path)
	if diags.HasErrors() {
		t.Fatalf("%s: %s", tp.path, diags.Error())
	}
	p := &passer{nodes: nodes, c: f.Clusters[0], calls: &callTimes{}, keptCalls: &callTimes{}}
	timed := func(calls *callTimes) reconcile.Deps {
		d, err := deps(f, nil)
		if err != nil {
			t.Fatal(err)
		}
		for host, rt := range d.Runtimes {
			d.Runtimes[host] = timedRuntime{Runtime: rt, calls: calls}
		}
		d.DB = timedDB{Database: d.DB, calls: calls}
		return d
	}
	p.d = timed(p.calls)
	p.dKept = timed(p.keptCalls)
	k := &keptDB{Database: p.dKept.DB, conns: map[string]reconcile.DBConn{}}
	t.Cleanup(k.closeAll)
	p.dKept.DB = k
	return p
}

// pass takes one pass, which must plan nothing, and returns how long it took.
func (p *passer) pass(t *testing.T, keep bool) (took time.Duration) {
	t.Helper()
	d, conns := p.d, "new"
	if keep {
		d, conns = p.dKept, "kept"
	}
	pprof.Do(context.Background(), pprof.Labels("nodes", strconv.Itoa(p.nodes), "conns", conns), func(ctx context.Context) {
		start := time.Now()
		obs, err := reconcile.Observe(ctx, p.c, d)
		if err != nil {
			t.Fatalf("%d nodes: Observe: %v", p.nodes, err)
		}
		actions, problems := reconcile.Plan(p.c, obs, d.Matches)
		took = time.Since(start)
		if len(actions) != 0 || len(problems) != 0 {
			t.Fatalf("%d nodes: the cluster is not converged: actions %v, problems %v", p.nodes, actions, problems)
		}
	})
	return took
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
