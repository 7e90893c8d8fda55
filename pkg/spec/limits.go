package spec

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Limits a topology file must keep before pacsd parses it. The HCL parser
// recurses once per level of nesting, and a stack overflow cannot be
// recovered: without these bounds one saved file could kill the daemon, and
// kill it again at every restart.
const (
	// MaxFileSize is the largest topology file pacsd parses, in bytes; a
	// larger one is refused by its size, so reading more than one byte past
	// it is never needed.
	MaxFileSize = 1 << 20
	// maxNesting is the deepest nesting pacsd parses: brackets, braces,
	// parentheses, blocks, templates, conditionals and unary operators, each
	// level counted once.
	maxNesting = 64
	// MaxDiagnostics is the most diagnostics Parse returns for one file, the
	// last of them then saying how many more problems there are. A file of
	// 1 MiB can have a problem every few bytes; listing them all would make
	// output and logs hundreds of times larger than the file.
	MaxDiagnostics = 100
	// maxDetail is the longest detail of a diagnostic, in bytes; a longer
	// one, which quotes a long value, is cut in the middle.
	maxDetail = 1024
)

// boundDiagnostics cuts every detail longer than maxDetail in the middle,
// and replaces the diagnostics after the first MaxDiagnostics-1 with one
// that counts them: an error when one of them is an error, so that the
// result has errors exactly when diags has.
func boundDiagnostics(diags hcl.Diagnostics) hcl.Diagnostics {
	for _, d := range diags {
		if len(d.Detail) > maxDetail {
			head, tail := d.Detail[:maxDetail*2/3], d.Detail[len(d.Detail)-maxDetail/4:]
			for len(head) > 0 && !utf8.RuneStart(d.Detail[len(head)]) {
				head = head[:len(head)-1]
			}
			for len(tail) > 0 && !utf8.RuneStart(tail[0]) {
				tail = tail[1:]
			}
			d.Detail = fmt.Sprintf("%s [... %d bytes not shown ...] %s", head, len(d.Detail)-len(head)-len(tail), tail)
		}
	}
	if len(diags) <= MaxDiagnostics {
		return diags
	}
	kept, rest := diags[:MaxDiagnostics-1:MaxDiagnostics-1], diags[MaxDiagnostics-1:]
	errs := len(rest.Errs())
	severity := hcl.DiagWarning
	if errs > 0 {
		severity = hcl.DiagError
	}
	return append(kept, &hcl.Diagnostic{
		Severity: severity,
		Summary:  "Too Many Problems",
		Detail: fmt.Sprintf("The topology file has %d more problems from here on (%d errors, %d warnings), which are not listed. Correct the problems above and validate the file again.",
			len(rest), errs, len(rest)-errs),
		Subject: rest[0].Subject,
	})
}

// checkLimits refuses src, the content of the topology file filename, when it
// is larger than MaxFileSize or nested deeper than maxNesting. It reads src
// with the HCL lexer only, which does not recurse, so it is safe on any input.
func checkLimits(src []byte, filename string) hcl.Diagnostics {
	if len(src) > MaxFileSize {
		return tooLarge(filename)
	}
	tokens, _ := hclsyntax.LexConfig(src, filename, hcl.InitialPos)
	return limitsExceeded(src, tokens, filename)
}

func tooLarge(filename string) hcl.Diagnostics {
	start := hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos}
	return hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  "Topology File Too Large",
		Detail:   fmt.Sprintf("The topology file is larger than %d bytes (1 MiB), the most pacsd reads. A topology takes a few kilobytes: check that the path names the topology file, and that nothing appended to it.", MaxFileSize),
		Subject:  start.Ptr(),
	}}
}

// limitsExceeded is checkLimits on tokens, what the lexer gave for src.
func limitsExceeded(src []byte, tokens hclsyntax.Tokens, filename string) hcl.Diagnostics {
	if len(src) > MaxFileSize {
		return tooLarge(filename)
	}
	if rng, deep := tooDeep(tokens); deep {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Topology File Nested Too Deeply",
			Detail:   fmt.Sprintf("The topology file nests brackets, braces, blocks, templates, conditionals or operators more than %d levels deep here. No topology needs that; pacsd refuses the file before parsing it. Look for a runaway edit or unclosed brackets.", maxNesting),
			Subject:  rng.Ptr(),
		}}
	}
	return nil
}

// nestFrame is one open bracket, brace, parenthesis, quote, heredoc or
// template sequence; questions counts the conditionals (a ? b : c) open in it,
// each of which the parser nests, and directives the %{ if } and %{ for }
// directives open in it (a quote or heredoc is a template of its own).
type nestFrame struct {
	closer     hclsyntax.TokenType
	questions  int
	directives int
}

