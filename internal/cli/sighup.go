package cli

import (
	"os"
	"os/signal"
	"syscall"
)

// hangups turns SIGHUP into config reloads for `warden serve`: each signal
// is one receive on the returned channel (coalesced while one is pending).
// stop ends the forwarding; SIGHUP then has its default effect again.
func hangups() (reload <-chan struct{}, stop func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	out := make(chan struct{}, 1)
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		for {
			select {
			case <-sig:
				select {
				case out <- struct{}{}:
				default: // a reload is already pending: it will read the newest files
				}
			case <-done:
				return
			}
		}
	}()
	return out, func() {
		signal.Stop(sig)
		close(done)
		<-exited
	}
}
