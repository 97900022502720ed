package skipmod

import "testing"

func TestPasses(t *testing.T) {}

func TestSkipsWithReason(t *testing.T) {
	t.Log("looking for frobd")
	t.Skip("frobd is not installed; install it with apt-get install frobd")
}

func TestSubtests(t *testing.T) {
	t.Run("runs", func(t *testing.T) {})
	t.Run("skips", func(t *testing.T) { t.Skipf("needs %s", "a frob") })
}

func TestFails(t *testing.T) {
	t.Log("about to fail")
	t.Error("the frob is broken")
}
