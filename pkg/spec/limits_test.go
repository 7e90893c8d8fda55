package spec

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
)

// deepFiles are files nested far deeper than any topology, in every way the
// parser recurses: brackets, braces, parentheses, blocks, templates, heredocs
// in templates, conditionals and unary operators.
func deepFiles(n int) map[string]string {
	return map[string]string{
		"brackets":  "a = " + strings.Repeat("[", n) + strings.Repeat("]", n) + "\n",
		"braces":    "a = " + strings.Repeat("{b = ", n) + "1" + strings.Repeat("}", n) + "\n",
		"parens":    "a = " + strings.Repeat("(", n) + "1" + strings.Repeat(")", n) + "\n",
		"calls":     "a = " + strings.Repeat("env(", n) + `"X"` + strings.Repeat(")", n) + "\n",
		"blocks":    strings.Repeat("b {\n", n) + strings.Repeat("}\n", n),
		"templates": "a = " + strings.Repeat(`"${`, n) + "1" + strings.Repeat(`}"`, n) + "\n",
		"unclosed":  "a = " + strings.Repeat("[", n) + "\n",
		"ternary":   "a = " + strings.Repeat("x?1:", n) + "1\n",
		"unary":     "a = " + strings.Repeat("!", n) + "true\n",
		"negation":  "a = " + strings.Repeat("-", n) + "1\n",
		"mixed":     "a = " + strings.Repeat("[(!", n) + "true" + strings.Repeat(")]", n) + "\n",
	}
}

// TestParseRefusesDeepNesting: a file nested 100 000 deep (and other deep
// files) is refused with a
// diagnostic before the parser's recursion overflows the stack (which kills
// the process, so a saved file would crash-loop the daemon). The stack is
// bounded here so that a regression dies at once instead of taking a
// gigabyte first.
func TestParseRefusesDeepNesting(t *testing.T) {
	defer debug.SetMaxStack(debug.SetMaxStack(64 << 20))
	// Each overflows 64 MiB of stack in the parser: 20 000 levels of
	// brackets, 200 000 of conditionals and operators (smaller frames).
	files := deepFiles(20000)
	for name, src := range deepFiles(200000) {
		if name == "ternary" || name == "unary" || name == "negation" {
			files[name] = src
		}
	}
	files["brackets-100000"] = "a = " + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "\n"
	for name, src := range files {
		t.Run(name, func(t *testing.T) {
			f, diags := Parse([]byte(src), "deep.hcl")
			if f != nil {
				t.Fatal("Parse returned a value for a file nested too deep")
			}
			var got []string
			for _, d := range diags {
				got = append(got, d.Summary)
				checkDiagnosticText(t, d, true)
			}
			if diff := cmp.Diff([]string{"Topology File Nested Too Deeply"}, got); diff != "" {
				t.Errorf("diagnostics differ (-want +got):\n%s", diff)
			}
			if len(diags) == 1 && (diags[0].Subject == nil || diags[0].Subject.Start.Line != 1 && name != "blocks") {
				t.Errorf("the diagnostic does not point at the first line: %v", diags[0].Subject)
			}
			if red := RedactSource([]byte(src), "deep.hcl"); len(red) != len(src) {
				t.Errorf("RedactSource returned %d bytes for %d", len(red), len(src))
			}
		})
	}
}

// TestParseAcceptsModerateNesting: nesting up to the limit parses as before.
func TestParseAcceptsModerateNesting(t *testing.T) {
	src := "a = " + strings.Repeat("[", maxNesting-1) + strings.Repeat("]", maxNesting-1) + "\n"
	_, diags := Parse([]byte(src), "moderate.hcl")
	for _, d := range diags {
		if d.Summary == "Topology File Nested Too Deeply" {
			t.Errorf("nesting %d refused: %s", maxNesting-1, d)
		}
	}
}

