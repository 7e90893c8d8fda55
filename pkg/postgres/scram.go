package postgres

// This file depends on the standard library and SASLprep only, so that its
// functions can move to wherever the planner needs them without dragging
// pgx along.

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/xdg-go/stringprep"
)

const (
	// scramPrefix starts every SCRAM-SHA-256 verifier PostgreSQL stores.
	scramPrefix = "SCRAM-SHA-256$"
	// ScramIterations is the iteration count of the verifiers Verifier makes,
	// PostgreSQL's default (scram_iterations).
	ScramIterations = 4096
	// MaxScramIterations is the largest iteration count of a stored verifier
	// that VerifierMatches computes. A role can store a verifier with any
	// count (2^25 takes PBKDF2 seconds, 2^30 minutes); one beyond this bound
	// is taken for drift without computing it, so that pacsd replaces it
	// with its own verifier (ScramIterations).
	MaxScramIterations = 16 * ScramIterations
	// scramSaltLen is the salt length PostgreSQL uses for its own verifiers.
	scramSaltLen = 16
)

// Verifier returns a SCRAM-SHA-256 verifier of password with a random 16-byte
// salt and 4096 iterations, in the form PostgreSQL stores in
// pg_authid.rolpassword (RFC 5802, RFC 7677):
//
//	SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>
//
// with standard, padded base64. Given to CREATE or ALTER ROLE ... PASSWORD, it
// is stored as is, so the password itself never reaches the server.
//
// PostgreSQL and libpq pass a password through SASLprep (RFC 4013) before
// hashing it, pgx through PRECIS (RFC 8265), and they differ where a
// password changes under them: NFKC against NFC, the order of mappings,
// where the checks run. Verifier hashes the password after SASLprep
// (saslprep) and takes non-ASCII text only when SASLprep leaves it as it
// is (composed text in any script: "Größe", "пароль", "密码"): every client
// then logs in with it as written. A password that SASLprep would change
// (a ligature, a superscript, a no-break or zero-width space, a soft
// hyphen, decomposed accents) or refuse is refused with what to do, never
// quoted. ASCII, and bytes that are not UTF-8, are hashed as they are, as
// every client does. An empty password is refused.
func Verifier(password string) (string, error) {
	if password == "" {
		return "", errors.New("while making a SCRAM verifier: the password is empty")
	}
	if !isASCII(password) && utf8.ValidString(password) {
		if p, err := stringprep.SASLprep.Prepare(password); err != nil || p != password {
			return "", errors.New("while making a SCRAM verifier: the password holds characters that SASLprep changes or refuses " +
				"(a ligature, a superscript, a no-break or zero-width space, a soft hyphen, a decomposed accent, a control character); " +
				"PostgreSQL, libpq and pgx prepare such passwords differently, so a login could fail: write it in composed form " +
				"(NFKC) without those characters")
		}
	}
	salt := make([]byte, scramSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("while making a SCRAM salt: %w", err)
	}
	stored, server, err := scramKeys(password, salt, ScramIterations)
	if err != nil {
		return "", err
	}
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("%s%d:%s$%s:%s", scramPrefix, ScramIterations, b64(salt), b64(stored), b64(server)), nil
}

// VerifierMatches reports whether verifier is a SCRAM-SHA-256 verifier of
// password: it recomputes the keys with the verifier's own salt and iteration
// count and compares them in constant time. It hashes the password after
// SASLprep, as PostgreSQL does (see Verifier). An
// md5 verifier, a plain-text password or a malformed verifier yields false,
// and so does a verifier with more than MaxScramIterations iterations, at
// once, without computing it.
//
// Answers are remembered (at most matchCacheSize of them, keyed by a keyed
// hash of verifier and password that is useless outside this process), so
// the passes that look at the same roles again compute nothing. It is safe
// for concurrent use.
func VerifierMatches(verifier, password string) bool {
	v, ok := parseVerifier(verifier)
	if !ok || v.iterations > MaxScramIterations {
		return false
	}
	key := matchKey(verifier, password)
	matchCache.Lock()
	got, known := matchCache.m[key]
	matchCache.Unlock()
	if known {
		return got
	}
	stored, server, err := scramKeys(password, v.salt, v.iterations)
	if err != nil {
		return false
	}
	got = subtle.ConstantTimeCompare(stored, v.storedKey)&subtle.ConstantTimeCompare(server, v.serverKey) == 1
	matchCache.Lock()
	defer matchCache.Unlock()
	if matchCache.m == nil {
		matchCache.m = make(map[[sha256.Size]byte]bool, matchCacheSize)
	}
	for k := range matchCache.m { // full: forget one answer, any
		if len(matchCache.m) < matchCacheSize {
			break
		}
		delete(matchCache.m, k)
	}
	matchCache.m[key] = got
	return got
}

