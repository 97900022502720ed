// Package explain implements `modproxy doctor explain`: it reads the output
// of the go command (a build or CI log), recognises every module-download
// error in it and explains each one: what it means, how to fix it and, where
// one exists, the exact command to run.
//
// Recognition is driven by a catalog of entries (see [Catalog]). Each entry
// pairs a regular expression for one go command error message with a stable
// ID, a title, the root cause, the fix and command templates. An [Explainer]
// compiles the catalog once; [Explain] is a convenience wrapper that builds a
// fresh Explainer per call. There is no mutable package state: the
// package-level tables are plain data and are never modified.
//
// The input is processed line by line with bounded memory: lines longer than
// 64 KiB are truncated (only their prefix is examined), never buffered whole.
//
// Rules applied while scanning:
//
//   - When a line matches several entries, the entry with the highest
//     Priority wins (the most specific explanation); ties go to the entry
//     that comes first in the catalog.
//   - Lines that merely continue an error already reported (for example the
//     "SECURITY ERROR" banner printed under a checksum mismatch) are folded
//     into that finding instead of producing a second one.
//   - Repeated identical errors (same entry, same text once log decorations
//     such as timestamps are removed) collapse into the first occurrence,
//     whose Count is incremented. Network errors also collapse per entry
//     and host, and local file-system errors per entry: repeating them for
//     every module or file adds nothing.
//   - Generic network and file-system messages ("unexpected EOF", "no space
//     left on device", ...) are only reported on lines that look like go
//     command module output, not in test output or application logs.
//   - Lines in the indented detail of a "server response:" describe what
//     went wrong on the proxy or checksum server, so they are never
//     explained as a network or file-system problem of this machine.
//   - The module (path@version) is taken from the matched line, from proxy,
//     checksum-database or module-cache paths in it, or from the header line
//     of the multi-line go error message the line belongs to.
//   - Commands that the go command itself suggests right after the error
//     ("to add it:", "to update it:", "run:") are captured and listed first.
//   - A line that only says more about the finding just reported (the
//     "server response: not available" under a 403) does not make a finding
//     of its own: its entry takes that finding over (see refines in the
//     catalog).
//   - An error on a toolchain download line ("download go1.N.P:
//     golang.org/toolchain@...") keeps its own explanation (network, proxy,
//     checksum database) and gets the toolchain switch it happened in added
//     to its cause, fix and commands.
//   - Where a command removes a module version from the module cache, it is
//     "modproxy clean --module M@V" when the version is known and "go clean
//     -modcache" otherwise.
package explain
