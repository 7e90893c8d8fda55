// Package watch turns changes of the topology file into pokes of one
// coalescing trigger.
//
// A Trigger is a channel of one: any number of Poke calls before the consumer
// receives from C leave exactly one signal pending, so the consumer (the
// reconcile loop) runs one pass for a whole burst of causes. File events, a
// SIGHUP handler, engine events and a resync ticker may all poke the same
// Trigger; the consumer never learns which, because each pass observes the
// whole world again (level-triggered).
//
// A Watcher watches one file through its directory, never through the file
// itself, because editors and deployment tools replace files rather than
// write them: vim and emacs write a temporary file and rename it over the
// original, others truncate and write in place, `ln -sf` swaps a symlink, and
// Kubernetes ConfigMap volumes swap a `..data` symlink that the file's own
// symlink goes through. Events are filtered by the file's name; on every event
// the file's symlinks are resolved again, and a changed resolution counts as a
// change of the file. When the file resolves into another directory, that
// directory is watched too, so edits of a symlink's target are seen.
//
// Events are debounced: a check runs once the directory has been quiet for
// Options.Debounce after the last relevant event (and at the latest ten
// debounce periods after the first one, so a writer that never stops cannot
// starve the loop). A check reads the file and computes its SHA-256; the
// trigger is poked only when that differs from the last checksum seen. So a
// touch, a chmod or an editor saving the same bytes never pokes, while any
// change of content does, including a change to "missing" (deleted,
// unreadable) and to empty or half-written content: deciding that such
// content is invalid, and keeping the last good spec, is the loader's job.
//
// If the directory itself is removed or renamed away, the Watcher logs it once
// and keeps trying to watch it again; when it comes back the file is checked
// at once. Signals are not this package's business.
package watch
