package spec

import (
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// secretBlocks are the block types whose every value RedactSource stars:
// they hold passwords, whatever an attribute in them is called.
var secretBlocks = map[string]bool{"superuser": true, "replication": true, "role": true}

// RedactSource returns a copy of src, the content of a topology file, in which
// every value that may be a password is overwritten with "*", keeping every
// line and column in place. Print source snippets of diagnostics from the
// redacted copy, so that a password written in the file never reaches a
// terminal or log.
//
// It reads src with the HCL lexer, which works on files that do not parse, and
// is safe on any input. Inside a superuser, replication or role block every
// value is starred, and so are comments, whatever the attribute is called
// ("pw", a misspelt "paswd"). Elsewhere the values after a secret-bearing name
// are: an identifier or quoted key that looks like a password ("password", a
// misspelling such as "pasword" or "Password", or any name holding "pass",
// "pw" or "secret"; "password_file" names a path and is not one). Everything
// after such a name is starred (except "=" and blanks) up to the end of its
// value: the end of the line, a comma or a closing brace where brackets,
// parentheses, quotes and heredocs opened after the name are closed again, so
// a heredoc or a value continued on the next lines is starred whole.
// Attributes named password, and every attribute of the three blocks, are
// starred by the syntax tree too, where the file parses.
func RedactSource(src []byte, filename string) []byte {
	out := append([]byte(nil), src...)
	star := func(rng hcl.Range) {
		for i := max(rng.Start.Byte, 0); i < min(rng.End.Byte, len(out)); i++ {
			if out[i] != '\n' && out[i] != '\r' {
				out[i] = '*'
			}
		}
	}
	tokens, _ := hclsyntax.LexConfig(src, filename, hcl.InitialPos)
	opensSecret := secretBlockBraces(tokens)
	var braces []bool // the open braces, true where in a secret-bearing block
	secret := false   // within the value of a secret-bearing name
	depth := 0        // brackets, quotes and heredocs opened within it
	value := false    // a token of the value was seen (the value may start on the next line)
	for i, tok := range tokens {
		inSecretBlock := len(braces) > 0 && braces[len(braces)-1]
		switch tok.Type {
		case hclsyntax.TokenOBrace:
			braces = append(braces, inSecretBlock || opensSecret[i])
		case hclsyntax.TokenCBrace:
			if len(braces) > 0 {
				braces = braces[:len(braces)-1]
			}
		}
		if !secret {
			switch {
			case tok.Type == hclsyntax.TokenComment && inSecretBlock:
				star(tok.Range)
			case tok.Type == hclsyntax.TokenIdent && (inSecretBlock || secretName(string(tok.Bytes))),
				tok.Type == hclsyntax.TokenQuotedLit && quotedKey(tokens, i) && (inSecretBlock || secretName(string(tok.Bytes))):
				secret, depth, value = true, 0, false
			}
			continue
		}
		switch tok.Type {
		case hclsyntax.TokenEOF:
			continue
		case hclsyntax.TokenEqual:
			continue
		case hclsyntax.TokenNewline:
			if depth <= 0 && value {
				secret = false
			}
			continue
		case hclsyntax.TokenComma:
			if depth <= 0 && value { // the next item of a one-line object or list
				secret = false
				continue
			}
		case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen, hclsyntax.TokenOQuote,
			hclsyntax.TokenOHeredoc, hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			depth++
		case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen, hclsyntax.TokenCQuote,
			hclsyntax.TokenCHeredoc, hclsyntax.TokenTemplateSeqEnd, hclsyntax.TokenQuotedNewline:
			depth--
		}
		if depth < 0 {
			// A closer of what was open before the name: the quote of a
			// quoted key, or the brace that ends a one-line object or block
			// after the value.
			depth = 0
			if value {
				secret = false
				continue
			}
			star(tok.Range)
			continue
		}
		star(tok.Range)
		value = true
		// A line comment holds the newline that ends its line; a string
		// left open by a newline ends with it too.
		endsLine := tok.Type == hclsyntax.TokenQuotedNewline ||
			tok.Type == hclsyntax.TokenComment && strings.HasSuffix(string(tok.Bytes), "\n")
		if endsLine && depth <= 0 && value {
			secret = false
		}
	}
	if limitsExceeded(src, tokens, filename).HasErrors() {
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
		switch n := n.(type) {
		case *hclsyntax.Attribute:
			if secretName(n.Name) {
				star(n.Expr.Range())
			}
		case *hclsyntax.Block:
			if secretBlocks[n.Type] {
				_ = hclsyntax.VisitAll(n.Body, func(n hclsyntax.Node) hcl.Diagnostics {
					if a, ok := n.(*hclsyntax.Attribute); ok {
						star(a.Expr.Range())
					}
					return nil
				})
			}
		}
		return nil
	})
	return out
}

// secretBlockBraces returns the indexes in tokens of the braces that open a
// superuser, replication or role block, or an object given to an attribute
// of that name: the name at the start of a line, then labels (quoted or not),
// line breaks or "=", then the brace.
func secretBlockBraces(tokens hclsyntax.Tokens) map[int]bool {
	opens := map[int]bool{}
	for i, tok := range tokens {
		if tok.Type != hclsyntax.TokenIdent || !secretBlocks[string(tok.Bytes)] {
			continue
		}
		if i > 0 && tokens[i-1].Type != hclsyntax.TokenNewline && tokens[i-1].Type != hclsyntax.TokenOBrace && tokens[i-1].Type != hclsyntax.TokenComment {
			continue
		}
		j := i + 1
	header:
		for j < len(tokens) {
			switch tokens[j].Type {
			case hclsyntax.TokenIdent, hclsyntax.TokenNewline, hclsyntax.TokenEqual, hclsyntax.TokenComment:
				j++
			case hclsyntax.TokenOQuote:
				j++
				for j < len(tokens) && tokens[j].Type == hclsyntax.TokenQuotedLit {
					j++
				}
				if j >= len(tokens) || tokens[j].Type != hclsyntax.TokenCQuote {
					break header
				}
				j++
			case hclsyntax.TokenOBrace:
				opens[j] = true
				break header
			default:
				break header
			}
		}
	}
	return opens
}

// quotedKey reports whether the quoted literal tokens[i] is a whole quoted
// key, "name" = or "name": (a quoted value that names a path such as
// "secrets/pacs.password" is not one).
func quotedKey(tokens hclsyntax.Tokens, i int) bool {
	return i > 0 && i+2 < len(tokens) && tokens[i-1].Type == hclsyntax.TokenOQuote && tokens[i+1].Type == hclsyntax.TokenCQuote &&
		(tokens[i+2].Type == hclsyntax.TokenEqual || tokens[i+2].Type == hclsyntax.TokenColon)
}

// secretName reports whether name, an attribute name or key, may hold a
// password: "password" in any case, a name within two edits of it, or a name
// holding "pass", "pw" (pwd, pword) or "secret". "password_file" holds a path.
func secretName(name string) bool {
	n := strings.ToLower(name)
	if n == "password_file" {
		return false
	}
	return strings.Contains(n, "pass") || strings.Contains(n, "pw") || strings.Contains(n, "secret") ||
		editDistance(n, "password") <= 2
}
