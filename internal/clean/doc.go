// Package clean is a safe, selective cleaner for the go command's module
// cache (GOMODCACHE). It works in three steps:
//
//	Scan      lists what the cache holds (cheap: directory listings and stats)
//	Plan      selects what goes, following Options, and measures it
//	Apply     removes (or moves to a trash) what the plan selected
//
// and Restore brings a trashed run back.
//
// # What the cache holds
//
// For a module version M@V (ESC is module.EscapePath(M), EV is
// module.EscapeVersion(V)), the go command keeps
//
//	cache/download/ESC/@v/EV.info     the version's metadata
//	cache/download/ESC/@v/EV.mod      its go.mod
//	cache/download/ESC/@v/EV.zip      the module zip
//	cache/download/ESC/@v/EV.ziphash  the zip's h1: hash
//	cache/download/ESC/@v/EV.lock     the per-version lock (lockedfile)
//	cache/download/ESC/@v/EV.partial  present while the tree is extracted
//	ESC@EV/                           the extracted tree, made read-only
//	cache/download/ESC/@v/list        the versions whose .mod is cached
//
// plus VCS clones for direct fetches (cache/vcs/HASH with HASH.info and
// HASH.lock), the checksum database cache (cache/download/sumdb/NAME/...) and
// toolchains, which are ordinary versions of the module golang.org/toolchain.
// Module versions, toolchains, VCS clones and the checksum database cache are
// the four categories a Plan reports separately ("modules", "toolchains",
// "vcs", "sumdb"; --all adds "other" for files that belong to none of them).
//
// # The go command's rules that Apply keeps
//
//   - Every change to a version's files happens while holding the version's
//     lock file, taken with the go command's own protocol
//     (lockedfile.MutexAt(EV.lock)): the go command holds it while it
//     downloads the zip and while it extracts the tree. A version whose lock
//     cannot be taken within ApplyOptions.LockTimeout is skipped whole and
//     reported; it is never half removed. After the lock is taken, the
//     version's files are looked at again, so a download that finished while
//     Apply waited is removed whole too.
//   - The go command treats an extracted tree as complete only while its
//     .ziphash exists and no .partial exists. Apply therefore makes the tree
//     disappear first, atomically (renamed to a sibling ESC@EV.tmp-* name,
//     which the go command itself deletes on its next extraction), then
//     deletes a leftover .partial, then the .ziphash, the .zip, the .mod and
//     the .info. A crash at any point leaves a state the go command repairs.
//     Restore puts files back in the opposite order and the tree last, and
//     only when its .ziphash is there. A tree with a .partial file (an
//     interrupted extraction) and ESC@EV.tmp-* leftovers are deleted, never
//     moved to a trash.
//   - Lock files are never deleted, not even by --all: a go command may be
//     waiting on one, and deleting it would let a second go command lock a new
//     file of the same name at the same time. They are empty.
//   - When a version's .mod goes, the module's @v/list is rewritten the way
//     the go command writes it (every canonical version with a .mod, semver
//     order), under lockedfile.Edit of the list file.
//   - The go command makes extracted trees read-only; Apply makes directories
//     writable before it renames or deletes them.
//   - Directories left empty are removed only by --all (Options.All): a go
//     command creating a sibling directory could otherwise see the parent
//     vanish between two steps of its os.MkdirAll.
//   - VCS clones are removed while holding their HASH.lock; .info first, so
//     an interrupted removal leaves a directory the go command re-clones.
//
// The cache records when a file was downloaded or extracted, never when it
// was last used, so "age" (Options.OlderThan) is the time since the newest
// modification time of an entry's files.
package clean
