// Package modrefs is the one reader of go.mod, go.sum, go.work and
// go.work.sum files. It says which module versions a project references and
// how much of each one it needs from a module cache or a proxy, with one set
// of rules for every consumer: modproxy gc pins these versions, modproxy
// clean keeps them in the go command's module cache and modproxy prefetch
// fetches them. The rules are the go command's (cmd/go/internal/modload),
// applied offline: nothing is fetched, and module versions that the go
// command would reach only through the module graph are known through the
// go.sum lines it wrote for them.
//
// # What is needed
//
// A module version is needed whole (Zip: its .zip, with its .mod and .info)
// or for its go.mod only (GoMod: its .mod; a cache may keep the .info beside
// it, but nothing reads the zip). When several lines name one version, the
// most that any of them asks for wins. A version no line names needs None.
//
// # go.sum and go.work.sum
//
// A line "M V h1:HASH" needs M@V whole; a line "M V/go.mod h1:HASH" needs
// M@V's go.mod only. Lines are taken as they are: go.sum holds what the go
// command downloaded and verified, and replace directives do not apply to
// it (for a replaced module the go command writes the lines of the
// replacement, never those of the replaced version). Blank lines are
// ignored. A line without three fields is a problem, as it is for the go
// command; so is a line whose module path or version is invalid or whose
// version is not canonical.
//
// # go.mod
//
// A go.mod file is read as the go command reads its main module:
//
//   - require M V needs M@V whole, whether or not a go.sum beside it has a
//     zip line for it: go mod download (without arguments, go 1.17 and
//     later) downloads the zip of every module its go.mod requires.
//   - exclude M V: a requirement of M@V needs nothing (the go command drops
//     it), and a replacement of exactly M@V is never used.
//   - replace M V => N W (a version replacement) applies to M@V; replace
//     M => N W (a wildcard replacement) to every version of M; the
//     version replacement wins where both exist. A replaced requirement
//     needs the replacement N@W whole and nothing of M@V, not even its
//     go.mod: the go command reads the replacement's go.mod in place of the
//     replaced version's (modload.Replacement, rawGoModSummary) and
//     downloads the replacement's zip. So for "require a v1.0.0" with
//     "replace a v1.0.0 => a v1.0.1", only a@v1.0.1 is referenced, whole.
//   - replace M [V] => DIR (a directory replacement: N is a file path and W
//     is empty) references nothing in a module cache; the requirement is
//     reported as skipped.
//   - A version or wildcard replacement that no require line uses still
//     needs its replacement's go.mod: the module graph can reach M through a
//     dependency's go.mod (an unpruned go 1.16 module, for instance), and the
//     go command then reads N@W's go.mod. If it builds with N@W's code too,
//     the go.sum beside has the zip line.
//   - go and toolchain lines name toolchains (GoVersions).
//
// A go.mod that modfile.Parse rejects (a newer go command's directive, for
// instance) is a problem; its require, go and toolchain lines are still read
// with modfile.ParseLax, which ignores replace and exclude, so more is
// referenced rather than less. A go.mod that ParseLax rejects too is skipped.
//
// # go.work
//
// A go.work file makes one workspace of the go.mod files in its use
// directories (relative to the go.work's directory), read as the go command
// reads them in workspace mode:
//
//   - a requirement of a workspace module (a module the workspace uses)
//     needs nothing: it is built from its directory; it is reported as
//     skipped;
//   - the replace directives of the go.work apply first; a go.work
//     replacement of M hides every replacement of M in the modules, at any
//     version;
//   - the replace and exclude directives of every workspace module apply to
//     the requirements of all of them, not only its own. Two modules
//     replacing one version differently is a problem (the go command refuses
//     such a workspace); both replacements are then referenced;
//   - replacements no requirement uses follow the go.mod rule above;
//   - the go.sum beside each used go.mod, and the go.work.sum beside the
//     go.work, are read as go.sum files;
//   - a use directory without a go.mod is a problem.
//
// A go.work that modfile.ParseWork rejects is skipped; its modules are then
// read as single modules if a directory walk finds them.
//
// # Files and directories
//
// Set.AddPaths reads files by their name (go.work; go.sum, go.work.sum and
// any *.sum as go.sum; go.mod and any *.mod as go.mod; any other name is
// ErrNotModFile) and walks directories for files named go.mod, go.sum,
// go.work and go.work.sum. A walk does not enter the directories the go
// command ignores in ./... patterns (names beginning with "." or "_",
// testdata, vendor) nor those in Options.Skip, and does not follow symbolic
// links. Vendor directories are not read: a vendor/modules.txt needs nothing
// from a module cache, and the go.mod and go.sum beside it say what a build
// with -mod=mod needs. All go.work files found by one call are read first,
// so that their modules are read as a workspace; every file is read at most
// once, however it is reached, but a go.mod read alone before a go.work
// uses it is read again as part of the workspace (what both need is
// referenced).
//
// # Problems and errors
//
// Reading is lax: what parses is used, and each part that does not is
// recorded as a *FileError in Set.Problems, naming the file and line;
// FileError.Skipped tells that nothing of the file was used. Each consumer
// decides: prefetch refuses any problem (a set with a hole would be
// fetched), gc refuses a pin set with a skipped file (an unknown pin could
// be evicted), clean warns about skipped files. A file or directory that
// cannot be read is an error of AddPaths, returned as the os package
// reports it (it names the path).
//
// A Set is not safe for concurrent use.
package modrefs