// TestNestingCountsOneExpression: conditionals and operators count only within
// the expression they are in; many of them side by side are not deep.
func TestNestingCountsOneExpression(t *testing.T) {
	var b strings.Builder
	b.WriteString("x = [" + strings.Repeat("true ? -1 : !false, ", 100) + "]\n")
	b.WriteString("y = f(" + strings.Repeat("true ? 1 : 2, ", 100) + ")\n")
	b.WriteString("z = {\n" + strings.Repeat("  k = true ? 1 : 2 # note\n", 100) + "}\n")
	for i := range 100 {
		fmt.Fprintf(&b, "a%d = true ? - 1 : 2 # note\nb%d = true ? 1 : 2 /* note */\n", i, i)
	}
	if diags := checkLimits([]byte(b.String()), "wide.hcl"); diags.HasErrors() {
		t.Errorf("a wide file was refused:\n%s", diagsText(diags))
	}
}

// TestParseRefusesLargeFile: a file larger than 1 MiB is refused before parsing.
func TestParseRefusesLargeFile(t *testing.T) {
	src := []byte(strings.Repeat("# a comment line that pads the file\n", MaxFileSize/36+1))
	f, diags := Parse(src, "large.hcl")
	if f != nil || len(diags) != 1 || diags[0].Summary != "Topology File Too Large" || diags[0].Severity != hcl.DiagError {
		t.Fatalf("Parse of %d bytes: value %v, diagnostics:\n%s", len(src), f != nil, diagsText(diags))
	}
	checkDiagnosticText(t, diags[0], true)
}

// TestParseFileRefusesLargeFile: ParseFile reads no more than the limit allows.
func TestParseFileRefusesLargeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "large.hcl")
	if err := os.WriteFile(path, bytes.Repeat([]byte("#\n"), MaxFileSize), 0o600); err != nil {
		t.Fatal(err)
	}
	f, diags := ParseFile(path)
	if f != nil || len(diags) != 1 || diags[0].Summary != "Topology File Too Large" || diags[0].Subject.Filename != path {
		t.Fatalf("ParseFile of %d bytes: value %v, diagnostics:\n%s", 2*MaxFileSize, f != nil, diagsText(diags))
	}
}

// directiveFiles are template directives the nesting count once missed: stray
// endif and endfor directives that drove the count below zero before deep
// nesting, a comment or newline between "%{" and "if", and a stray endif in
// an inner template that cancelled the ifs of the template around it. Each
// file is 1 MiB at most and nests tens of thousands of levels deep.
func directiveFiles() map[string]string {
	return map[string]string{
		"stray endif":      `a = "` + strings.Repeat("%{endif}", 65000) + strings.Repeat("%{if a}", 65000) + "\"\n",
		"stray endfor":     `a = "` + strings.Repeat("%{endfor}", 55000) + strings.Repeat("%{for x in y}", 40000) + "\"\n",
		"stray in heredoc": "a = <<EOT\n" + strings.Repeat("%{ endif }\n", 40000) + strings.Repeat("%{ if true }\n", 40000) + "EOT\n",
		"comment":          `a = "` + strings.Repeat("%{/**/if true}", 70000) + "\"\n",
		"newline":          "a = <<EOT\n" + strings.Repeat("%{\nif true}", 80000) + "\nEOT\n",
		"strip markers":    `a = "` + strings.Repeat("%{~ if true ~}", 70000) + "\"\n",
		"inner endif":      `a = "` + strings.Repeat(`%{if true}${"%{endif}"}`, 40000) + "\"\n",
	}
}