// tooDeep reports the range of the first token at which tokens nest deeper
// than maxNesting, counted the way the parser recurses. No count goes below
// zero: a stray closer or closing directive closes nothing, so it cannot make
// room for deeper nesting after it.
func tooDeep(tokens hclsyntax.Tokens) (hcl.Range, bool) {
	var frames []nestFrame
	questions := 0 // the sum of questions over frames, plus those at the top level
	topQuestions := 0
	directives := 0 // the sum of directives over frames, plus those at the top level
	topDirectives := 0
	unary := 0            // a run of ! and - in a row
	afterControl := false // after "%{", before the directive's keyword
	closers := map[hclsyntax.TokenType]hclsyntax.TokenType{
		hclsyntax.TokenOBrace:          hclsyntax.TokenCBrace,
		hclsyntax.TokenOBrack:          hclsyntax.TokenCBrack,
		hclsyntax.TokenOParen:          hclsyntax.TokenCParen,
		hclsyntax.TokenOQuote:          hclsyntax.TokenCQuote,
		hclsyntax.TokenOHeredoc:        hclsyntax.TokenCHeredoc,
		hclsyntax.TokenTemplateInterp:  hclsyntax.TokenTemplateSeqEnd,
		hclsyntax.TokenTemplateControl: hclsyntax.TokenTemplateSeqEnd,
	}
	// endExpression forgets the conditionals of the innermost frame (or the
	// top level): a comma, or a newline where newlines end an item, ends them.
	endExpression := func() {
		if len(frames) == 0 {
			questions -= topQuestions
			topQuestions = 0
			return
		}
		f := &frames[len(frames)-1]
		questions -= f.questions
		f.questions = 0
	}
	// directive opens (+1) or closes (-1) a directive of the template that
	// holds the "%{" just read: the frame below the "%{" frame.
	directive := func(delta int) {
		open := &topDirectives
		if len(frames) >= 2 {
			open = &frames[len(frames)-2].directives
		}
		if *open+delta < 0 {
			return // a stray endif or endfor closes nothing
		}
		*open += delta
		directives += delta
	}
	for _, tok := range tokens {
		if afterControl {
			// The parser skips newlines and comments between "%{" and the
			// keyword, and so does the count.
			switch {
			case tok.Type == hclsyntax.TokenNewline || tok.Type == hclsyntax.TokenComment:
			case tok.Type == hclsyntax.TokenIdent && (string(tok.Bytes) == "if" || string(tok.Bytes) == "for"):
				directive(1)
				afterControl = false
			case tok.Type == hclsyntax.TokenIdent && (string(tok.Bytes) == "endif" || string(tok.Bytes) == "endfor"):
				directive(-1)
				afterControl = false
			default:
				afterControl = false
			}
		}
		if tok.Type == hclsyntax.TokenTemplateControl {
			afterControl = true
		}
		switch tok.Type {
		case hclsyntax.TokenBang, hclsyntax.TokenMinus:
			unary++
		case hclsyntax.TokenNewline, hclsyntax.TokenComment:
		default:
			unary = 0
		}
		switch tok.Type {
		case hclsyntax.TokenQuestion:
			questions++
			if len(frames) == 0 {
				topQuestions++
			} else {
				frames[len(frames)-1].questions++
			}
		case hclsyntax.TokenComma:
			endExpression()
		case hclsyntax.TokenNewline, hclsyntax.TokenComment:
			// Newlines end attributes and object items; inside brackets,
			// parentheses and templates the parser skips them. A line
			// comment holds the newline that ends its line.
			endsLine := tok.Type == hclsyntax.TokenNewline || bytes.HasSuffix(tok.Bytes, []byte("\n"))
			if endsLine && (len(frames) == 0 || frames[len(frames)-1].closer == hclsyntax.TokenCBrace) {
				endExpression()
			}
		default:
			if closer, ok := closers[tok.Type]; ok {
				frames = append(frames, nestFrame{closer: closer})
				break
			}
			// A closer ends the innermost frame it closes, and every frame
			// inside it with their conditionals and directives; a stray one
			// is the parser's to report.
			for i := len(frames) - 1; i >= 0; i-- {
				if frames[i].closer != tok.Type {
					continue
				}
				for _, f := range frames[i:] {
					questions -= f.questions
					directives -= f.directives
				}
				frames = frames[:i]
				break
			}
		}
		if len(frames)+questions+unary+directives > maxNesting {
			return tok.Range, true
		}
	}
	return hcl.Range{}, false
}
