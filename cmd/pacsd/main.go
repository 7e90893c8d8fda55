package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Exit codes shared by every subcommand.
const (
	exitOK      = 0
	exitProblem = 1
	exitUsage   = 2
)

// defaultFile is the topology file used when neither --file nor PACSD_FILE is given.
const defaultFile = "/etc/pacsd/pacs.hcl"

// cli is what a subcommand may use of its process: arguments aside, its output
// streams and environment, so that tests can run it in memory.
type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

// command is one subcommand: later ones (plan, apply, run, status, switchover)
// are added to commands below.
type command struct {
	name    string
	args    string // argument synopsis for the usage text
	summary string
	run     func(c *cli, args []string) int
}

var commands []command

func init() {
	commands = []command{
		{"validate", "[-f FILE] [--json]", "check the topology file and explain every problem in it", runValidate},
		{"plan", "[-f FILE] [--json]", "show what apply would change (exit 2 when changes are pending)", runPlan},
		{"apply", "[-f FILE]", "converge every cluster of the file once", runApply},
		{"switchover", "NODE [-f FILE]", "make NODE the primary now (no acknowledged write is lost)", runSwitchover},
		{"failover", "NODE [-f FILE]", "make standby NODE the primary when the primary is lost (fenced first)", runFailover},
		{"run", "[-f FILE]", "keep every cluster converged to the file (the service)", runRun},
		{"conninfo", "[CLUSTER] [-f FILE]", "print libpq and JDBC URLs that find the acting primary (or a standby)", runConninfo},
		{"status", "[-f FILE] [--host NAME]", "ask the running daemon: last passes, leader, primary's lease, hosts", runStatus},
		{"events", "[-f FILE] [CLUSTER] [--since DURATION|TIME] [--json]", "show what pacsd did and decided not to do, oldest first", runEvents},
		{"pause", "CLUSTER [-f FILE]", "maintenance: pacsd observes and reports the cluster, and takes no action on it", runPause},
		{"resume", "CLUSTER [-f FILE]", "end maintenance: pacsd acts on the cluster again", runResume},
		{"fmt", "[-f FILE] [-check]", "format the topology file canonically, keeping its comments (-check: exit 3 when not formatted)", runFmt},
		{"version", "", "print the version of pacsd", runVersion},
	}
}

func main() {
	os.Exit(run(os.Args[1:], &cli{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}))
}

// run dispatches args to a subcommand and returns the exit code.
func run(args []string, c *cli) int {
	if len(args) == 0 {
		usage(c.stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage(c.stdout)
		return exitOK
	}
	for _, cmd := range commands {
		if cmd.name == args[0] {
			return cmd.run(c, args[1:])
		}
	}
	fmt.Fprintf(c.stderr, "pacsd: unknown command %q\n\n", args[0])
	usage(c.stderr)
	return exitUsage
}

func usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("Usage: pacsd COMMAND [OPTIONS]\n\nCommands:\n")
	for _, cmd := range commands {
		fmt.Fprintf(&b, "  %-10s %-22s %s\n", cmd.name, cmd.args, cmd.summary)
	}
	b.WriteString("\nThe topology file is --file (-f), else $PACSD_FILE, else " + defaultFile + ".\n")
	b.WriteString("Run 'pacsd COMMAND -h' for the options of a command.\n")
	fmt.Fprint(w, b.String())
}

// newFlags returns the flag set of a subcommand, printing its errors and usage to stderr.
func (c *cli) newFlags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "Usage: pacsd %s %s\n\nOptions:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// fileFlag registers -f and --file, defaulting to $PACSD_FILE, else defaultFile.
func (c *cli) fileFlag(fs *flag.FlagSet) *string {
	def := c.getenv("PACSD_FILE")
	if def == "" {
		def = defaultFile
	}
	path := new(string)
	fs.StringVar(path, "file", def, "topology `FILE` (env PACSD_FILE)")
	fs.StringVar(path, "f", def, "short for --file")
	return path
}

// parseFlags parses args and refuses positional arguments; ok is false when
// the command should return code (usage shown, or -h asked for).
func parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return exitOK, false
		}
		return exitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "pacsd %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return exitUsage, false
	}
	return exitOK, true
}
