package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestHelpEveryCommand: every command has a synopsis, a description and
// examples that name it, shown alike by 'pacsd help COMMAND' and 'pacsd
// COMMAND --help' (and -h, -help) on stdout, exit 0; 'pacsd help' lists
// every command.
func TestHelpEveryCommand(t *testing.T) {
	root := newRootCmd(&cli{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, getenv: func(string) string { return "" }})
	_, list, _ := runCLI(t, nil, "help")
	n := 0
	for _, cmd := range root.Commands() {
		if cmd.Hidden {
			continue
		}
		n++
		name := cmd.Name()
		if cmd.Short == "" || cmd.Long == "" || cmd.Example == "" {
			t.Errorf("%s: Short %q, Long %d bytes, Example %q: each must say something", name, cmd.Short, len(cmd.Long), cmd.Example)
		}
		for _, line := range strings.Split(cmd.Example, "\n") {
			if !strings.HasPrefix(line, "  pacsd ") && !strings.HasPrefix(line, "  source <(pacsd ") && !strings.HasPrefix(line, "  PACSD_FILE=") {
				t.Errorf("%s: example line %q is not an indented pacsd command line", name, line)
			}
			if !strings.Contains(line, "pacsd "+name) && !(name == "version" && strings.Contains(line, "--version")) {
				t.Errorf("%s: example line %q does not run %s", name, line, name)
			}
		}
		if !strings.Contains(list, "\n  "+name+" ") || !strings.Contains(list, cmd.Short) {
			t.Errorf("pacsd help does not list %s with %q:\n%s", name, cmd.Short, list)
		}
		code, want, stderr := runCLI(t, nil, "help", name)
		if code != exitOK || stderr != "" {
			t.Errorf("pacsd help %s: exit %d, stderr %q", name, code, stderr)
		}
		for _, part := range []string{"Usage: pacsd " + cmd.Use + "\n", strings.TrimSpace(cmd.Long), "Examples:\n" + cmd.Example, "Options:\n"} {
			if !strings.Contains(want, part) {
				t.Errorf("pacsd help %s does not show %q:\n%s", name, part, want)
			}
		}
		for _, flag := range []string{"--help", "-h", "-help"} {
			code, got, stderr := runCLI(t, nil, name, flag)
			if code != exitOK || stderr != "" || got != want {
				t.Errorf("pacsd %s %s: exit %d, stderr %q; its output differs from pacsd help %s (-help +%s):\n%s", name, flag, code, stderr, name, flag, cmp.Diff(want, got))
			}
		}
	}
	if n < 15 {
		t.Errorf("only %d commands", n)
	}
}

// TestVersionFlag: --version, -v and -version print what 'pacsd version' prints.
func TestVersionFlag(t *testing.T) {
	code, want, stderr := runCLI(t, nil, "version")
	if code != exitOK || stderr != "" || want != "pacsd devel ("+runtime.Version()+")\n" {
		t.Fatalf("pacsd version: exit %d, %q, stderr %q", code, want, stderr)
	}
	for _, flag := range []string{"--version", "-v", "-version"} {
		if code, got, stderr := runCLI(t, nil, flag); code != exitOK || got != want || stderr != "" {
			t.Errorf("pacsd %s: exit %d, %q, stderr %q; want %q", flag, code, got, stderr, want)
		}
	}
	defer func(v string) { version = v }(version)
	version = "v1.2.3"
	if _, got, _ := runCLI(t, nil, "--version"); got != "pacsd v1.2.3 ("+runtime.Version()+")\n" {
		t.Errorf("pacsd --version with a stamped version: %q", got)
	}
}

