package explain

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/check"
)

// Facts are what Gather read for one chain: every object as the API servers returned it, and
// why a read failed where one did. Judge decides from Facts alone, so it is tested without a
// server.
type Facts struct {
	Target Target
	// Now is when the facts were read: the Secret's age is measured from it.
	Now time.Time
	// Workload is the target workload, nil when the target is an ExternalSecret.
	Workload *chain.Workload
	// ServiceAccount is the pods' ServiceAccount, read only when the pull secrets come from it.
	ServiceAccount *AccountFacts
	// Secrets are the pull secrets in the pods' order (for an ExternalSecret target, the Secret
	// it writes).
	Secrets []*SecretFacts
	// ExternalSecrets are the writers of Secrets, by name (all in Target.Namespace).
	ExternalSecrets map[string]*ExternalSecretFacts
	// Stores are the stores the ExternalSecrets' items read from.
	Stores map[chain.StoreKey]*StoreFacts

	// Vault is the Vault half read for the stores' roles, nil when it was not checked
	// (VaultNotChecked says why). VaultAddr is where it was read.
	Vault           *check.Vault
	VaultNotChecked string
	VaultAddr       string
	// Results are check's verdict on each ExternalSecret against Vault, by name; nil without Vault.
	Results map[string]*check.Result
	// RoleData are roles read raw (every field Vault returns), for a fix that rewrites a role
	// and must keep what it does not change; read only for roles whose binding is broken.
	RoleData map[chain.RoleRef]map[string]any

	// ESOAccount is ESO's own ServiceAccount (stores without a serviceAccountRef log in as it).
	ESOAccount chain.ServiceAccountName
	// Bodies are the last known policy bodies, for the fix; nil when none was given.
	Bodies *Bodies
	// RegistryCheck is set when the registries were tried (--registry-check).
	RegistryCheck bool
}

// AccountFacts is the pods' ServiceAccount.
type AccountFacts struct {
	Name   string
	Exists bool
	// Err is why it could not be read (other than not existing).
	Err         error
	PullSecrets []string
}

// SecretFacts is one pull secret.
type SecretFacts struct {
	Name string
	// From is FromPodSpec or FromServiceAccount (or "spec.target.name" for an ExternalSecret
	// target).
	From string
	// Secret is nil when it does not exist or could not be read (Err).
	Secret *corev1.Secret
	Err    error
	// Writers are the ExternalSecrets that write it: its ESO controller owner, else those whose
	// spec.target.name names it (an owning one first). FoundBy says which way.
	Writers []string
	FoundBy string
	// WritersErr is why the namespace's ExternalSecrets could not be listed.
	WritersErr error
	// Registries are the registries of its .dockerconfigjson as tried (RegistryCheck only).
	Registries []RegistryResult
}

// ExternalSecretFacts is one ExternalSecret and ESO's latest Warning event on it.
type ExternalSecretFacts struct {
	ES *chain.ExternalSecret
	// Err is why it could not be read; ES is then nil (nil too when it does not exist).
	Err        error
	Warning    *corev1.Event
	WarningErr error
}

// StoreFacts is one store; Store is nil when it does not exist or could not be read (Err).
type StoreFacts struct {
	Store *chain.Store
	Err   error
}

// RegistryResult is one registry tried with the Secret's credential. It holds no credential.
type RegistryResult struct {
	Registry, URL, Username string
	// Auth is how the registry asked to be authenticated: "none", "basic" or "bearer".
	Auth string
	// Status is the authenticated call's HTTP status (0 when none was made); Err why the
	// registry could not be asked.
	Status int
	Err    error
}
