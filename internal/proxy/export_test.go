package proxy

import (
	"context"

	"github.com/modproxy/modproxy/internal/artifact"
)

// SetZipCheckHooks makes s call wait(key) when a zip's fill waits for a
// ZipChecks slot and check(key) when it starts checking the zip (holding
// a slot). Call it before the first Get.
func SetZipCheckHooks(s *Service, wait, check func(key string)) {
	s.zipHooks.wait, s.zipHooks.check = wait, check
}

// WaitWarmups waits for the warmings started so far (Options.Warm) to end.
func WaitWarmups(s *Service) { s.warmups.wg.Wait() }

// FillAndOpen is the fill a Get starts after it found key missing in the
// store.
func FillAndOpen(s *Service, key string) (*Result, error) {
	req, err := artifact.Parse(key)
	if err != nil {
		return nil, err
	}
	return s.fillAndOpen(context.Background(), req)
}
