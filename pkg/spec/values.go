package spec

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
)

var sizePattern = regexp.MustCompile(`^([0-9]+)\s*([A-Za-z]+)$`)

// ParseSize reads a size written with a PostgreSQL unit (B, kB, MB, GB, TB; 1kB = 1024B),
// such as "16MB". On failure it returns a full sentence saying what is accepted.
func ParseSize(text string) (Size, string) {
	const accepted = `Write a whole number followed by a PostgreSQL unit, such as "16MB"; the units are B, kB, MB, GB and TB.`
	m := sizePattern.FindStringSubmatch(strings.TrimSpace(text))
	if m == nil {
		return 0, fmt.Sprintf("%q is not a size. %s", text, accepted)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Sprintf("%q is too large. %s", text, accepted)
	}
	for _, u := range byteUnits {
		if u.name == m[2] {
			if n > math.MaxInt64/u.bytes {
				return 0, fmt.Sprintf("%q is too large. %s", text, accepted)
			}
			return Size(n * u.bytes), ""
		}
	}
	return 0, fmt.Sprintf("%q has the unit %q, which PostgreSQL does not know (units are case-sensitive). %s", text, m[2], accepted)
}

// ParseDuration reads a positive duration such as "3s", "500ms" or "1m30s".
// On failure it returns a full sentence saying what is accepted.
func ParseDuration(text string) (Duration, string) {
	d, err := time.ParseDuration(strings.TrimSpace(text))
	if err != nil {
		return Duration{}, fmt.Sprintf("%q is not a duration. Write a number followed by a unit, such as \"3s\", \"500ms\" or \"1m30s\"; the units are ms, s, m and h.", text)
	}
	if d <= 0 {
		return Duration{}, fmt.Sprintf("%q is not a positive duration. Write a duration greater than zero, such as \"3s\".", text)
	}
	return Duration{d}, ""
}

// ImageMajor reads the PostgreSQL major version from an image reference's tag:
// "dcm4che/postgres-dcm4chee:17.4-34" gives 17, "postgres:16-alpine" 16,
// "postgres:9.6" 9. It reports false when the tag is missing or does not start
// with a number (such as "latest").
func ImageMajor(image string) (int, bool) {
	if i := strings.IndexByte(image, '@'); i >= 0 {
		image = image[:i]
	}
	last := image[strings.LastIndexByte(image, '/')+1:]
	i := strings.IndexByte(last, ':')
	if i < 0 {
		return 0, false
	}
	tag := last[i+1:]
	end := strings.IndexFunc(tag, func(r rune) bool { return !unicode.IsDigit(r) })
	if end < 0 {
		end = len(tag)
	}
	if end == 0 || end > 4 {
		return 0, false
	}
	n, err := strconv.Atoi(tag[:end])
	if err != nil {
		return 0, false
	}
	return n, true
}

// smallWords stay lower case inside a Title-Case summary.
var smallWords = map[string]bool{
	"a": true, "an": true, "and": true, "as": true, "at": true, "by": true, "for": true,
	"from": true, "in": true, "of": true, "on": true, "or": true, "the": true, "to": true, "with": true,
}

// titleCase writes a diagnostic summary in Title Case, so that the summaries of
// the HCL parser read like pacsd's own ("Unsupported argument" becomes
// "Unsupported Argument"). Words that do not start with a lower-case letter, or
// that hold punctuation such as "_" or ":", and the product's name, are kept as they are.
func titleCase(s string) string {
	words := strings.Split(s, " ")
	for i, w := range words {
		if w == "" || w == "pacsd" || !unicode.IsLower(rune(w[0])) || strings.ContainsAny(w, "_:/\"") {
			continue
		}
		if i > 0 && smallWords[w] {
			continue
		}
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(words, " ")
}

// suggest returns the option closest to given when it is close enough to be a
// likely misspelling (edit distance below 3), or "".
func suggest(given string, options []string) string {
	best, bestDist := "", 3
	for _, o := range options {
		if d := editDistance(given, o); d < bestDist {
			best, bestDist = o, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, counted in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// didYouMean returns " Did you mean "x"?" when suggest finds a close option, or "".
func didYouMean(given string, options []string) string {
	if s := suggest(given, options); s != "" {
		return fmt.Sprintf(" Did you mean %q?", s)
	}
	return ""
}
