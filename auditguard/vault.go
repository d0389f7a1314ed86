package auditguard

import (
	"context"
	"fmt"
	"strings"

	vault "github.com/hashicorp/vault/api"
)

// VaultAPI is everything the guard asks of Vault; ns is a Vault Enterprise namespace path ("" for
// root). The least-privilege policy in manifests/vault/auditguard-policy.hcl grants exactly this.
type VaultAPI interface {
	KubernetesMounts(ctx context.Context, ns string) ([]string, error)
	ListRoles(ctx context.Context, ns, mount string) ([]string, error)
	// RolePolicies returns token_policies ∪ policies; found is false when the role does not exist.
	RolePolicies(ctx context.Context, ns, mount, role string) (policies []string, found bool, err error)
	ListPolicies(ctx context.Context, ns string) ([]string, error)
	// ReadPolicy returns a policy's body; found is false when it does not exist.
	ReadPolicy(ctx context.Context, ns, name string) (body string, found bool, err error)
	WritePolicy(ctx context.Context, ns, name, body string) error
	// EntityAuthMounts returns the auth mount paths of an identity entity's aliases (how the actor
	// logs in), e.g. "auth/userpass/".
	EntityAuthMounts(ctx context.Context, ns, entityID string) ([]string, error)
	// AuditDevices lists the audit devices enabled in Vault (auditdevices.go). It needs read and
	// sudo on sys/audit; without them it returns a permission error, and the guard says it cannot
	// tell whether it is Vault's only audit device.
	AuditDevices(ctx context.Context) ([]AuditDevice, error)
	// Standby reports whether the node the client talks to is an HA standby (sys/leader: HA
	// enabled and not the active node).
	Standby(ctx context.Context) (bool, error)
	// ListNamespaces returns every Vault Enterprise namespace path below root ("team-a",
	// "team-a/dev"); none on Community Edition.
	ListNamespaces(ctx context.Context) ([]string, error)
}

// Vault implements VaultAPI with the official client.
type Vault struct{ Client *vault.Client }

var _ VaultAPI = (*Vault)(nil)

func (v *Vault) c(ns string) *vault.Client {
	if ns == "" {
		return v.Client
	}
	return v.Client.WithNamespace(ns)
}

// KubernetesMounts implements VaultAPI.
func (v *Vault) KubernetesMounts(ctx context.Context, ns string) ([]string, error) {
	mounts, err := v.c(ns).Sys().ListAuthWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing auth mounts: %w", err)
	}
	var out []string
	for path, m := range mounts {
		if m != nil && m.Type == "kubernetes" {
			out = append(out, strings.TrimSuffix(path, "/"))
		}
	}
	return out, nil
}

// ListRoles implements VaultAPI.
func (v *Vault) ListRoles(ctx context.Context, ns, mount string) ([]string, error) {
	s, err := v.c(ns).Logical().ListWithContext(ctx, "auth/"+mount+"/role")
	if err != nil {
		return nil, fmt.Errorf("listing roles of auth/%s: %w", mount, err)
	}
	if s == nil {
		return nil, nil
	}
	return stringList(s.Data["keys"]), nil
}

// RolePolicies implements VaultAPI.
func (v *Vault) RolePolicies(ctx context.Context, ns, mount, role string) ([]string, bool, error) {
	s, err := v.c(ns).Logical().ReadWithContext(ctx, "auth/"+mount+"/role/"+role)
	if err != nil {
		return nil, false, fmt.Errorf("reading role auth/%s/role/%s: %w", mount, role, err)
	}
	if s == nil {
		return nil, false, nil
	}
	return append(stringList(s.Data["token_policies"]), stringList(s.Data["policies"])...), true, nil
}

// ListPolicies implements VaultAPI.
func (v *Vault) ListPolicies(ctx context.Context, ns string) ([]string, error) {
	p, err := v.c(ns).Sys().ListPoliciesWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing policies: %w", err)
	}
	return p, nil
}

// ReadPolicy implements VaultAPI.
func (v *Vault) ReadPolicy(ctx context.Context, ns, name string) (string, bool, error) {
	body, err := v.c(ns).Sys().GetPolicyWithContext(ctx, name)
	if err != nil {
		return "", false, fmt.Errorf("reading policy %s: %w", name, err)
	}
	return body, body != "", nil
}

// WritePolicy implements VaultAPI.
func (v *Vault) WritePolicy(ctx context.Context, ns, name, body string) error {
	if err := v.c(ns).Sys().PutPolicyWithContext(ctx, name, body); err != nil {
		return fmt.Errorf("writing policy %s: %w", name, err)
	}
	return nil
}

func stringList(v any) []string {
	switch l := v.(type) {
	case []any:
		out := make([]string, 0, len(l))
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case []string:
		return l
	case string: // Vault accepts comma-separated lists on write; reads return arrays, but be lenient
		if l == "" {
			return nil
		}
		return strings.Split(l, ",")
	}
	return nil
}

// EntityAuthMounts implements VaultAPI.
func (v *Vault) EntityAuthMounts(ctx context.Context, ns, entityID string) ([]string, error) {
	s, err := v.c(ns).Logical().ReadWithContext(ctx, "identity/entity/id/"+entityID)
	if err != nil {
		return nil, fmt.Errorf("reading entity %s: %w", entityID, err)
	}
	if s == nil {
		return nil, nil
	}
	aliases, _ := s.Data["aliases"].([]any)
	var out []string
	for _, a := range aliases {
		m, _ := a.(map[string]any)
		if p, ok := m["mount_path"].(string); ok && p != "" {
			out = append(out, p)
		}
	}
	return out, nil
}
