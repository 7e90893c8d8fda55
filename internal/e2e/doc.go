// Package e2e is the end-to-end test bed of pacsd: it talks to a real Docker
// engine and real PostgreSQL containers built from the local image (see image/).
//
// It is imported by tests only. A test calls Require, which skips the test with
// a message unless PACSD_E2E=1, and fails it (never skips) when PACSD_E2E=1 and
// the engine or the image is missing. Everything the harness creates carries the
// label io.pacsd.e2e=<run id> and is removed by label when the test ends, also
// when it fails.
//
// The harness offers: nodes started from the image with the official image's
// environment contract (passwords through POSTGRES_PASSWORD_FILE, never in the
// environment), SQL on any node over the cluster network, waits with deadlines
// (accepts writes, streaming, row visible), fault injection (kill, stop, pause,
// remove, network disconnect, exec, write a file into PGDATA) and the seed
// procedure done by hand (SeedProcedure), the baseline pacsd is measured against.
//
// For the fault matrix: a Writer records every acknowledged commit and checks
// that none is lost (CheckNoLoss), a Probe checks every 100 ms that at most one
// node accepts writes, and RequireTestHost runs a host of the multi-host test
// bed: a network namespace of its own with its own Docker engine and an
// address on a bridge shared with the other hosts (RequireSecondEngine is the
// first of them, an engine a test can stop or kill). No test engine runs in
// the machine's own network namespace, so none touches the machine engine's
// bridges. RequireTestHosts starts several at once. Each host's engine also
// listens over TLS at its address (TLSEndpoint, TLSFiles: certificates made
// for the test), so that pacsd reaches it through the network; a host can be
// partitioned and healed (Partition, Heal) and powered off and on (PowerOff,
// PowerOn), and can run an OpenSSH sshd of its own (sshd.go) for ssh://
// engines. The Probe reaches a node on a test host from inside that host's
// network namespace, so a partitioned node is still watched; its write goes
// through synchronous replication as a client's does.
//
// For the mode "pacsd on every host" (design section 10): StartEtcd runs one
// etcd member on loopback for tests of the etcd store, and StartEtcdCluster
// runs a member in each of several test hosts' namespaces, at the host's
// address (ports 2379 and 2380, plain http, data under the host's data
// root), whose members a test stops, kills and starts again; Healthy says
// whether a write goes through. TestHost.StartProcess runs any process (a
// pacsd, say) inside a host's namespace with a clean environment, its own
// process group and a log, to kill, stop, freeze, thaw and restart;
// LocalDockerEnv lets it reach its host's engine. A host's PowerOff kills
// its member and its processes with everything else of the host. etcd and
// etcdctl come from Debian's etcd-server and etcd-client (scripts/etcd.sh).
//
// A fault the harness injects is confirmed in place before the helper returns
// (every thread of a stopped process in state T, a paused container's cgroup
// frozen, a killed or stopped container's main process gone, a disconnected
// container no longer on the network), so that what a test measures next is
// the fault.
package e2e
