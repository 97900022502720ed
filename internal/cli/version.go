package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// linkVersion and linkRevision are the fallback for builds whose build
// information has no module version or VCS revision (a build from a source
// tree without VCS stamping, -buildvcs=false, or from an archive):
//
//	go build -ldflags "-X github.com/modproxy/modproxy/internal/cli.linkVersion=v1.2.3 \
//	    -X github.com/modproxy/modproxy/internal/cli.linkRevision=$(git rev-parse HEAD)" ./cmd/modproxy
//
// The linker sets them; no code assigns them, so they are constants of the
// binary rather than mutable state.
var (
	linkVersion  string
	linkRevision string
)

// buildInfo is what modproxy knows of its own build.
type buildInfo struct {
	Version  string // module version, "(devel)" when unknown
	Revision string // VCS revision, "" when unknown
	Time     string // VCS commit time, "" when unknown
	Modified bool   // the work tree had uncommitted changes
	Go       string // the Go version it was built with
}

// readBuildInfo combines the build information of the binary (bi, nil
// when there is none) with the linker fallbacks: the module version is
// bi's unless it is empty or "(devel)", then ldVersion's; the revision is
// bi's vcs.revision, else ldRevision.
func readBuildInfo(bi *debug.BuildInfo, ldVersion, ldRevision string) buildInfo {
	b := buildInfo{Version: "(devel)", Go: runtime.Version()}
	if bi != nil {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			b.Version = v
		}
		if bi.GoVersion != "" {
			b.Go = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.time":
				b.Time = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if b.Version == "(devel)" && ldVersion != "" {
		b.Version = ldVersion
	}
	if b.Revision == "" {
		b.Revision = ldRevision
	}
	return b
}

// short is the version in one word: the module version, or for a
// development build "(devel)" with the first 12 digits of the revision.
func (b buildInfo) short() string {
	if b.Version != "(devel)" || b.Revision == "" {
		return b.Version
	}
	rev := b.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if b.Modified {
		rev += "+modified"
	}
	return "(devel) " + rev
}

func (b buildInfo) write(w io.Writer) {
	fmt.Fprintf(w, "modproxy %s\n", b.Version)
	switch {
	case b.Revision == "":
		fmt.Fprintln(w, "revision unknown (built without VCS information; see go help buildvcs, or set it with -ldflags -X)")
	default:
		fmt.Fprintf(w, "revision %s", b.Revision)
		if b.Modified {
			fmt.Fprint(w, " (modified)")
		}
		if b.Time != "" {
			fmt.Fprintf(w, ", committed %s", b.Time)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "built with %s %s/%s\n", b.Go, runtime.GOOS, runtime.GOARCH)
}

func currentBuild() buildInfo {
	bi, _ := debug.ReadBuildInfo()
	return readBuildInfo(bi, linkVersion, linkRevision)
}

// Version returns modproxy's version in one word (see buildInfo.short),
// for logs, the admin API and User-Agent headers.
func Version() string { return currentBuild().short() }

func versionCommand() *command {
	return &command{
		name: "version", summary: "print the version, the VCS revision and the Go version",
		help: "Prints the module version of modproxy, the VCS revision it was built from\n(\"(modified)\" when the work tree had uncommitted changes) and the Go\nversion it was built with. They come from the binary's build information;\na build without it can set them with\n  -ldflags \"-X github.com/modproxy/modproxy/internal/cli.linkVersion=VERSION\n            -X github.com/modproxy/modproxy/internal/cli.linkRevision=REVISION\"",
		setup: func(fs *flag.FlagSet) runFunc {
			return func(_ context.Context, env Env, _ []string) int {
				currentBuild().write(env.Stdout)
				return ExitOK
			}
		},
	}
}
