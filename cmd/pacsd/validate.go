package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"

	"github.com/pacsd/pacsd/pkg/spec"
)

// newValidateCmd is 'pacsd validate': it parses the topology file and
// prints its diagnostics: exit 0 when it is valid (warnings allowed), 1 when
// it is not.
func newValidateCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate [-f FILE] [--json]",
		Short: "check the topology file and explain every problem in it",
		Long: `Reads the topology file and checks it without asking any engine: exit 0 when
it is valid (warnings allowed), with a summary of what pacsd will keep
running; exit 1 with every problem listed when it is not. Each problem names
the file, line and column, shows the line (values that may be passwords
starred out) and says what to do. Password files and certificates the file
names are read and checked too.

--json prints the diagnostics as data on stdout and, when the file is valid,
the parsed topology with every default filled in (secrets left out).`,
		Example: `  pacsd validate -f /etc/pacsd/pacs.hcl
  PACSD_FILE=examples/replicated.hcl pacsd validate
  pacsd validate -f pacs.hcl --json | jq '.diagnostics[] | select(.severity == "error")'`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	path := c.fileFlag(cmd)
	asJSON := cmd.Flags().Bool("json", false, "print the diagnostics, and the parsed topology when valid, as JSON on stdout")
	cmd.RunE = action(func([]string) int { return c.validate(*path, *asJSON) })
	return cmd
}

// validate prints the diagnostics of the file at path, as JSON when asJSON,
// and returns the exit code.
func (c *cli) validate(path string, asJSON bool) int {
	file, diags := spec.ParseFile(path)
	if asJSON {
		if err := writeJSONReport(c.stdout, file, diags); err != nil {
			fmt.Fprintf(c.stderr, "pacsd validate: while writing the report: %v\n", err)
			return exitProblem
		}
	} else {
		if err := writeDiagnostics(c.stderr, path, diags); err != nil {
			fmt.Fprintf(c.stderr, "pacsd validate: while writing diagnostics: %v\n", err)
		}
		if file != nil {
			writeSummary(c.stdout, path, file)
		}
	}
	if diags.HasErrors() {
		if !asJSON {
			fmt.Fprintf(c.stderr, "%s: invalid (%s)\n", path, countDiags(diags))
		}
		return exitProblem
	}
	return exitOK
}

// Bounds of a source snippet: a line longer than maxSnippetLine bytes is shown
// in part, around the place the diagnostic points at, with "[...]" where it
// is cut; a snippet shows maxSnippetLines lines at most.
const (
	maxSnippetLine  = 512
	maxSnippetLines = 8
	snippetCut      = "[...]"
)

// writeDiagnostics prints diagnostics as hcl's text writer does (file:line,
// a source snippet, the detail), the snippets read from a copy of the file in
// which every value that may be a password is starred out
// (spec.RedactSource), and bounded: a diagnostic prints no more than
// maxSnippetLines lines of maxSnippetLine bytes of the file, however long
// the file's lines are.
func writeDiagnostics(w io.Writer, path string, diags hcl.Diagnostics) error {
	if len(diags) == 0 {
		return nil
	}
	var src []byte
	if b, err := readSource(path); err == nil {
		src = spec.RedactSource(b, path)
	}
	starts := lineStarts(src)
	bw := bufio.NewWriter(w)
	for _, d := range diags {
		writeDiagnostic(bw, path, src, starts, d)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("while writing diagnostics: %w", err)
	}
	return nil
}

