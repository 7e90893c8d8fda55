// Package faults is the fault matrix of design section 8 as one suite: the
// rows, the end-to-end tests that prove each, the record every run of a row
// leaves (one JSON line in the file PACSD_FAULTS_REPORT names), and the one
// table `make faults` prints from those records (cmd faulttable).
//
// A run is one injection of a row's fault in an end-to-end test that runs
// a writer recording every acknowledged commit and a probe checking every
// 100 ms that at most one node accepts writes (internal/e2e: Fault, Writer,
// Probe). The test harness writes the records; this package reads them and
// judges them. It imports nothing of the harness, so that the table printer
// runs without an engine.
package faults

import (
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/pacsd/pacsd/internal/jsonl"
)

// ReportEnv names the file each run is appended to as one line of JSON;
// `make faults` sets it and prints the table from it.
const ReportEnv = "PACSD_FAULTS_REPORT"

// LongEnv, set to 1, asks the long runs of the rows that have them (the
// seeded crash points: `make faults` and `make faults-long` set it); RunsEnv
// sets how many runs those rows make (`make faults-long`: 30 or more);
// SeedEnv replays the run of one seed.
const (
	LongEnv = "PACSD_FAULTS"
	RunsEnv = "PACSD_FAULTS_RUNS"
	SeedEnv = "PACSD_FAULT_SEED"
)

// Row is one row of the fault matrix.
type Row struct {
	// ID names the row in records and in the table.
	ID string
	// Fault, Injection and Expected are the row's words in design section 8.
	Fault, Injection, Expected string
	// Tests are the tests (in package Package) whose runs prove the row.
	Tests []string
	// NotBuilt, when set, says why no test proves the row yet: the table
	// lists it as a gap, and its absence of runs is no failure.
	NotBuilt string
}

// Package is the package the matrix's tests are in.
const Package = "./cmd/pacsd"

// The rows' IDs, for the tests that record runs of them.
const (
	StandbyGone         = "standby-gone"
	PrimaryKilled       = "primary-killed"
	PrimaryFrozen       = "primary-frozen"
	PrimaryCutOff       = "primary-cut-off"
	StandbyBehind       = "standby-behind"
	Switchover          = "switchover"
	ConfigEdited        = "config-edited"
	RoleChanged         = "role-changed"
	PacsdKilledMidWork  = "pacsd-killed-mid-work"
	TwoPacsd            = "two-pacsd"
	EngineRestarted     = "engine-restarted"
	StandbyDiskFull     = "standby-disk-full"
	PrimaryDiskFull     = "primary-disk-full"
	InvalidFile         = "invalid-file"
	StateWriteFails     = "state-write-fails"
	EngineUnreachable   = "engine-unreachable"
	HostPoweredOff      = "host-powered-off"
	HostPartitioned     = "host-partitioned"
	PacsdFrozen         = "pacsd-frozen"
	EtcdQuorumLost      = "etcd-quorum-lost"
	PacsdKilledAtRandom = "pacsd-killed-at-random"
	SlotPastMax         = "slot-past-max"
	ClockStepped        = "clock-stepped"
)

