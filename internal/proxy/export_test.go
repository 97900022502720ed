package proxy

// SetZipCheckHooks makes s call wait(key) when a zip's fill waits for a
// ZipChecks slot and check(key) when it starts checking the zip (holding
// a slot). Call it before the first Get.
func SetZipCheckHooks(s *Service, wait, check func(key string)) {
	s.zipHooks.wait, s.zipHooks.check = wait, check
}

// WaitWarmups waits for the warmings started so far (Options.Warm) to end.
func WaitWarmups(s *Service) { s.warmups.wg.Wait() }
