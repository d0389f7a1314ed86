package check

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/testenv"
	"github.com/credchain/credchain/internal/vaultacl"
)

// liveRole is a role the test writes: its mount, name and the body of the write.
type liveRole struct {
	ref  chain.RoleRef
	body map[string]any
}

// The incident's Vault, and then some: a second Kubernetes mount at a non-default path, one two
// segments deep, an AppRole mount (not Kubernetes: not read), a JSON policy, a legacy one, and a
// role written with the legacy policies field.
var (
	liveMounts = map[string]string{"kubernetes": "kubernetes", "k8s-prod": "kubernetes", "clusters/prod": "kubernetes", "approle": "approle"}
	livePolicy = map[string]string{
		"eso-order-service": "path \"secret/data/order-service/*\" {\n  capabilities = [\"read\"]\n}\npath \"secret/metadata/order-service/*\" {\n  capabilities = [\"read\", \"list\"]\n}\n",
		"eso-payments":      `{"path": {"secret/data/payments/*": {"capabilities": ["read"]}, "secret/data/payments/admin": {"capabilities": ["deny"]}}}`,
		"legacy-read":       "path \"secret/data/legacy/*\" {\n  policy = \"read\"\n}\n",
	}
	liveRoles = []liveRole{
		{chain.RoleRef{Mount: "kubernetes", Name: "external-secrets-operator"}, map[string]any{
			"token_policies": []string{"eso-order-service", "eso-payments"}, "bound_service_account_names": []string{"external-secrets"},
			"bound_service_account_namespaces": []string{"external-secrets"}}},
		{chain.RoleRef{Mount: "k8s-prod", Name: "legacy-reader"}, map[string]any{
			"policies": []string{"eso-payments"}, "bound_service_account_names": []string{"*"},
			"bound_service_account_namespaces": []string{"payments"}}},
		{chain.RoleRef{Mount: "clusters/prod", Name: "prod-reader"}, map[string]any{
			"token_policies": []string{"eso-order-service", "legacy-read"}, "token_no_default_policy": true,
			"bound_service_account_names": []string{"external-secrets"}, "bound_service_account_namespaces": []string{"external-secrets"}}},
	}
)

func TestReadVaultWithTheShippedPolicy(t *testing.T) {
	testenv.NeedsServer(t, "vault")
	ctx := t.Context()
	dv := testenv.StartVault(t)
	root := liveClient(t, dv.Addr, dv.RootToken, nil)
	setUpLiveVault(t, root)
	writeLivePolicy(t, root, "credchain-check", readCheckPolicy(t))
	if _, err := root.Logical().Write("auth/approle/role/ci", map[string]any{"token_policies": "eso-payments"}); err != nil {
		t.Fatal(err)
	}
	listed, err := root.Logical().List("sys/policies/acl")
	if err != nil {
		t.Fatal(err)
	}

	var requests atomic.Int64
	c := liveClient(t, dv.Addr, liveToken(t, root, "credchain-check"), &requests)
	v, err := ReadVault(ctx, c)
	if err != nil {
		t.Fatal(err)
	}

	if want := map[string]bool{"kubernetes": true, "k8s-prod": true, "clusters/prod": true}; !maps.Equal(v.Mounts, want) || !v.Complete {
		t.Errorf("mounts %v complete %v, want %v and complete", v.Mounts, v.Complete, want)
	}
	checkLiveRoles(t, v)
	// Every policy Vault lists but root, which has no text; names derived from Vault's own list.
	var wantPolicies []string
	for _, k := range listed.Data["keys"].([]any) {
		if k != "root" {
			wantPolicies = append(wantPolicies, k.(string))
		}
	}
	slices.Sort(wantPolicies)
	if got := v.Policies.Names(); !slices.Equal(got, wantPolicies) {
		t.Errorf("policies %v, want %v", got, wantPolicies)
	}
	if got := v.PolicySources["eso-order-service"]; got != "vault:sys/policies/acl/eso-order-service" {
		t.Errorf("source of eso-order-service = %q", got)
	}
	// 2 + mounts + roles + policies, whatever else: no per-ExternalSecret reads, none repeated.
	if want := int64(2 + len(v.Mounts) + len(v.Roles) + len(v.Policies)); requests.Load() != want {
		t.Errorf("%d requests, want %d", requests.Load(), want)
	}
	checkAgreesWithCapabilities(t, root, v)
}

