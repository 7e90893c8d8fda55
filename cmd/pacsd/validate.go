package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/pacsd/pacsd/pkg/spec"
)

// runValidate parses the topology file and prints its diagnostics: exit 0
// when it is valid (warnings allowed), 1 when it is not.
func runValidate(c *cli, args []string) int {
	fs := c.newFlags("validate", "[-f FILE] [--json]")
	path := c.fileFlag(fs)
	asJSON := fs.Bool("json", false, "print the diagnostics, and the parsed topology when valid, as JSON on stdout")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	file, diags := spec.ParseFile(*path)
	if *asJSON {
		if err := writeJSONReport(c.stdout, file, diags); err != nil {
			fmt.Fprintf(c.stderr, "pacsd validate: while writing the report: %v\n", err)
			return exitProblem
		}
	} else {
		if err := writeDiagnostics(c.stderr, *path, diags); err != nil {
			fmt.Fprintf(c.stderr, "pacsd validate: while writing diagnostics: %v\n", err)
		}
		if file != nil {
			writeSummary(c.stdout, *path, file)
		}
	}
	if diags.HasErrors() {
		if !*asJSON {
			fmt.Fprintf(c.stderr, "%s: invalid (%s)\n", *path, countDiags(diags))
		}
		return exitProblem
	}
	return exitOK
}

// writeDiagnostics prints diagnostics with hcl's text writer: file:line:col and
// a source snippet read from a copy of the file in which every value that may
// be a password is starred out (spec.RedactSource).
func writeDiagnostics(w io.Writer, path string, diags hcl.Diagnostics) error {
	if len(diags) == 0 {
		return nil
	}
	files := map[string]*hcl.File{}
	if src, err := readSource(path); err == nil {
		files[path] = &hcl.File{Bytes: spec.RedactSource(src, path)}
	}
	return hcl.NewDiagnosticTextWriter(w, files, 0, false).WriteDiagnostics(diags)
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
