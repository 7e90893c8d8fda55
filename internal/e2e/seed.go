package e2e

import (
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pacsd/pacsd/pkg/spec"
)

// Seed is the result of SeedProcedure: a primary and its streaming standbys.
type Seed struct {
	Primary  *Node
	Standbys []*Node
	// Steps records how long each step of the procedure took, in order.
	Steps []Step
}

// Standby returns the first standby.
func (s *Seed) Standby() *Node { return s.Standbys[0] }

// Step is one timed step of a procedure.
type Step struct {
	Name     string
	Duration time.Duration
}

// SeedOptions describe the cluster SeedProcedure builds. Zero fields take the
// seed's values: user pacs, database pacsdb, role replicator, nodes db1 and db2.
type SeedOptions struct {
	User                string // superuser (POSTGRES_USER)
	Password            string // superuser password
	Database            string // POSTGRES_DB
	ReplicationUser     string // replication role
	ReplicationPassword string // password of the replication role
	Primary             string // primary node name
	Standbys            []string
}

func (o *SeedOptions) defaults() {
	if o.User == "" {
		o.User = "pacs"
	}
	if o.Database == "" {
		o.Database = "pacsdb"
	}
	if o.ReplicationUser == "" {
		o.ReplicationUser = "replicator"
	}
	if o.Primary == "" {
		o.Primary = "db1"
	}
	if o.Standbys == nil {
		o.Standbys = []string{"db2"}
	}
}

// SeedOptionsFor returns the options that build cluster c of a topology file by
// hand: its superuser, database, replication role, primary and standbys. Data
// lives in volumes of the run, never in the file's host directories.
func SeedOptionsFor(c *spec.Cluster) SeedOptions {
	o := SeedOptions{
		User: c.Superuser.Name, Password: c.Superuser.Password.Reveal(), Database: c.Database,
		ReplicationUser: c.Replication.User, ReplicationPassword: c.Replication.Password.Reveal(),
		Primary: c.Primary, Standbys: []string{},
	}
	for _, n := range c.Nodes {
		if n.Name != c.Primary {
			o.Standbys = append(o.Standbys, n.Name)
		}
	}
	return o
}

// SeedProcedure does by hand, through the harness, what the dcm4chee image's
// README asks an operator to do, with the modern equivalents pacsd uses
// (scram-sha-256 instead of trust, a physical slot per standby, -X stream,
// standby.signal through -R, a passfile instead of a password on a command
// line):
//
//  1. start the primary; 2. open pg_hba.conf and postgresql.conf for
//     replication; 3. restart it; 4. create the replication role and slots;
//  5. pg_basebackup each standby into its own volume in a one-off container;
//  6. start each standby on its volume and wait until it streams.
//
// It is the baseline that pacsd's own convergence is measured against.
func (e *Env) SeedProcedure(o SeedOptions) *Seed {
	e.T.Helper()
	o.defaults()
	s := &Seed{}
	step := func(name string, f func()) {
		e.T.Helper()
		start := time.Now()
		f()
		s.Steps = append(s.Steps, Step{name, time.Since(start)})
	}
	uid, gid := e.PostgresIDs()
	passfile := File{
		Path:    secretsDir + "/replication.pgpass",
		Content: []byte(fmt.Sprintf("*:5432:*:%s:%s\n", pgpassEscape(o.ReplicationUser), pgpassEscape(o.ReplicationPassword))),
		Mode:    0o600, UID: uid, GID: gid,
	}
	node := func(name, vol string, files ...File) *Node {
		return e.StartNode(NodeOptions{Name: name, Volume: vol, User: o.User, Password: o.Password, Database: o.Database, Files: files})
	}

	step("start primary", func() {
		s.Primary = node(o.Primary, "")
		s.Primary.WaitWritable(90 * time.Second)
	})
	step("configure replication", func() {
		s.Primary.AppendPGDATA("pg_hba.conf", fmt.Sprintf("host replication %s samenet scram-sha-256\n", o.ReplicationUser))
		s.Primary.AppendPGDATA("postgresql.conf",
			"wal_level = replica\nmax_wal_senders = 10\nmax_replication_slots = 10\nhot_standby = on\nwal_log_hints = on\n")
	})
	step("restart primary", func() {
		s.Primary.Restart()
		s.Primary.WaitWritable(90 * time.Second)
	})
	step("create replication role and slots", func() {
		s.Primary.ExecSQL(fmt.Sprintf("CREATE ROLE %s REPLICATION LOGIN PASSWORD %s",
			pgx.Identifier{o.ReplicationUser}.Sanitize(), quoteLiteral(o.ReplicationPassword)))
		for _, sb := range o.Standbys {
			s.Primary.ExecSQL("SELECT pg_create_physical_replication_slot($1)", slotName(sb))
		}
	})
	for _, sb := range o.Standbys {
		vol := e.Volume(sb + "-data")
		step("pg_basebackup "+sb, func() {
			out, code, err := e.RunOnce("basebackup", []string{"bash", "-ec",
				"install -d -o postgres -g postgres -m 0700 " + PGDATA + " && " +
					"exec runuser -u postgres -- env PGPASSFILE=" + passfile.Path +
					" pg_basebackup -h " + o.Primary + " -p 5432 -U " + o.ReplicationUser + " -D " + PGDATA +
					" -X stream -S " + slotName(sb) + " -R -P -v"},
				[]string{vol + ":" + dataMount}, passfile)
			if err != nil || code != 0 {
				e.T.Fatalf("node %s: while running pg_basebackup: exit %d: %v\n%s", sb, code, err, out)
			}
		})
		step("start standby "+sb, func() {
			n := node(sb, vol, passfile)
			n.WaitStreaming(90 * time.Second)
			s.Standbys = append(s.Standbys, n)
		})
	}
	return s
}

// slotName is the physical replication slot of a standby: its node name with
// characters a slot name cannot hold replaced.
func slotName(node string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return '_'
	}, node)
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func pgpassEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(s)
}

// AppendPGDATA appends text to a file in the node's PGDATA, as an operator's
// `echo ... >> file` would.
func (n *Node) AppendPGDATA(rel, text string) {
	n.env.T.Helper()
	n.WriteFile(rel, []byte(n.ReadFile(rel)+text), 0o600)
}