// lineStarts returns the byte offset at which each line of src starts.
func lineStarts(src []byte) []int {
	starts := []int{0}
	for i, c := range src {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}

// writeDiagnostic writes one diagnostic; src is the redacted content of the
// file path (nil when it could not be read), starts its line offsets.
func writeDiagnostic(w *bufio.Writer, path string, src []byte, starts []int, d *hcl.Diagnostic) {
	severity := "Error"
	if d.Severity == hcl.DiagWarning {
		severity = "Warning"
	}
	fmt.Fprintf(w, "%s: %s\n\n", severity, d.Summary)
	if s := d.Subject; s != nil {
		fmt.Fprintf(w, "  on %s line %d:\n", s.Filename, s.Start.Line)
		if src == nil || s.Filename != path {
			fmt.Fprint(w, "  (source code not available)\n")
		} else {
			snip := *s
			if d.Context != nil {
				snip = hcl.RangeOver(snip, *d.Context)
			}
			writeSnippet(w, src, starts, snip.Start.Byte, snip.End.Byte, s.Start.Byte)
		}
		fmt.Fprint(w, "\n")
	}
	if d.Detail != "" {
		fmt.Fprintf(w, "%s\n\n", d.Detail)
	}
}

// writeSnippet writes the lines of src that hold the bytes from start to end
// (at least the line of start), each numbered, a long line around the byte
// at, and at most maxSnippetLines lines. Offsets outside src (the file may
// have changed since it was parsed) are brought inside.
func writeSnippet(w *bufio.Writer, src []byte, starts []int, start, end, at int) {
	start = min(max(start, 0), len(src))
	end = min(max(end, start+1), len(src))
	first := sort.Search(len(starts), func(i int) bool { return starts[i] > start }) - 1
	shown := 0
	for i := first; i < len(starts) && (i == first || starts[i] < end); i++ {
		if shown == maxSnippetLines {
			rest := sort.Search(len(starts), func(j int) bool { return starts[j] >= end }) - i
			fmt.Fprintf(w, "      %s %d more lines\n", snippetCut, rest)
			return
		}
		ls, le := starts[i], len(src)
		if i+1 < len(starts) {
			le = starts[i+1] - 1
		}
		if le > ls && src[le-1] == '\r' {
			le--
		}
		fmt.Fprintf(w, "%4d: %s\n", i+1, snippetLine(src[ls:le], at-ls))
		shown++
	}
}

// snippetLine returns line, or when it is longer than maxSnippetLine bytes a
// part of it of that length around the byte at (clamped to the line), marked
// where it is cut, never in the middle of a UTF-8 character.
func snippetLine(line []byte, at int) string {
	if len(line) <= maxSnippetLine {
		return string(line)
	}
	at = min(max(at, 0), len(line))
	from := max(0, min(at-maxSnippetLine/4, len(line)-maxSnippetLine))
	to := from + maxSnippetLine
	for from > 0 && !utf8.RuneStart(line[from]) {
		from++
	}
	for to < len(line) && !utf8.RuneStart(line[to]) {
		to--
	}
	part := string(line[from:to])
	if from > 0 {
		part = snippetCut + part
	}
	if to < len(line) {
		part += snippetCut
	}
	return part
}

// readSource reads the topology file for source snippets, one byte more
// than the parser reads at most.
func readSource(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, spec.MaxFileSize+1))
}

func countDiags(diags hcl.Diagnostics) string {
	errs := len(diags.Errs())
	warns := len(diags) - errs
	plural := func(n int, word string) string {
		if n == 1 {
			return fmt.Sprintf("%d %s", n, word)
		}
		return fmt.Sprintf("%d %ss", n, word)
	}
	if warns == 0 {
		return plural(errs, "error")
	}
	return plural(errs, "error") + ", " + plural(warns, "warning")
}

// writeSummary explains a valid file in a few lines: what pacsd will keep running.
func writeSummary(w io.Writer, path string, f *spec.File) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: valid\n", path)
	for _, c := range f.Clusters {
		fmt.Fprintf(&b, "cluster %q: image %s, network %q, primary %q, failover %s\n", c.Name, c.Image, c.Network, c.Primary, failoverText(c.Failover))
		for _, n := range c.Nodes {
			role := "standby"
			if n.Name == c.Primary {
				role = "primary"
			}
			port := "no published port"
			if n.Port != 0 {
				port = fmt.Sprintf("port %d", n.Port)
			}
			fmt.Fprintf(&b, "  node %q (%s): container %q, %s, %s\n", n.Name, role, n.Container, port, n.Location())
		}
	}
	fmt.Fprint(w, b.String())
}

func failoverText(f spec.Failover) string {
	if !f.Automatic {
		return "manual"
	}
	return fmt.Sprintf("automatic after %s within %s of lag", f.After, f.MaxLag)
}

// jsonDiagnostic is one diagnostic as data; file and positions are omitted when it has no place.
type jsonDiagnostic struct {
	Severity  string `json:"severity"`
	Summary   string `json:"summary"`
	Detail    string `json:"detail"`
	File      string `json:"file,omitempty"`
	Line      int    `json:"line,omitempty"`
	Column    int    `json:"column,omitempty"`
	EndLine   int    `json:"end_line,omitempty"`
	EndColumn int    `json:"end_column,omitempty"`
}

// jsonReport is the output of validate --json.
type jsonReport struct {
	Valid       bool             `json:"valid"`
	Diagnostics []jsonDiagnostic `json:"diagnostics"`
	// Spec is the parsed topology with defaults filled in, secrets redacted; only when valid.
	Spec *spec.File `json:"spec,omitempty"`
}

func writeJSONReport(w io.Writer, f *spec.File, diags hcl.Diagnostics) error {
	r := jsonReport{Valid: !diags.HasErrors(), Diagnostics: []jsonDiagnostic{}, Spec: f}
	for _, d := range diags {
		jd := jsonDiagnostic{Severity: "error", Summary: d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagWarning {
			jd.Severity = "warning"
		}
		if s := d.Subject; s != nil {
			jd.File, jd.Line, jd.Column, jd.EndLine, jd.EndColumn = s.Filename, s.Start.Line, s.Start.Column, s.End.Line, s.End.Column
		}
		r.Diagnostics = append(r.Diagnostics, jd)
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("while encoding the report: %w", err)
	}
	return nil
}
