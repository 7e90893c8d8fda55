package bench

import (
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseSteps(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(1000+int64(s), 0) }
	line := func(s int, name string) string {
		return stepPrefix + strconv.FormatInt(at(s).UnixNano(), 10) + " " + name
	}
	for _, tc := range []struct {
		name    string
		out     string
		end     time.Time
		want    string // Steps.String()
		wantErr string
	}{
		{"steps end where the next begins", line(0, "prepare") + "\nnoise\n" + line(1, "start primary") + "\n" + line(4, "pg_basebackup") + "\n", at(6),
			"prepare 1.00s, start primary 3.00s, pg_basebackup 2.00s", ""},
		{"names with blanks", line(0, "create role and slot") + "\n", at(1), "create role and slot 1.00s", ""},
		{"no step", "hello\n", at(1), "", "marked no step"},
		{"malformed time", stepPrefix + "soon prepare\n", at(1), "", "malformed step line"},
		{"no name", stepPrefix + "12\n", at(1), "", "malformed step line"},
		{"out of order", line(2, "a") + "\n" + line(1, "b") + "\n", at(3), "", `step "b" begins before step "a"`},
		{"end before the last step", line(2, "a") + "\n", at(1), "", "ended before its last step"},
	} {
		ss, err := ParseSteps(tc.out, tc.end)
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: ParseSteps error %v, want one holding %q", tc.name, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("%s: ParseSteps: %v", tc.name, err)
		case ss.String() != tc.want:
			t.Errorf("%s: ParseSteps = %s, want %s", tc.name, ss, tc.want)
		}
	}
}

func TestStepsSumAndEndLast(t *testing.T) {
	t0 := time.Unix(0, 0)
	ss := Steps{
		{"a", t0, t0.Add(time.Second)},
		{"b", t0.Add(time.Second), t0.Add(3 * time.Second)},
		{"c", t0.Add(3 * time.Second), t0.Add(4 * time.Second)},
	}
	ss.EndLast(t0.Add(10 * time.Second))
	if d, err := ss.Sum("a", "c"); err != nil || d != 8*time.Second {
		t.Errorf("Sum(a, c) = %v, %v; want 8s", d, err)
	}
	if _, err := ss.Sum("a", "d"); err == nil || !strings.Contains(err.Error(), `no step "d"`) {
		t.Errorf("Sum of a missing step: %v, want an error naming it", err)
	}
}

func TestRunScript(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	ctx := context.Background()
	ss, out, err := RunScript(ctx, `echo "bench-step $(date +%s%N) one"; echo "$GREETING"; echo "bench-step $(date +%s%N) two"`, []string{"GREETING=hello"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 2 || ss[0].Name != "one" || ss[1].Name != "two" || !strings.Contains(out, "hello") {
		t.Errorf("RunScript: steps %s, output %q", ss, out)
	}
	if _, out, err := RunScript(ctx, `echo "bench-step $(date +%s%N) one"; echo broken >&2; exit 3`, nil); err == nil || !strings.Contains(err.Error(), "broken") || !strings.Contains(out, "broken") {
		t.Errorf("RunScript of a failing script: %v, output %q; want an error with its output", err, out)
	}
}

// TestConvergeScriptIsHonest checks the by-hand baseline's script: valid
// bash, the steps the converge scenario sums as the floor, every step of the
// seed's procedure that pacsd also does, readiness polled over TCP, and no
// fixed sleep (only a poll interval of at most 0.05 s inside until loops).
func TestConvergeScriptIsHonest(t *testing.T) {
	if _, err := exec.LookPath("bash"); err == nil {
		if out, err := exec.Command("bash", "-n", "-c", ConvergeScript).CombinedOutput(); err != nil {
			t.Fatalf("bash -n: %v\n%s", err, out)
		}
	}
	for _, want := range []string{
		"step start primary", "step configure replication", "step restart primary", "step create role and slot",
		"step pg_basebackup", "step start standby",
		"docker restart", "pg_isready -q -t 1 -h", "CREATE ROLE replicator REPLICATION LOGIN",
		"pg_create_physical_replication_slot", "host replication replicator samenet scram-sha-256",
		"wal_log_hints = on", "-X stream -S db2 -R",
	} {
		if !strings.Contains(ConvergeScript, want) {
			t.Errorf("the converge script lacks %q", want)
		}
	}
	sleep := regexp.MustCompile(`sleep\s+(\S+)`)
	for _, line := range strings.Split(ConvergeScript, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, m := range sleep.FindAllStringSubmatch(line, -1) {
			v, err := strconv.ParseFloat(strings.TrimSuffix(m[1], ";"), 64)
			if err != nil || v > 0.05 || !strings.Contains(line, "until ") {
				t.Errorf("fixed sleep in the converge script (only a poll interval of at most 0.05 s in an until loop is honest): %s", strings.TrimSpace(line))
			}
		}
	}
}