// checkLiveRoles holds the roles read to what the test wrote, TokenPolicyNames computed from the
// write as Vault computes a login's policies.
func checkLiveRoles(t *testing.T, v *Vault) {
	t.Helper()
	if len(v.Roles) != len(liveRoles) {
		t.Errorf("%d roles, want %d: %v", len(v.Roles), len(liveRoles), v.Roles)
	}
	for _, lr := range liveRoles {
		r := v.Roles[lr.ref]
		if r == nil {
			t.Errorf("role %v not read", lr.ref)
			continue
		}
		str := func(k string) []string { s, _ := lr.body[k].([]string); return s }
		noDefault, _ := lr.body["token_no_default_policy"].(bool)
		want := vaultacl.RolePolicies(str("token_policies"), str("policies"), noDefault)
		if got := r.TokenPolicyNames(); !slices.Equal(got, want) {
			t.Errorf("role %v: token policies %v, want %v", lr.ref, got, want)
		}
		if !slices.Equal(r.BoundServiceAccountNames, str("bound_service_account_names")) ||
			!slices.Equal(r.BoundServiceAccountNamespaces, str("bound_service_account_namespaces")) ||
			r.NoDefaultPolicy != noDefault || r.Source != "vault:auth/"+lr.ref.Mount+"/role/"+lr.ref.Name {
			t.Errorf("role %v read as %+v, written %v", lr.ref, *r, lr.body)
		}
	}
}

// checkAgreesWithCapabilities asks Vault's sys/capabilities, for a token holding each role's
// login policies, what the parsed ACL answers.
func checkAgreesWithCapabilities(t *testing.T, root *vaultapi.Client, v *Vault) {
	t.Helper()
	paths := []string{"secret/data/order-service/regcred", "secret/metadata/order-service/regcred", "secret/data/payments/admin",
		"secret/data/payments/db", "secret/data/legacy/x", "auth/token/lookup-self", "sys/policies/acl/eso-payments"}
	for _, r := range v.Roles {
		names := r.TokenPolicyNames()
		token := liveToken(t, root, names...)
		acl := v.Policies.ACL(names...)
		for _, p := range paths {
			want, err := root.Sys().CapabilitiesWithContext(t.Context(), token, p)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(want)
			if got := acl.Capabilities(p).Strings(); !slices.Equal(got, want) {
				t.Errorf("role %v (%v) on %s: parsed ACL says %v, Vault %v", r.Ref(), names, p, got, want)
			}
		}
	}
}

func TestReadVaultNamesWhatItCannotRead(t *testing.T) {
	testenv.NeedsServer(t, "vault")
	dv := testenv.StartVault(t)
	root := liveClient(t, dv.Addr, dv.RootToken, nil)
	setUpLiveVault(t, root)
	full := readCheckPolicy(t)
	cut := func(stanza string) string {
		if !strings.Contains(full, stanza) {
			t.Fatalf("check-policy.hcl has no %q", stanza)
		}
		return strings.Replace(full, stanza, "", 1)
	}
	tests := map[string]struct {
		policy string // "" for a token with only the default policy
		want   string
	}{
		"default policy only": {want: "reading Vault: read sys/auth: permission denied"},
		"no role listing": {policy: cut("path \"auth/+/role\" {\n  capabilities = [\"list\"]\n}\n"),
			want: "reading Vault: list auth/k"},
		"no two-segment role reads": {policy: cut("path \"auth/+/+/role/*\" {\n  capabilities = [\"read\"]\n}\n"),
			want: "reading Vault: read auth/clusters/prod/role/prod-reader: permission denied"},
		"no policy reads": {policy: cut("path \"sys/policies/acl/*\" {\n  capabilities = [\"read\"]\n}\n"),
			want: "reading Vault: read sys/policies/acl/"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			token := liveToken(t, root, "default")
			if tc.policy != "" {
				pname := strings.ReplaceAll(name, " ", "-")
				writeLivePolicy(t, root, pname, tc.policy)
				token = liveToken(t, root, pname)
			}
			_, err := ReadVault(t.Context(), liveClient(t, dv.Addr, token, nil))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) || !errors.Is(err, ErrVaultPermissionDenied) ||
				!strings.Contains(err.Error(), "manifests/vault/check-policy.hcl") {
				t.Errorf("error %v, want one starting %q, naming manifests/vault/check-policy.hcl", err, tc.want)
			}
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := ReadVault(ctx, root); !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	})
}

