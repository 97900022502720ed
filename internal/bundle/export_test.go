package bundle

// SetAfterAdmit injects a hook called after each admitted group (a crash
// simulated by its error).
func (o *ImportOptions) SetAfterAdmit(f func(keys []string) error) { o.afterAdmit = f }
