package spec

import (
	"bytes"
	"fmt"

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
)

// checkLimits refuses src, the content of the topology file filename, when it
// is larger than MaxFileSize or nested deeper than maxNesting. It reads src
// with the HCL lexer only, which does not recurse, so it is safe on any input.
func checkLimits(src []byte, filename string) hcl.Diagnostics {
	start := hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos}
	if len(src) > MaxFileSize {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Topology File Too Large",
			Detail:   fmt.Sprintf("The topology file is larger than %d bytes (1 MiB), the most pacsd reads. A topology takes a few kilobytes: check that the path names the topology file, and that nothing appended to it.", MaxFileSize),
			Subject:  start.Ptr(),
		}}
	}
	tokens, _ := hclsyntax.LexConfig(src, filename, hcl.InitialPos)
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
// each of which the parser nests.
type nestFrame struct {
	closer    hclsyntax.TokenType
	questions int
}

// tooDeep reports the range of the first token at which tokens nest deeper
// than maxNesting, counted the way the parser recurses.
func tooDeep(tokens hclsyntax.Tokens) (hcl.Range, bool) {
	var frames []nestFrame
	questions := 0 // the sum of questions over frames, plus those at the top level
	topQuestions := 0
	unary := 0      // a run of ! and - in a row
	directives := 0 // open %{ if } and %{ for } directives
	afterControl := false
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
	for _, tok := range tokens {
		if afterControl && tok.Type == hclsyntax.TokenIdent {
			switch string(tok.Bytes) {
			case "if", "for":
				directives++
			case "endif", "endfor":
				directives--
			}
		}
		afterControl = tok.Type == hclsyntax.TokenTemplateControl
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
			// A closer ends the innermost frame it closes; a stray one is the
			// parser's to report.
			for i := len(frames) - 1; i >= 0; i-- {
				if frames[i].closer != tok.Type {
					continue
				}
				for _, f := range frames[i:] {
					questions -= f.questions
				}
				frames = frames[:i]
				break
			}
		}
		if len(frames)+questions+unary+max(directives, 0) > maxNesting {
			return tok.Range, true
		}
	}
	return hcl.Range{}, false
}
