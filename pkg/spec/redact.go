package spec

import (
	"regexp"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// passwordLine matches a line that assigns a password attribute, in case the
// file does not parse far enough to find it in the syntax tree.
var passwordLine = regexp.MustCompile(`(?m)^(\s*"?password"?\s*=\s*)([^\n]*)$`)

// RedactSource returns a copy of src, the content of a topology file, in which
// the value of every password attribute is overwritten with "*", keeping every
// line and column in place. Print source snippets of diagnostics from the
// redacted copy, so that a password written in the file never reaches a terminal or log.
func RedactSource(src []byte, filename string) []byte {
	out := append([]byte(nil), src...)
	star := func(from, to int) {
		for i := max(from, 0); i < min(to, len(out)); i++ {
			if out[i] != '\n' && out[i] != '\r' {
				out[i] = '*'
			}
		}
	}
	for _, m := range passwordLine.FindAllSubmatchIndex(src, -1) {
		star(m[4], m[5])
	}
	if checkLimits(src, filename).HasErrors() {
		return out // the parser would overflow its stack on it
	}
	f, _ := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if f == nil {
		return out
	}
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok {
		return out
	}
	_ = hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
		if a, ok := n.(*hclsyntax.Attribute); ok && a.Name == "password" {
			r := a.Expr.Range()
			star(r.Start.Byte, r.End.Byte)
		}
		return nil
	})
	return out
}
