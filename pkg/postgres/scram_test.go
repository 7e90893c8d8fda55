package postgres

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestScramKeysRFC7677 checks the key derivation against the exchange of
// RFC 7677 section 3 (user "user", password "pencil"): the client proof,
// undone with StoredKey, must give a ClientKey hashing to StoredKey, and
// ServerKey must sign the exchange as the server's final message says.
func TestScramKeysRFC7677(t *testing.T) {
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	stored, server, err := scramKeys("pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	const nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	auth := "n=user,r=rOprNGfwEbeRWgbNEkqO," +
		"r=" + nonce + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096," +
		"c=biws,r=" + nonce
	proof, _ := base64.StdEncoding.DecodeString("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
	sig := hmacSHA256(stored, auth)
	clientKey := make([]byte, len(proof))
	for i := range proof {
		clientKey[i] = proof[i] ^ sig[i]
	}
	if got := sha256.Sum256(clientKey); !hmac.Equal(got[:], stored) {
		t.Errorf("StoredKey does not verify the RFC 7677 client proof")
	}
	if got := base64.StdEncoding.EncodeToString(hmacSHA256(server, auth)); got != "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=" {
		t.Errorf("server signature = %s, want RFC 7677's 6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", got)
	}
}

var verifierForm = regexp.MustCompile(`^SCRAM-SHA-256\$4096:[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$`)

func TestVerifierFormat(t *testing.T) {
	a, err := Verifier("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Verifier("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{a, b} {
		if !verifierForm.MatchString(v) {
			t.Errorf("Verifier = %q, not of PostgreSQL's form", v)
		}
		if strings.Contains(v, "s3cret") {
			t.Errorf("Verifier = %q holds the password", v)
		}
	}
	if a == b {
		t.Errorf("two verifiers of one password are equal (%q): the salt is not random", a)
	}
	if !VerifierMatches(a, "s3cret") || !VerifierMatches(b, "s3cret") {
		t.Errorf("a verifier does not match its own password")
	}
	if VerifierMatches(a, "s3cret ") || VerifierMatches(a, "S3cret") || VerifierMatches(a, "") {
		t.Errorf("a verifier matches another password")
	}
}

func TestVerifierRefuses(t *testing.T) {
	for _, pw := range []string{"", "\u00ad\u200b"} {
		if v, err := Verifier(pw); err == nil {
			t.Errorf("Verifier(%q) = %q, want an error", pw, v)
		} else if pw != "" && strings.Contains(err.Error(), pw) {
			t.Errorf("Verifier(%q): the error quotes the password: %v", pw, err)
		}
	}
	// Bytes that are not UTF-8 are hashed as they are, as PostgreSQL and
	// its clients do when SASLprep fails.
	raw := "pass\xffword"
	v, err := Verifier(raw)
	if err != nil || !VerifierMatches(v, raw) {
		t.Errorf("Verifier(invalid UTF-8) = %q, %v; want a verifier that matches", v, err)
	}
}

// TestSASLprep: passwords are prepared as RFC 4013 says (its examples) and
// as PostgreSQL does: what SASLprep refuses is hashed as its raw bytes; a
// verifier matches every password with the same preparation.
func TestSASLprep(t *testing.T) {
	for in, want := range map[string]string{
		"I\u00adX":       "IX",           // soft hyphen mapped to nothing
		"user":           "user",         // no transformation
		"USER":           "USER",         // case preserved
		"\u00aa":         "a",            // NFKC
		"\u2168":         "IX",           // NFKC
		"a\u00a0b":       "a b",          // non-ASCII space mapped to space
		"\ufb01le":       "file",         // ligature, NFKC
		"pässwort":       "pässwort",     // composed stays composed
		"pa\u0308sswort": "pässwort",     // decomposed is composed
		"\u0007":         "\u0007",       // prohibited: raw
		"\u0627\u0031":   "\u0627\u0031", // bidi rule broken: raw
	} {
		if got := saslprep(in); got != want {
			t.Errorf("saslprep(%q) = %q, want %q", in, got, want)
		}
	}
	// Verifier takes non-ASCII text only as SASLprep leaves it.
	for _, pw := range []string{"Gr\u00f6\u00dfe-Stra\u00dfe", "\u043f\u0430\u0440\u043e\u043b\u044c", "\u5bc6\u7801", "p\u00e4sswort"} {
		v, err := Verifier(pw)
		if err != nil || !VerifierMatches(v, pw) {
			t.Errorf("Verifier(%q): %v; want a verifier that matches it", pw, err)
		}
	}
	for _, pw := range []string{"Gr\u00f6\u00dfe-\ufb01x", "a\u00a0b", "x\u00b2", "soft\u00adhyphen", "pa\u0308sswort", "\u0627\u0031", "zero\u200bwidth"} {
		if _, err := Verifier(pw); err == nil || strings.Contains(err.Error(), pw) {
			t.Errorf("Verifier(%q): %v; want a refusal that does not quote it", pw, err)
		}
	}
}

func TestVerifierMatchesMalformed(t *testing.T) {
	good, err := Verifier("pw")
	if err != nil {
		t.Fatal(err)
	}
	_, keys, _ := strings.Cut(strings.TrimPrefix(good, scramPrefix), "$")
	for _, v := range []string{
		"",
		"pw",
		"md5" + strings.Repeat("0", 32),
		"SCRAM-SHA-256$",
		"SCRAM-SHA-256$4096:c2FsdA==",
		"SCRAM-SHA-256$0:c2FsdA==$" + keys,
		"SCRAM-SHA-256$-1:c2FsdA==$" + keys,
		"SCRAM-SHA-256$x:c2FsdA==$" + keys,
		"SCRAM-SHA-256$99999999999:c2FsdA==$" + keys,
		"SCRAM-SHA-256$4096:$" + keys,
		"SCRAM-SHA-256$4096:!!$" + keys,
		"SCRAM-SHA-256$4096:c2FsdA==$c2FsdA==:c2FsdA==",
		"SCRAM-SHA-1$4096:c2FsdA==$" + keys,
		good + "x",
	} {
		if VerifierMatches(v, "pw") {
			t.Errorf("VerifierMatches(%q, pw) = true, want false", v)
		}
		if IsVerifier(v) {
			t.Errorf("IsVerifier(%q) = true, want false", v)
		}
	}
	if !IsVerifier(good) {
		t.Errorf("IsVerifier(%q) = false", good)
	}
}

// verifierWith returns a verifier of password with iterations (computed), or
// with random keys when fake.
func verifierWith(t *testing.T, password string, iterations int, fake bool) string {
	t.Helper()
	salt := []byte("0123456789abcdef")
	stored, server := make([]byte, sha256.Size), make([]byte, sha256.Size)
	if fake {
		copy(stored, "not the stored key of anything..")
		copy(server, "not the server key of anything..")
	} else {
		var err error
		if stored, server, err = scramKeys(password, salt, iterations); err != nil {
			t.Fatal(err)
		}
	}
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(stored), b64(server))
}

// TestVerifierMatchesHugeIterations: a verifier with an iteration count
// beyond MaxScramIterations is drift, answered without computing it.
func TestVerifierMatchesHugeIterations(t *testing.T) {
	v := verifierWith(t, "s3cret", 1<<30, true)
	done := make(chan bool, 1)
	began := time.Now()
	go func() { done <- VerifierMatches(v, "s3cret") }()
	select {
	case got := <-done:
		if got {
			t.Error("a verifier with 2^30 iterations matched")
		}
		if d := time.Since(began); d > 100*time.Millisecond {
			t.Errorf("VerifierMatches took %s on a verifier with 2^30 iterations", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("VerifierMatches computes a verifier with 2^30 iterations (still running after 2 s)")
	}
	// At the bound a verifier still counts; beyond it, even a true one is drift.
	if !VerifierMatches(verifierWith(t, "s3cret", MaxScramIterations, false), "s3cret") {
		t.Errorf("a true verifier with MaxScramIterations (%d) iterations does not match", MaxScramIterations)
	}
	if VerifierMatches(verifierWith(t, "s3cret", MaxScramIterations+1, false), "s3cret") {
		t.Errorf("a verifier with more than MaxScramIterations (%d) iterations matches", MaxScramIterations)
	}
}

// TestVerifierMatchesCached: asking again about the same verifier and
// password computes nothing; another password or verifier is computed.
func TestVerifierMatchesCached(t *testing.T) {
	v, err := Verifier("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	before := scramDerivations.Load()
	for range 3 {
		if !VerifierMatches(v, "s3cret") {
			t.Fatal("a verifier does not match its password")
		}
		if VerifierMatches(v, "other") {
			t.Fatal("a verifier matches another password")
		}
	}
	if n := scramDerivations.Load() - before; n != 2 {
		t.Errorf("three rounds over two (verifier, password) pairs derived keys %d times, want 2", n)
	}
	// The cache is bounded.
	for i := range 2 * matchCacheSize {
		VerifierMatches(v, fmt.Sprint("p", i))
	}
	matchCache.Lock()
	n := len(matchCache.m)
	matchCache.Unlock()
	if n > matchCacheSize {
		t.Errorf("the cache holds %d entries, more than its bound %d", n, matchCacheSize)
	}
}
