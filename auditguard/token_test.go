package auditguard

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	vault "github.com/hashicorp/vault/api"
)

// TestKeepLoggedIn (issue 11 item 18): the renewal goroutine never gives up — renewal that cannot
// start or ends leads to a new login, a failing login is retried with backoff — and it returns as
// soon as its context ends, also in the middle of a backoff.
func TestKeepLoggedIn(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		renewErrs []error // one per renewal, then renewals block until ctx ends
		loginErrs int     // logins failing before one succeeds
		wantLogin int     // logins (successful or not) before the test cancels
	}{
		"renewal unavailable: log in again":     {renewErrs: []error{errors.New("lifetime watcher: secret has no auth")}, wantLogin: 1},
		"renewal ended twice: log in each time": {renewErrs: []error{nil, errors.New("token expired")}, wantLogin: 2},
		"login failing: retried until it works": {renewErrs: []error{nil}, loginErrs: 3, wantLogin: 4},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var renewals, logins atomic.Int32
			renew := func(ctx context.Context, _ *vault.Secret) error {
				i := int(renewals.Add(1)) - 1
				if i < len(tc.renewErrs) {
					return tc.renewErrs[i]
				}
				<-ctx.Done()
				return nil
			}
			login := func(context.Context) (*vault.Secret, error) {
				if int(logins.Add(1)) <= tc.loginErrs {
					return nil, errors.New("vault kubernetes login: 500")
				}
				return &vault.Secret{}, nil
			}
			done := make(chan struct{})
			go func() {
				keepLoggedIn(ctx, &vault.Secret{}, login, renew, func(int) time.Duration { return time.Millisecond }, testr.New(t))
				close(done)
			}()
			deadline := time.Now().Add(10 * time.Second)
			for int(renewals.Load()) <= len(tc.renewErrs) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if got := int(logins.Load()); got != tc.wantLogin {
				t.Errorf("logins = %d, want %d", got, tc.wantLogin)
			}
			cancel()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("keepLoggedIn did not return after its context ended")
			}
		})
	}
	t.Run("context ends during a backoff", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			keepLoggedIn(ctx, &vault.Secret{}, func(context.Context) (*vault.Secret, error) { return nil, errors.New("down") },
				func(context.Context, *vault.Secret) error { return errors.New("ended") },
				func(int) time.Duration { return time.Hour }, testr.New(t))
			close(done)
		}()
		time.Sleep(20 * time.Millisecond)
		cancel()
		select {
		case <-done:
		case <-time.After(time.Second):
			t.Fatal("keepLoggedIn slept through its context's end")
		}
	})
}

// TestTokenFileReread (issue 11 item 18): a --vault-token-file is a mounted Secret that is
// rotated in place; the client picks the new token up.
func TestTokenFileReread(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte("s.first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := vault.NewClient(vault.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken("s.first")
	go watchTokenFile(t.Context(), c, path, 5*time.Millisecond, testr.New(t))
	if err := os.WriteFile(path, []byte("s.second\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.Token() != "s.second" {
		if time.Now().After(deadline) {
			t.Fatalf("token = %q, want the rotated one", c.Token())
		}
		time.Sleep(time.Millisecond)
	}
	if err := os.WriteFile(path, []byte(""), 0o600); err != nil { // half-written: keep the last good token
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if c.Token() != "s.second" {
		t.Errorf("token = %q after an empty file, want the last good one", c.Token())
	}
}
