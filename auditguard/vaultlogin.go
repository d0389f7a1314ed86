package auditguard

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	vault "github.com/hashicorp/vault/api"
)

// The guard's Vault token: from VAULT_TOKEN, a token file re-read while it runs, or a Kubernetes
// auth login renewed and repeated for as long as the guard runs.

// NewVaultClient builds a client from the vault CLI's environment and the configured token source.
func NewVaultClient(ctx context.Context, cfg Config, log logr.Logger) (*vault.Client, error) {
	vc := vault.DefaultConfig() // VAULT_ADDR, VAULT_CACERT, VAULT_CLIENT_TIMEOUT, ...
	if vc.Error != nil {
		return nil, fmt.Errorf("vault client configuration: %w", vc.Error)
	}
	client, err := vault.NewClient(vc) // VAULT_TOKEN, VAULT_NAMESPACE
	if err != nil {
		return nil, fmt.Errorf("creating vault client: %w", err)
	}
	switch {
	case cfg.VaultTokenFile != "":
		tok, err := readToken(cfg.VaultTokenFile)
		if err != nil {
			return nil, err
		}
		client.SetToken(tok)
		go watchTokenFile(ctx, client, cfg.VaultTokenFile, tokenFileReread, log)
	case cfg.KubernetesRole != "":
		if err := kubernetesLogin(ctx, client, cfg, log); err != nil {
			return nil, err
		}
	}
	if client.Token() == "" {
		return nil, errors.New("no Vault token: set VAULT_TOKEN, --vault-token-file or --vault-k8s-role")
	}
	return client, nil
}

// tokenFileReread is how often --vault-token-file is read again: it is usually a mounted Secret,
// which the kubelet updates in place (within about a minute) when the token is rotated, and a
// token read once would expire under the guard.
const tokenFileReread = 30 * time.Second

func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading --vault-token-file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("reading --vault-token-file: %s is empty", path)
	}
	return tok, nil
}

// watchTokenFile sets the client's token from path every interval until ctx ends. An unreadable or
// empty file (mid-rotation) keeps the last good token.
func watchTokenFile(ctx context.Context, client *vault.Client, path string, interval time.Duration, log logr.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		tok, err := readToken(path)
		if err != nil {
			log.Error(err, "re-reading the Vault token file; keeping the current token")
			continue
		}
		if tok != client.Token() {
			client.SetToken(tok)
			log.Info("vault token file changed; using the new token")
		}
	}
}

// kubernetesLogin logs in with the pod's service account token and keeps the Vault token renewed,
// logging in again when it can no longer be renewed.
func kubernetesLogin(ctx context.Context, client *vault.Client, cfg Config, log logr.Logger) error {
	login := func(ctx context.Context) (*vault.Secret, error) {
		jwt, err := os.ReadFile(cfg.KubernetesJWTFile) // re-read each time: the kubelet rotates it
		if err != nil {
			return nil, fmt.Errorf("reading service account token: %w", err)
		}
		s, err := client.Logical().WriteWithContext(ctx, "auth/"+cfg.KubernetesMount+"/login",
			map[string]any{"role": cfg.KubernetesRole, "jwt": strings.TrimSpace(string(jwt))})
		if err != nil {
			return nil, fmt.Errorf("vault kubernetes login as role %s: %w", cfg.KubernetesRole, err)
		}
		if s == nil || s.Auth == nil {
			return nil, errors.New("vault kubernetes login returned no token")
		}
		client.SetToken(s.Auth.ClientToken)
		return s, nil
	}
	s, err := login(ctx)
	if err != nil {
		return err
	}
	renew := func(ctx context.Context, s *vault.Secret) error {
		w, err := client.NewLifetimeWatcher(&vault.LifetimeWatcherInput{Secret: s})
		if err != nil {
			return fmt.Errorf("starting vault token renewal: %w", err)
		}
		go w.Start()
		defer w.Stop()
		select {
		case <-ctx.Done():
			return nil
		case err := <-w.DoneCh():
			return err
		}
	}
	go keepLoggedIn(ctx, s, login, renew, loginBackoff, log)
	return nil
}

// loginBackoff is the wait before the attempt-th consecutive login retry: 1s doubling to 5m, so a
// Vault that is down is not hammered and one that is back is used within minutes.
func loginBackoff(attempt int) time.Duration {
	return min(time.Second<<min(attempt, 9), 5*time.Minute)
}

// keepLoggedIn renews s until renewal ends (the token reached its max TTL, was revoked, or
// renewal could not start), then logs in again, retrying a failing login after backoff(attempt),
// for as long as ctx lasts. It never gives up: a guard whose token lapsed silently stops guarding.
// The backoff also spaces logins whose renewal ends at once, so a token that cannot be renewed
// does not turn into a login loop.
func keepLoggedIn(ctx context.Context, s *vault.Secret, login func(context.Context) (*vault.Secret, error),
	renew func(context.Context, *vault.Secret) error, backoff func(attempt int) time.Duration, log logr.Logger) {
	attempt := 0
	for {
		started := time.Now()
		err := renew(ctx, s)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			log.Error(err, "vault token renewal ended; logging in again")
		} else {
			log.Info("vault token renewal ended; logging in again")
		}
		if time.Since(started) > time.Minute {
			attempt = 0
		}
		for {
			if attempt > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff(attempt - 1)):
				}
			}
			attempt++
			next, err := login(ctx)
			if err == nil {
				s = next
				break
			}
			if ctx.Err() != nil {
				return
			}
			log.Error(err, "vault re-login failed; retrying", "backoff", backoff(attempt-1).String())
		}
	}
}
