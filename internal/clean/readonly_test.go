//go:build unix

package clean

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"

	"github.com/modproxy/modproxy/internal/clean/cleantest"
)

// The read-only test must run without privileges: root ignores directory
// permissions, so a cleaner that forgot to make trees writable would pass.
// As root, the test hands the cache to an unprivileged user (nobody,
// 65534) and runs the cleaning steps in a child process as that user.
const (
	helperEnvCache = "CLEAN_TEST_HELPER_MODCACHE"
	helperEnvProj  = "CLEAN_TEST_HELPER_PROJ"
	helperEnvTrash = "CLEAN_TEST_HELPER_TRASH"
	nobody         = 65534
)

func TestReadOnlyTrees(t *testing.T) {
	f := cleantest.NewFixture(t)
	tree := filepath.Join(f.ModCache, "example.com", "b@v1.0.0")
	if st, err := os.Stat(tree); err != nil || st.Mode().Perm()&0o222 != 0 {
		t.Fatalf("the go command left %s writable: %v %v", tree, st.Mode(), err)
	}
	// A read-only download directory, too.
	if err := os.Chmod(filepath.Join(f.ModCache, "cache/download/example.com/c/@v"), 0o555); err != nil {
		t.Fatal(err)
	}
	before := cleantest.CachedFiles(t, f.ModCache)
	needs := cleantest.GoSumNeeds(t, filepath.Join(f.Proj, "go.sum"))
	trash := filepath.Join(f.Root, "trash")
	if err := os.Mkdir(trash, 0o755); err != nil {
		t.Fatal(err)
	}

	if os.Getuid() != 0 {
		readOnlySteps(t, f.ModCache, f.Proj, trash)
	} else {
		// Hand the cache and the trash to nobody, let it reach them, and
		// run the test binary again as nobody.
		for _, dir := range []string{f.ModCache, trash} {
			err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				return os.Lchown(p, nobody, nobody)
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		for dir := f.Root; dir != filepath.Dir(dir) && dir != os.TempDir(); dir = filepath.Dir(dir) {
			if st, err := os.Stat(dir); err == nil && st.Mode().Perm()&0o005 != 0o005 {
				if err := os.Chmod(dir, st.Mode().Perm()|0o005); err != nil {
					t.Fatal(err)
				}
			}
		}
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(f.Root, "clean.test")
		if err := copyExecutable(exe, bin); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-test.run=^TestReadOnlyHelper$", "-test.v", "-test.count=1")
		cmd.Env = []string{helperEnvCache + "=" + f.ModCache, helperEnvProj + "=" + f.Proj, helperEnvTrash + "=" + trash, "HOME=/nonexistent", "TMPDIR=" + trash}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		out, err := cmd.CombinedOutput()
		t.Logf("as uid %d:\n%s", nobody, out)
		if err != nil {
			t.Fatalf("cleaning as an unprivileged user: %v", err)
		}
	}

	after := cleantest.CachedFiles(t, f.ModCache)
	if want := cleantest.KeepExpected(before, needs); !reflect.DeepEqual(after, want) {
		t.Errorf("after clean:\n%v\nwant\n%v", after, want)
	}
	if out, err := f.Go(context.Background(), f.Proj, []string{"GOPROXY=off"}, "build", "./..."); err != nil {
		t.Fatalf("offline build: %v\n%s", err, out)
	}
}

// TestReadOnlyHelper runs the cleaning steps of TestReadOnlyTrees in the
// unprivileged child process.
func TestReadOnlyHelper(t *testing.T) {
	modCache := os.Getenv(helperEnvCache)
	if modCache == "" {
		t.Skip("only run by TestReadOnlyTrees")
	}
	readOnlySteps(t, modCache, os.Getenv(helperEnvProj), os.Getenv(helperEnvTrash))
}

// readOnlySteps moves the unreferenced versions (read-only trees included)
// to the trash, restores them, checks that the trees are read-only again,
// and finally deletes them.
func readOnlySteps(t *testing.T, modCache, proj, trash string) {
	tree := filepath.Join(modCache, "example.com", "b@v1.0.0")
	// Without privileges, a plain removal fails here.
	if err := os.Remove(filepath.Join(tree, "b.go")); !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("removing a file of a read-only tree: %v; want permission denied (privileged?)", err)
	}
	o := Options{KeepReferenced: []string{proj}}
	p := mustScanPlan(t, modCache, o)
	res, err := p.Apply(context.Background(), ApplyOptions{Trash: trash})
	if err != nil || res.Failed != 0 || res.Done != len(p.Items) || res.Done == 0 {
		for _, it := range p.Items {
			t.Logf("%s %s %s", it.Target, it.Status, it.Error)
		}
		t.Fatalf("Apply to the trash = %+v, %v", res, err)
	}
	if _, err := os.Lstat(tree); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("tree still there: %v", err)
	}
	if _, err := Restore(context.Background(), trash, res.RunID, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(tree)
	if err != nil || st.Mode().Perm()&0o222 != 0 {
		t.Fatalf("restored tree: %v, %v; want read-only", st.Mode(), err)
	}
	p = mustScanPlan(t, modCache, o)
	res, err = p.Apply(context.Background(), ApplyOptions{})
	if err != nil || res.Failed != 0 || res.Done != len(p.Items) {
		for _, it := range p.Items {
			t.Logf("%s %s %s", it.Target, it.Status, it.Error)
		}
		t.Fatalf("Apply = %+v, %v", res, err)
	}
}

func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
