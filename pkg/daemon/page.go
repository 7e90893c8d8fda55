package daemon

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// The status page: plain HTML, JS and CSS, embedded in the binary; no
// external asset, no build step. The script polls /status and /events and
// draws the topology in place.
//
//go:embed web
var webFS embed.FS

// pageCSP allows the page only its own files and requests: no inline
// script or style, no other origin.
const pageCSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'"

// pageFile is one embedded file of the page, with its validator.
type pageFile struct {
	body        []byte
	contentType string
	etag        string
}

// pageFiles reads the embedded files once, keyed by their path under web/.
var pageFiles = sync.OnceValue(func() map[string]pageFile {
	files := map[string]pageFile{}
	err := fs.WalkDir(webFS, "web", func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		b, err := webFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		files[strings.TrimPrefix(p, "web/")] = pageFile{body: b, contentType: pageContentType(p), etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil { // the files are compiled in: this cannot fail
		panic("daemon: reading the embedded status page: " + err.Error())
	}
	return files
})

func pageContentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// pageHandler serves the status page: / is web/index.html, /web/NAME the
// page's other files. Only GET (and HEAD); every answer forbids inline
// script and style and other origins (pageCSP), sniffing, and using a copy
// without asking again (the ETag makes asking again cheap).
func pageHandler() http.Handler {
	files := pageFiles()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-cache")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := "index.html"
		if r.URL.Path != "/" {
			rest, ok := strings.CutPrefix(r.URL.Path, "/web/")
			if !ok || rest == "" || path.Clean("/"+rest) != "/"+rest {
				http.NotFound(w, r)
				return
			}
			name = rest
		}
		f, ok := files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h.Set("Content-Type", f.contentType)
		h.Set("ETag", f.etag)
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.body))
	})
}