// Matrix is every row, in the order of design section 8, with the rows the
// matrix's issue added (a full primary volume, a stepped clock).
var Matrix = []Row{
	{ID: StandbyGone, Fault: "standby removed / stopped / killed", Injection: "docker rm -f, docker stop, docker kill",
		Expected: "recreated or restarted on its data, streaming again", Tests: []string{"TestE2EDrift", "TestE2ERun"}},
	{ID: PrimaryKilled, Fault: "primary killed (automatic failover)", Injection: "docker kill",
		Expected: "fence, promote the best standby within max_lag, repoint others, old primary rejoins as standby", Tests: []string{"TestE2EFailover", "TestE2EThreeHosts"}},
	{ID: PrimaryFrozen, Fault: "primary frozen", Injection: "docker pause",
		Expected: "treated as lost; fenced before promotion; after unpause it is a standby", Tests: []string{"TestE2EFailover"}},
	{ID: PrimaryCutOff, Fault: "primary cut off", Injection: "docker network disconnect",
		Expected: "same; never two writable nodes", Tests: []string{"TestE2EFailover"}},
	{ID: StandbyBehind, Fault: "standby too far behind", Injection: "pause standby, write > max_lag, kill primary",
		Expected: "no promotion; loud status", Tests: []string{"TestE2EFailoverRefusesLaggingStandby"}},
	{ID: Switchover, Fault: "planned switchover under load", Injection: "edit primary, or pacsd switchover",
		Expected: "no acknowledged write lost; old primary rejoins by pg_rewind", Tests: []string{"TestE2ESwitchover", "TestE2ESwitchoverBesideDaemon", "TestE2EThreeHosts", "TestE2EEveryHostSwitchover"}},
	{ID: ConfigEdited, Fault: "config edited by hand", Injection: "append to pg_hba.conf / pacsd.conf, ALTER SYSTEM",
		Expected: "put back and reloaded within one pass", Tests: []string{"TestE2EDrift"}},
	{ID: RoleChanged, Fault: "role dropped / password changed", Injection: "DROP ROLE, ALTER ROLE ... PASSWORD",
		Expected: "recreated / reset; standby reconnects", Tests: []string{"TestE2EDrift"}},
	{ID: PacsdKilledMidWork, Fault: "pacsd killed mid-basebackup / mid-promotion", Injection: "kill -9",
		Expected: "next start detects the partial state and finishes or redoes it; nothing half-built is ever started", Tests: []string{"TestE2EFailoverPacsdKilled", "TestE2ECrashPoints", "TestFaultCrashPoints"}},
	{ID: TwoPacsd, Fault: "two pacsd on one file", Injection: "start a second",
		Expected: "refuses with a clear message (lock in state_dir)", Tests: []string{"TestE2ERun"}},
	{ID: EngineRestarted, Fault: "Docker engine restarted", Injection: "restart dockerd",
		Expected: "back to converged, same primary, no needless failover", Tests: []string{"TestE2EEngineRestart", "TestE2EEngineRestartMidFailover"}},
	{ID: StandbyDiskFull, Fault: "disk full on a standby", Injection: "small tmpfs volume",
		Expected: "reported; no failover; recovers when space returns", Tests: []string{"TestE2EDiskFull"}},
	{ID: PrimaryDiskFull, Fault: "disk full on the primary", Injection: "small tmpfs volume",
		Expected: "writes refused while it answers: no failover, nothing moved; once stopped, a lost primary (fenced first); writes again when space returns", Tests: []string{"TestE2EDiskFull"}},
	{ID: InvalidFile, Fault: "invalid file saved", Injection: "any bad input of section 2",
		Expected: "last good spec kept, diagnostics logged, nothing touched", Tests: []string{"TestE2ERun"}},
	{ID: StateWriteFails, Fault: "state store write fails", Injection: "full tmpfs under state_dir during switchover/failover",
		Expected: "the record is never half-written; pacsd stops acting on that cluster and says so", Tests: []string{"TestE2EStateDirFull"}},
	{ID: EngineUnreachable, Fault: "primary's engine unreachable (one controller)", Injection: "partition the primary's host",
		Expected: "no promotion; reason in status/metrics; failover --confirm-fenced by an operator", Tests: []string{"TestE2EFailoverEngineUnreachable", "TestE2EThreeHosts"}},
	{ID: HostPoweredOff, Fault: "primary's host powered off (etcd mode)", Injection: "kill every process of its namespace, link down",
		Expected: "promotion after the lease TTL; no acknowledged commit lost (sync)", Tests: []string{"TestE2EEveryHostPowerOff"}},
	{ID: HostPartitioned, Fault: "primary's host partitioned, its pacsd alive", Injection: "link down",
		Expected: "it fences its own primary before the lease expires; then promotion", Tests: []string{"TestE2EEveryHostPartition"}},
	{ID: PacsdFrozen, Fault: "pacsd frozen on the primary's host", Injection: "SIGSTOP + partition",
		Expected: "synchronous replication holds commits on the old primary; nothing acknowledged is lost", Tests: []string{"TestE2EEveryHostPartition"}},
	{ID: EtcdQuorumLost, Fault: "etcd loses quorum", Injection: "stop two members",
		Expected: "no promotion anywhere", Tests: []string{"TestE2EEveryHostNoFailover", "TestE2EEveryHostFailsafe"}},
	{ID: PacsdKilledAtRandom, Fault: "pacsd killed at a random point", Injection: "SIGKILL at seeded moments",
		Expected: "next start converges; nothing half-built started", Tests: []string{"TestE2ECrashPoints", "TestFaultCrashPoints"}},
	{ID: SlotPastMax, Fault: "slot past max_slot_wal", Injection: "standby down, primary writes",
		Expected: "primary keeps running; standby rebuilt, data moved aside", Tests: []string{"TestE2ESlotPastMaxSlotWAL"}},
	{ID: ClockStepped, Fault: "clock stepped during a failover", Injection: "the machine's clock stepped forward and back",
		Expected: "nothing changes: timers use the monotonic clock", Tests: []string{"TestFaultClockStep"}},
}