// matchCacheSize bounds the answers VerifierMatches remembers.
const matchCacheSize = 256

// matchCache holds the answers of VerifierMatches by matchKey.
var matchCache struct {
	sync.Mutex
	m map[[sha256.Size]byte]bool
}

// matchSecret keys matchKey: random, for this process only.
var matchSecret = func() []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("while making a random key: %v", err))
	}
	return b
}()

// matchKey identifies a (verifier, password) pair: an HMAC of both under
// matchSecret, so that the cache holds no unsalted hash of a password.
func matchKey(verifier, password string) [sha256.Size]byte {
	m := hmac.New(sha256.New, matchSecret)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(verifier)))
	m.Write(n[:])
	m.Write([]byte(verifier))
	m.Write([]byte(password))
	var k [sha256.Size]byte
	m.Sum(k[:0])
	return k
}

// IsVerifier reports whether s has the form of a SCRAM-SHA-256 verifier as
// PostgreSQL stores it (not whether it belongs to any password).
func IsVerifier(s string) bool {
	_, ok := parseVerifier(s)
	return ok
}

// scramVerifier is a parsed SCRAM-SHA-256 verifier.
type scramVerifier struct {
	iterations           int
	salt                 []byte
	storedKey, serverKey []byte
}

// parseVerifier splits "SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>".
func parseVerifier(s string) (scramVerifier, bool) {
	rest, ok := strings.CutPrefix(s, scramPrefix)
	if !ok {
		return scramVerifier{}, false
	}
	params, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return scramVerifier{}, false
	}
	iter, salt, ok1 := strings.Cut(params, ":")
	stored, server, ok2 := strings.Cut(keys, ":")
	if !ok1 || !ok2 {
		return scramVerifier{}, false
	}
	n, err := strconv.ParseInt(iter, 10, 32)
	if err != nil || n < 1 {
		return scramVerifier{}, false
	}
	v := scramVerifier{iterations: int(n)}
	dec := base64.StdEncoding.DecodeString
	var e1, e2, e3 error
	v.salt, e1 = dec(salt)
	v.storedKey, e2 = dec(stored)
	v.serverKey, e3 = dec(server)
	if e1 != nil || e2 != nil || e3 != nil || len(v.salt) == 0 ||
		len(v.storedKey) != sha256.Size || len(v.serverKey) != sha256.Size {
		return scramVerifier{}, false
	}
	return v, true
}

// scramDerivations counts the key derivations (PBKDF2 runs) of this process.
var scramDerivations atomic.Int64

// scramKeys derives StoredKey and ServerKey of RFC 5802 from password.
func scramKeys(password string, salt []byte, iterations int) (stored, server []byte, err error) {
	scramDerivations.Add(1)
	salted, err := pbkdf2.Key(sha256.New, saslprep(password), salt, iterations, sha256.Size)
	if err != nil {
		return nil, nil, fmt.Errorf("while deriving SCRAM keys: %w", err)
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	return storedKey[:], hmacSHA256(salted, "Server Key"), nil
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// saslprep prepares a password as PostgreSQL does before SCRAM hashes it
// (pg_saslprep): SASLprep (RFC 4013, stored strings: no unassigned code
// points) of valid UTF-8; a password that is not valid UTF-8, or that
// SASLprep refuses (a prohibited or unassigned character, mixed
// directions), is used as its raw bytes.
func saslprep(password string) string {
	if !utf8.ValidString(password) {
		return password
	}
	p, err := stringprep.SASLprep.Prepare(password)
	if err != nil {
		return password
	}
	return p
}