// TestUsageErrorOnce: a wrong command line says what is wrong once, on
// stderr, with the synopsis and where to read more, and exits 2; cobra's
// own "Error:" lines and its usage dump never show.
func TestUsageErrorOnce(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		want, hint string
	}{
		{[]string{"frobnicate"}, `pacsd: unknown command "frobnicate"`, "Usage: pacsd COMMAND [OPTIONS]\nRun 'pacsd help'"},
		{[]string{"validat"}, `pacsd: unknown command "validat"; did you mean "validate"?`, "Usage: pacsd COMMAND"},
		{[]string{"-x"}, "pacsd: unknown shorthand flag: 'x' in -x", "Usage: pacsd COMMAND"},
		{[]string{"validate", "--no-such-flag"}, "pacsd validate: unknown flag: --no-such-flag", "Usage: pacsd validate [-f FILE] [--json]\nRun 'pacsd validate --help'"},
		{[]string{"validate", "extra"}, `pacsd validate: unexpected argument "extra"`, "Usage: pacsd validate"},
		{[]string{"plan", "-f"}, "pacsd plan: flag needs an argument: 'f' in -f", "Usage: pacsd plan"},
		{[]string{"fmt", "-fix"}, "pacsd fmt: unknown flag: --fix", "Usage: pacsd fmt"},
		{[]string{"failover", "db2", "-fenced"}, "pacsd failover: unknown flag: --fenced", "Usage: pacsd failover"},
		{[]string{"run", "-f", "a.hcl", "-fsync"}, "pacsd run: unknown flag: --fsync", "Usage: pacsd run"},
		{[]string{"switchover"}, "pacsd switchover: name the node, such as 'pacsd switchover db2'", "Usage: pacsd switchover NODE"},
		{[]string{"failover", "db1", "db2"}, `pacsd failover: unexpected argument "db2": name one node`, "Usage: pacsd failover NODE"},
		{[]string{"conninfo", "a", "b"}, `pacsd conninfo: unexpected argument "b": name one cluster`, "Usage: pacsd conninfo [CLUSTER]"},
		{[]string{"fmt", "--check=maybe"}, `pacsd fmt: invalid argument "maybe" for "--check" flag`, "Usage: pacsd fmt"},
		{[]string{"completion"}, "pacsd completion: name the shell: bash, zsh, fish", "Usage: pacsd completion bash|zsh|fish"},
		{[]string{"completion", "tcsh"}, `pacsd completion: no completion for the shell "tcsh"`, "Usage: pacsd completion"},
		{[]string{"help", "nope"}, `pacsd help: unknown command "nope"`, "Run 'pacsd help' for the commands"},
		{[]string{"help", "plan", "apply"}, `pacsd help: unexpected argument "apply": name one command`, "Usage: pacsd help [COMMAND]"},
	} {
		code, stdout, stderr := runCLI(t, nil, tc.args...)
		if code != exitUsage || stdout != "" {
			t.Errorf("pacsd %q: exit %d, want %d; stdout %q", tc.args, code, exitUsage, stdout)
		}
		if strings.Count(stderr, tc.want) != 1 || !strings.HasPrefix(stderr, tc.want) || !strings.Contains(stderr, tc.hint) {
			t.Errorf("pacsd %q: stderr does not say %q once, first, and %q:\n%s", tc.args, tc.want, tc.hint, stderr)
		}
		if strings.Contains(stderr, "Error:") || strings.Count(stderr, "Usage:") != 1 || strings.Contains(stderr, "Options:") {
			t.Errorf("pacsd %q: more than the error and the synopsis:\n%s", tc.args, stderr)
		}
	}
	// Without a command: the help, on stderr.
	code, stdout, stderr := runCLI(t, nil)
	if code != exitUsage || stdout != "" || !strings.HasPrefix(stderr, "Usage: pacsd COMMAND [OPTIONS]\n") || !strings.Contains(stderr, "switchover") {
		t.Errorf("pacsd: exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
}

// TestSingleDashLong: long flags written with one dash, as scripts wrote
// them for the standard flag package, are read as before; values and what
// follows "--" are left alone.
func TestSingleDashLong(t *testing.T) {
	root := newRootCmd(&cli{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, getenv: func(string) string { return "" }})
	for _, tc := range []struct{ in, want []string }{
		{[]string{"fmt", "-check", "-f", "a.hcl"}, []string{"fmt", "--check", "-f", "a.hcl"}},
		{[]string{"validate", "-json", "-file=a.hcl"}, []string{"validate", "--json", "--file=a.hcl"}},
		{[]string{"validate", "-file", "-json"}, []string{"validate", "--file", "-json"}}, // the file is named -json
		{[]string{"conninfo", "-user", "-json", "-ca-file", "-check"}, []string{"conninfo", "--user", "-json", "--ca-file", "-check"}},
		{[]string{"events", "-since", "-1h", "east"}, []string{"events", "--since", "-1h", "east"}},
		{[]string{"events", "-f", "-since", "-json"}, []string{"events", "-f", "-since", "--json"}},
		{[]string{"events", "--", "-json"}, []string{"events", "--", "-json"}},
		{[]string{"failover", "db2", "-accept-loss", "-from", "db1", "-cluster=pacs"}, []string{"failover", "db2", "--accept-loss", "--from", "db1", "--cluster=pacs"}},
		{[]string{"run", "-log-format", "text", "-help"}, []string{"run", "--log-format", "text", "--help"}},
		{[]string{"fmt", "-nosuch", "-ch"}, []string{"fmt", "--nosuch", "--ch"}},
		{[]string{"fmt", "-fix"}, []string{"fmt", "--fix"}}, // not "-f ix"
		{[]string{"run", "-f", "a.hcl", "-fsync"}, []string{"run", "-f", "a.hcl", "--fsync"}},
		{[]string{"-version"}, []string{"--version"}},
		{[]string{"-help", "plan", "-json"}, []string{"--help", "plan", "--json"}},
		{[]string{"frobnicate", "-json"}, []string{"frobnicate", "-json"}},
		{[]string{"__complete", "switchover", "-file", "a.hcl", "-clu"}, []string{"__complete", "switchover", "--file", "a.hcl", "-clu"}},
		{nil, []string{}},
	} {
		if got := singleDashLong(root, tc.in); !cmp.Equal(got, tc.want) {
			t.Errorf("singleDashLong(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// And so they run.
	one := conninfoFile(t, conninfoCluster("pacs", "pacs", "pacsdb", "db1", "  node \"db1\" {}\n  node \"db2\" {}\n"))
	if code, stdout, stderr := runCLI(t, nil, "conninfo", "-user", "-json", "-f", one, "pacs"); code != exitOK || !strings.Contains(stdout, "postgresql://-json@pacs-db1:5432,") {
		t.Errorf("conninfo -user -json: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := runCLI(t, nil, "validate", "-json", "-file="+one); code != exitOK || !strings.HasPrefix(stdout, "{") {
		t.Errorf("validate -json -file=: exit %d\n%s%s", code, stdout, stderr)
	}
	messy := filepath.Join(t.TempDir(), "messy.hcl")
	if err := os.WriteFile(messy, []byte("cluster \"pacs\" {\nnode \"db1\" {}\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := runCLI(t, nil, "fmt", "-check", "-file="+messy); code != exitUnformatted || !strings.Contains(stderr, "is not formatted") {
		t.Errorf("fmt -check -file=: exit %d, want %d\n%s%s", code, exitUnformatted, stdout, stderr)
	}
}

// TestRunLogFormat: --log-format takes text or json, else exit 2 before
// anything starts; the default is text on a terminal, JSON otherwise.
func TestRunLogFormat(t *testing.T) {
	for _, bad := range []string{"yaml", ""} {
		code, _, stderr := runCLI(t, nil, "run", "--log-format="+bad, "-f", filepath.Join(t.TempDir(), "none.hcl"))
		if code != exitUsage || !strings.Contains(stderr, fmt.Sprintf("--log-format %q: give text or json", bad)) {
			t.Errorf("--log-format=%s: exit %d\n%s", bad, code, stderr)
		}
	}
	path := filepath.Join(t.TempDir(), "pacs.hcl")
	if err := os.WriteFile(path, []byte(invalidFile), 0o600); err != nil {
		t.Fatal(err)
	}
	for format, want := range map[string]string{"text": "level=ERROR msg=", "json": `"level":"ERROR"`, "": `"level":"ERROR"`} {
		args := []string{"run", "-f", path}
		if format != "" {
			args = append(args, "--log-format", format)
		}
		if code, _, stderr := runCLI(t, nil, args...); code != exitProblem || !strings.Contains(stderr, want) {
			t.Errorf("pacsd %q on an invalid file: exit %d, want %d and %q in:\n%s", args, code, exitProblem, want, stderr)
		}
	}
}

// namesFile declares two clusters (a node name in both), two hosts and
// labels that are no valid names. Its password file is a FIFO, env() names
// a variable that is not set, file() a file that does not exist: reading
// it for completion must touch none of them (opening the FIFO would block).
const namesFile = `cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = env("PACSD_TEST_NOT_SET")
  superuser {
    name          = "pacs"
    password_file = "pw.fifo"
  }
  node "db1" {}
  node "db2" {
    host = "b"
  }
  node "$(touch pwned)" {}
  node "Upper Case" {}
}

cluster "west" {
  node "db2" {}
  node "w3" {}
}

host "a" {}
host "b" {
  address = file("no-such-file")
}
host "a b" {}
`

// writeTopology writes src as pacs.hcl in a directory of its own, with the
// FIFO namesFile names as password file, and returns its path.
func writeTopology(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "pw.fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "pacs.hcl")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// complete runs 'pacsd __complete args...' as a shell's completion script
// does, and returns the names offered, the directive and stderr.
func complete(t *testing.T, env map[string]string, args ...string) (names []string, directive, stderr string) {
	t.Helper()
	done := make(chan struct{})
	var code int
	var stdout string
	go func() {
		defer close(done)
		code, stdout, stderr = runCLI(t, env, append([]string{"__complete"}, args...)...)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("pacsd __complete %q did not return within 10 s (did it open the FIFO?)", args)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if code != exitOK || len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], ":") {
		t.Fatalf("pacsd __complete %q: exit %d, output %q, stderr %q", args, code, stdout, stderr)
	}
	for _, l := range lines[:len(lines)-1] {
		name, _, _ := strings.Cut(l, "\t")
		names = append(names, name)
	}
	return names, lines[len(lines)-1], stderr
}

// TestComplete: each kind of name completes from the file named on the
// line (-f, --file, -file, --file=), else by PACSD_FILE; only valid names,
// once each, filtered by what is typed and by --cluster; nothing for a
// second argument or a command without names.
func TestComplete(t *testing.T) {
	path := writeTopology(t, namesFile)
	env := map[string]string{"PACSD_FILE": path}
	nodes := []string{"db1", "db2", "w3"}
	clusters := []string{"pacs", "west"}
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want []string
	}{
		{nil, []string{"switchover", "-f", path, ""}, nodes},
		{nil, []string{"switchover", "--file", path, "d"}, []string{"db1", "db2"}},
		{nil, []string{"switchover", "--file=" + path, "db2"}, []string{"db2"}},
		{nil, []string{"switchover", "-file", path, "w"}, []string{"w3"}},
		{nil, []string{"switchover", "-f", path, "--cluster", "west", ""}, []string{"db2", "w3"}},
		{nil, []string{"switchover", "-f", path, "--cluster", ""}, clusters},
		{nil, []string{"switchover", "-f", path, "db1", ""}, nil},
		{env, []string{"switchover", ""}, nodes},
		{env, []string{"failover", ""}, nodes},
		{env, []string{"failover", "db2", "--from", ""}, nodes},
		{env, []string{"failover", "db2", "--cluster", "pacs", "--from", ""}, []string{"db1", "db2"}},
		{env, []string{"failover", "db2", "--cluster", "w"}, []string{"west"}},
		{env, []string{"restart", ""}, append(append([]string(nil), nodes...), clusters...)},
		{env, []string{"restart", "w"}, []string{"w3", "west"}},
		{env, []string{"restart", "db2", ""}, nil},
		{env, []string{"reinit", ""}, nodes},
		{env, []string{"conninfo", ""}, clusters},
		{env, []string{"events", "w"}, []string{"west"}},
		{env, []string{"pause", ""}, clusters},
		{env, []string{"resume", ""}, clusters},
		{env, []string{"status", ""}, clusters},
		{env, []string{"status", "pacs", ""}, nil},
		{env, []string{"status", "--host", ""}, []string{"a", "b"}},
		{env, []string{"run", "--host", ""}, []string{"a", "b"}},
		{nil, []string{"run", "-f", path, "--host", "b"}, []string{"b"}},
		{env, []string{"run", "--log-format", ""}, []string{"text", "json"}},
		{env, []string{"run", "--log-level", "w"}, []string{"warn"}},
		{env, []string{"completion", ""}, []string{"bash", "zsh", "fish"}},
		{env, []string{"help", "sw"}, []string{"switchover"}},
		{env, []string{"validate", ""}, nil},
		{env, []string{"fmt", ""}, nil},
		{env, []string{""}, []string{"validate", "plan", "apply", "switchover", "failover", "restart", "reinit", "adopt", "run", "conninfo", "status", "events", "pause", "resume", "fmt", "systemd-dropin", "version", "completion", "help"}},
	} {
		names, directive, stderr := complete(t, tc.env, tc.args...)
		if !cmp.Equal(names, tc.want) || directive != ":4" {
			t.Errorf("pacsd __complete %q: %q %s, want %q :4 (NoFileComp)\n%s", tc.args, names, directive, tc.want, stderr)
		}
	}
	for _, tc := range []struct {
		env  map[string]string
		args []string
	}{
		{env, []string{"validate", "-f", ""}},
		{nil, []string{"switchover", "--file", ""}},
	} {
		if names, directive, _ := complete(t, tc.env, tc.args...); !cmp.Equal(names, []string{"hcl"}) || directive != ":8" {
			t.Errorf("pacsd __complete %q: %q %s, want the .hcl files (hcl :8)", tc.args, names, directive)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), "pwned")); err == nil {
		t.Error("a label of the file was run")
	}
}

// TestCompleteUnreadableFile: a file that does not parse (or cannot be
// read, or is not a file) gives no names and says nothing but cobra's line
// on stderr, which the completion scripts drop.
func TestCompleteUnreadableFile(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"syntax":   "cluster \"pacs\" {\n  node \"db1\" {}\n  node \"db2\" {\n",
		"deep":     "cluster \"pacs\" {\n  node \"db1\" {}\n}\na = " + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "\n",
		"large":    "cluster \"pacs\" {\n  node \"db1\" {}\n}\n" + strings.Repeat("# padding\n", 110000),
		"binary":   "\x00\x01\x02cluster",
		"empty":    "",
		"no-names": "cluster {}\nnode \"db1\" {}\n",
	}
	var paths []string
	for name, src := range files {
		p := filepath.Join(dir, name+".hcl")
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	fifo := filepath.Join(dir, "fifo.hcl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	unreadable := filepath.Join(dir, "unreadable.hcl")
	if err := os.WriteFile(unreadable, []byte("cluster \"pacs\" {\n  node \"db1\" {}\n}\n"), 0o000); err != nil {
		t.Fatal(err)
	}
	// /proc/self/status says it is a regular file of size 0 (as
	// /proc/kmsg does, whose read blocks); /dev/zero reads without end.
	paths = append(paths, fifo, dir, filepath.Join(dir, "missing.hcl"), "/proc/self/status", "/dev/zero")
	if os.Geteuid() != 0 { // root reads it anyway
		paths = append(paths, unreadable)
	} else {
		paths = append(paths, "/proc/kmsg")
	}
	for _, p := range paths {
		for _, args := range [][]string{{"switchover", "-f", p, ""}, {"pause", "-f", p, ""}, {"run", "-f", p, "--host", ""}} {
			names, directive, stderr := complete(t, nil, args...)
			if names != nil || directive != ":4" || stderr != "Completion ended with directive: ShellCompDirectiveNoFileComp\n" {
				t.Errorf("pacsd __complete %q: %q %s, stderr %q; want no names, :4 and cobra's line only", args, names, directive, stderr)
			}
		}
	}
}