// TestReadVaultManyPolicies reads a Vault of the size the speed targets name (500
// policies, 50 roles) and reports how long the parallel read takes.
func TestReadVaultManyPolicies(t *testing.T) {
	testenv.NeedsServer(t, "vault")
	dv := testenv.StartVault(t)
	root := liveClient(t, dv.Addr, dv.RootToken, nil)
	if err := root.Sys().EnableAuthWithOptions("kubernetes", &vaultapi.EnableAuthOptions{Type: "kubernetes"}); err != nil {
		t.Fatal(err)
	}
	for i := range 500 {
		writeLivePolicy(t, root, fmt.Sprintf("p%03d", i), fmt.Sprintf("path \"secret/data/app%03d/*\" {\n  capabilities = [\"read\"]\n}\n", i))
	}
	for i := range 50 {
		if _, err := root.Logical().Write(fmt.Sprintf("auth/kubernetes/role/r%02d", i), map[string]any{
			"token_policies": []string{fmt.Sprintf("p%03d", i*10)}, "bound_service_account_names": "*", "bound_service_account_namespaces": "*",
		}); err != nil {
			t.Fatal(err)
		}
	}
	var requests atomic.Int64
	start := time.Now()
	v, err := ReadVault(t.Context(), liveClient(t, dv.Addr, dv.RootToken, &requests))
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Policies) != 501 || len(v.Roles) != 50 { // 500 and default
		t.Errorf("read %d policies, %d roles", len(v.Policies), len(v.Roles))
	}
	t.Logf("ReadVault on loopback: %d policies, %d roles in %v, %d requests", len(v.Policies), len(v.Roles), took, requests.Load())

	// Over a network each request waits a round trip: with 5 ms added to each, the reads overlap,
	// up to readParallelism and no more.
	cfg := vaultapi.DefaultConfig()
	cfg.Address, cfg.MaxRetries = dv.Addr, 0
	slow := &slowTransport{base: cfg.HttpClient.Transport, delay: 5 * time.Millisecond}
	cfg.HttpClient.Transport = slow
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(dv.RootToken)
	start = time.Now()
	if _, err := ReadVault(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	took = time.Since(start)
	if m := slow.max.Load(); m < 2 || m > readParallelism {
		t.Errorf("%d requests in flight at most, want 2..%d", m, readParallelism)
	}
	t.Logf("ReadVault at 5 ms a round trip: %v (one at a time: at least %v), %d in flight at most",
		took, time.Duration(requests.Load())*slow.delay, slow.max.Load())
}

// slowTransport adds a round trip's delay to every request and records how many overlap.
type slowTransport struct {
	base     http.RoundTripper
	delay    time.Duration
	inFlight atomic.Int64
	max      atomic.Int64
}

func (s *slowTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for m := s.max.Load(); n > m && !s.max.CompareAndSwap(m, n); m = s.max.Load() {
	}
	time.Sleep(s.delay)
	return s.base.RoundTrip(r)
}

func setUpLiveVault(t *testing.T, root *vaultapi.Client) {
	t.Helper()
	for path, typ := range liveMounts {
		if err := root.Sys().EnableAuthWithOptions(path, &vaultapi.EnableAuthOptions{Type: typ}); err != nil {
			t.Fatal(err)
		}
		if typ == "kubernetes" {
			if _, err := root.Logical().Write("auth/"+path+"/config", map[string]any{
				"kubernetes_host": "https://example.invalid", "disable_local_ca_jwt": true}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, text := range livePolicy {
		writeLivePolicy(t, root, name, text)
	}
	for _, r := range liveRoles {
		if _, err := root.Logical().Write("auth/"+r.ref.Mount+"/role/"+r.ref.Name, r.body); err != nil {
			t.Fatal(err)
		}
	}
}

func readCheckPolicy(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../" + CheckPolicyFile)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeLivePolicy(t *testing.T, c *vaultapi.Client, name, text string) {
	t.Helper()
	if _, err := c.Logical().Write("sys/policies/acl/"+name, map[string]any{"policy": text}); err != nil {
		t.Fatalf("writing policy %s: %v", name, err)
	}
}

// liveToken is a token holding exactly policies (no default unless named: Vault drops a named
// default too when no_default_policy is set).
func liveToken(t *testing.T, c *vaultapi.Client, policies ...string) string {
	t.Helper()
	s, err := c.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: policies,
		NoDefaultPolicy: !slices.Contains(policies, "default"), TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	return s.Auth.ClientToken
}

// liveClient is a client of addr with token; requests, when set, counts the HTTP requests.
func liveClient(t *testing.T, addr, token string, requests *atomic.Int64) *vaultapi.Client {
	t.Helper()
	cfg := vaultapi.DefaultConfig()
	cfg.Address, cfg.MaxRetries = addr, 0
	if requests != nil {
		cfg.HttpClient.Transport = countingTransport{cfg.HttpClient.Transport, requests}
	}
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

type countingTransport struct {
	base http.RoundTripper
	n    *atomic.Int64
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}