// TestLimitsCountEveryDirective: files of directiveFiles are refused before
// parsing, quickly and with the nesting diagnostic only; the stack is bounded
// so that a file the count misses dies at once instead of parsing for
// half a minute.
func TestLimitsCountEveryDirective(t *testing.T) {
	defer debug.SetMaxStack(debug.SetMaxStack(64 << 20))
	for name, src := range directiveFiles() {
		t.Run(name, func(t *testing.T) {
			if len(src) > MaxFileSize {
				t.Fatalf("the file is %d bytes, more than the %d a topology file may have", len(src), MaxFileSize)
			}
			if diags := checkLimits([]byte(src), "deep.hcl"); !diags.HasErrors() {
				t.Fatal("checkLimits accepted the file")
			}
			f, diags := Parse([]byte(src), "deep.hcl")
			var got []string
			for _, d := range diags {
				got = append(got, d.Summary)
			}
			if diff := cmp.Diff([]string{"Topology File Nested Too Deeply"}, got); diff != "" || f != nil {
				t.Errorf("value %v, diagnostics differ (-want +got):\n%s", f != nil, diff)
			}
		})
	}
}

// TestLimitsAcceptBalancedDirectives: many directives side by side, each
// closed, and stray closing directives in a shallow file, are not deep.
func TestLimitsAcceptBalancedDirectives(t *testing.T) {
	for name, src := range map[string]string{
		"side by side": `a = "` + strings.Repeat("%{if true}x%{else}y%{endif}%{ for v in [1] }${v}%{ endfor }", 1000) + "\"\n",
		"nested":       `a = "` + strings.Repeat("%{/**/if true}", 60) + strings.Repeat("%{\nendif}", 60) + "\"\n",
		"stray":        `a = "` + strings.Repeat("%{endif}", 1000) + "\"\n",
	} {
		if diags := checkLimits([]byte(src), "wide.hcl"); diags.HasErrors() {
			t.Errorf("%s: refused:\n%s", name, diagsText(diags))
		}
	}
}

// TestParseBoundsDiagnostics: a file with a problem every few bytes gets
// MaxDiagnostics diagnostics, the last counting the others, and a detail
// that quotes a long value is cut in the middle.
func TestParseBoundsDiagnostics(t *testing.T) {
	src := `cluster "pacs" { image = [` + strings.Repeat("f(1),", 100000) + "] }\n"
	_, diags := Parse([]byte(src), "many.hcl")
	if len(diags) != MaxDiagnostics || !diags.HasErrors() {
		t.Fatalf("%d diagnostics, errors %v; want %d with errors", len(diags), diags.HasErrors(), MaxDiagnostics)
	}
	last := diags[len(diags)-1]
	if last.Summary != "Too Many Problems" || last.Severity != hcl.DiagError || !strings.Contains(last.Detail, "more problems") {
		t.Errorf("last diagnostic: %s", last)
	}
	for _, d := range diags {
		checkDiagnosticText(t, d, true)
	}

	_, diags = Parse([]byte(`cluster "pacs" { network = "`+strings.Repeat("ü", 100000)+"\" }\n"), "long.hcl")
	found := false
	for _, d := range diags {
		checkDiagnosticText(t, d, true)
		if len(d.Detail) > 2*maxDetail || !utf8.ValidString(d.Detail) {
			t.Errorf("detail of %d bytes (valid UTF-8 %v): %.200s", len(d.Detail), utf8.ValidString(d.Detail), d.Detail)
		}
		if d.Summary == "Invalid Network Name" {
			found = strings.Contains(d.Detail, "bytes not shown") && strings.HasPrefix(d.Detail, "The network name") && strings.HasSuffix(d.Detail, "starting with a letter or digit.")
		}
	}
	if !found {
		t.Errorf("no cut Invalid Network Name diagnostic:\n%.3000s", diagsText(diags))
	}

	// Warnings only: the count is a warning, and the result stays valid.
	var warnings hcl.Diagnostics
	for i := range MaxDiagnostics + 5 {
		warnings = append(warnings, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "W", Detail: fmt.Sprint(i), Subject: &hcl.Range{Filename: "w.hcl"}})
	}
	got := boundDiagnostics(warnings)
	if len(got) != MaxDiagnostics || got.HasErrors() || !strings.Contains(got[len(got)-1].Detail, "6 more problems from here on (0 errors, 6 warnings)") {
		t.Errorf("warnings bounded to %d, errors %v, last %s", len(got), got.HasErrors(), got[len(got)-1])
	}
}