// RowOf returns the row with id, or false.
func RowOf(id string) (Row, bool) {
	i := slices.IndexFunc(Matrix, func(r Row) bool { return r.ID == id })
	if i < 0 {
		return Row{}, false
	}
	return Matrix[i], true
}

// TestPattern is the -run pattern of every test that proves a row.
func TestPattern() string {
	var names []string
	for _, r := range Matrix {
		for _, t := range r.Tests {
			if !slices.Contains(names, t) {
				names = append(names, t)
			}
		}
	}
	slices.Sort(names)
	for i, n := range names {
		names[i] = regexp.QuoteMeta(n)
	}
	return "^(" + strings.Join(names, "|") + ")$"
}

// Record is one run of one row, as the harness writes it when the test that
// ran it ends.
type Record struct {
	Row  string `json:"row"`
	Test string `json:"test"`
	// Seed is the seed of a seeded run (crash points), replayed with
	// PACSD_FAULT_SEED; 0 for the others.
	Seed int64 `json:"seed,omitempty"`
	// What says what this run injected, in a few words.
	What string `json:"what,omitempty"`
	// Passed: the test (or subtest) that ran it did not fail.
	Passed bool `json:"passed"`
	// Writer: a writer's acknowledged commits were checked against the
	// primary at the end (CheckNoLoss); Acked is how many there were, Lost
	// how many of them were missing (every run of a test counts the losses
	// its writer found, since a loss cannot be told to one fault).
	Writer bool `json:"writer"`
	Acked  int  `json:"acked"`
	Lost   int  `json:"lost"`
	// Probe: a probe watched every node and was checked; ProbeTicks is how
	// many ticks it took in the whole test, TwoWritableMS the longest time
	// two or more nodes accepted writes at once during this run, in ms
	// (from the first such tick to one interval after the last one in a row).
	Probe         bool    `json:"probe"`
	ProbeTicks    int     `json:"probe_ticks"`
	TwoWritableMS float64 `json:"two_writable_ms"`
	// ConvergedMS is the time from the injection until the cluster was as
	// the row expects again (converged, or the refusal said), in ms; -1 when
	// the run did not get there.
	ConvergedMS float64 `json:"converged_ms"`
	// Error is the first failure of the test, when it failed.
	Error string `json:"error,omitempty"`
}

// ReadRecords reads the records the harness appended, one JSON object a
// line; a line that is not a record is an error naming its number.
func ReadRecords(r io.Reader) ([]Record, error) {
	return jsonl.Read(r, "record of a fault run", func(rec Record) error {
		if _, ok := RowOf(rec.Row); !ok {
			return fmt.Errorf("a run of no row of the matrix: %q", rec.Row)
		}
		return nil
	})
}
