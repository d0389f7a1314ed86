package explain

import (
	"time"

	"github.com/credchain/credchain/internal/check"
)

// Schema names the JSON shape of Report. It changes only when a field changes meaning or goes
// away; fields are added without changing it. docs/explain.md documents every field.
const Schema = "credchain.io/explain/v1"

// State is one link's: ok, broken, or unknown (the inputs cannot tell, or it was not checked).
type State string

// States of a link, best first; a Report's is the worst of its links'.
const (
	OK      State = "ok"
	Unknown State = "unknown"
	Broken  State = "broken"
)

var stateRank = map[State]int{OK: 0, Unknown: 1, Broken: 2}

func worse(a, b State) State {
	if stateRank[b] > stateRank[a] {
		return b
	}
	return a
}

// Kinds of Link, in the order the chain runs.
const (
	LinkWorkload       = "workload"
	LinkServiceAccount = "serviceAccount"
	LinkSecret         = "secret"
	LinkRegistry       = "registry"
	LinkExternalSecret = "externalSecret"
	LinkStore          = "store"
	LinkVault          = "vault"
	LinkRole           = "vaultRole"
	LinkPolicy         = "vaultPolicy"
	LinkRequest        = "vaultRequest"
)

// Report is one explain: the chain top-down, the verdict, and the fix.
type Report struct {
	Schema string `json:"schema"`
	Target Object `json:"target"`
	// State is the worst link's: broken when any link is, else unknown when any is, else ok.
	State State `json:"state"`
	// Links are the chain top-down; Depth makes the tree (a link's parent is the nearest link
	// before it with a smaller depth).
	Links []Link `json:"links"`
	// Vault says whether the Vault half was checked, and if not, why.
	Vault VaultStatus `json:"vault"`
	// Cause is the broken link that explains the others (the deepest), nil when none is broken.
	Cause *Cause `json:"cause,omitempty"`
	// Fix are the commands that repair Cause, in order, nil when nothing is broken.
	Fix []FixStep `json:"fix,omitempty"`
}

// Object names a Kubernetes object; Namespace is empty for a cluster-scoped one.
type Object struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

func (o Object) String() string {
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}

// Link is one link of the chain. Exactly one of the detail fields is set, the one of its Kind.
type Link struct {
	Kind  string `json:"kind"`
	Name  string `json:"name"`
	Depth int    `json:"depth"`
	State State  `json:"state"`
	// Evidence is what shows the state, for people: one line.
	Evidence string `json:"evidence"`

	Workload       *WorkloadDetail       `json:"workload,omitempty"`
	ServiceAccount *ServiceAccountDetail `json:"serviceAccount,omitempty"`
	Secret         *SecretDetail         `json:"secret,omitempty"`
	Registry       *RegistryDetail       `json:"registry,omitempty"`
	ExternalSecret *ExternalSecretDetail `json:"externalSecret,omitempty"`
	Store          *StoreDetail          `json:"store,omitempty"`
	Role           *RoleDetail           `json:"role,omitempty"`
	Policy         *PolicyDetail         `json:"policy,omitempty"`
	// Request is check's evaluation of one request ESO makes (docs/check.md's Request).
	Request *check.Request `json:"request,omitempty"`
}

// WorkloadDetail is the workload and the pull secrets its pods use.
type WorkloadDetail struct {
	Object
	ServiceAccount string       `json:"serviceAccount"`
	PullSecrets    []PullSecret `json:"pullSecrets"`
}

// PullSecret is one pull secret and where the pods get it.
type PullSecret struct {
	Name string `json:"name"`
	// From is "podSpec" (the workload's own imagePullSecrets) or "serviceAccount".
	From string `json:"from"`
}

// Sources of PullSecret.From.
const (
	FromPodSpec        = "podSpec"
	FromServiceAccount = "serviceAccount"
)

// ServiceAccountDetail is the pods' ServiceAccount, shown when the pull secrets come from it.
type ServiceAccountDetail struct {
	Object
	Exists      bool     `json:"exists"`
	PullSecrets []string `json:"pullSecrets"`
}

// SecretDetail is one pull secret's Secret.
type SecretDetail struct {
	Object
	From    string     `json:"from"`
	Exists  bool       `json:"exists"`
	Type    string     `json:"type,omitempty"`
	Created *time.Time `json:"created,omitempty"`
	// WrittenBy is the ExternalSecret that writes it, nil when none does; FoundBy says how it was
	// found: "ownerReference" (ESO's controller reference on the Secret) or "spec.target.name".
	WrittenBy *Object `json:"writtenBy,omitempty"`
	FoundBy   string  `json:"foundBy,omitempty"`
}

// RegistryDetail is one registry of the Secret's .dockerconfigjson, tried at /v2/
// (--registry-check). The credential itself is never recorded.
type RegistryDetail struct {
	// Registry is the auths key as written; URL what was called.
	Registry string `json:"registry"`
	URL      string `json:"url,omitempty"`
	Username string `json:"username,omitempty"`
	// Auth is how the registry asked to be authenticated: "none", "basic" or "bearer".
	Auth string `json:"auth,omitempty"`
	// Status is the HTTP status of the authenticated /v2/ call, 0 when none was made.
	Status int `json:"status,omitempty"`
}

// ExternalSecretDetail is the ExternalSecret's status as ESO wrote it.
type ExternalSecretDetail struct {
	Object
	Ready    string     `json:"ready,omitempty"`
	Reason   string     `json:"reason,omitempty"`
	Message  string     `json:"message,omitempty"`
	Since    *time.Time `json:"since,omitempty"`
	LastSync *time.Time `json:"lastSync,omitempty"`
	// Warning is ESO's latest Warning event on it (where Vault's 403 shows), nil when none.
	Warning *Event `json:"warning,omitempty"`
}

// Event is one Kubernetes event.
type Event struct {
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
	Count   int32     `json:"count,omitempty"`
}

// StoreDetail is one store an ExternalSecret's items read from.
type StoreDetail struct {
	check.StoreRef
	Exists   bool   `json:"exists"`
	Provider string `json:"provider,omitempty"`
	Ready    string `json:"ready,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Message  string `json:"message,omitempty"`
	// Server and VaultNamespace are spec.provider.vault's; AuthMethod the login ESO uses
	// (chain.LoginMethod), and for Kubernetes auth its mount, role and ServiceAccount.
	Server         string `json:"server,omitempty"`
	VaultNamespace string `json:"vaultNamespace,omitempty"`
	AuthMethod     string `json:"authMethod,omitempty"`
	AuthMount      string `json:"authMount,omitempty"`
	Role           string `json:"role,omitempty"`
	ServiceAccount string `json:"serviceAccount,omitempty"`
}

// RoleDetail is the Vault role the store logs in with.
type RoleDetail struct {
	check.RoleRef
	Exists                        bool     `json:"exists"`
	BoundServiceAccountNames      []string `json:"boundServiceAccountNames,omitempty"`
	BoundServiceAccountNamespaces []string `json:"boundServiceAccountNamespaces,omitempty"`
	// TokenPolicies are the policies its tokens carry (default included unless the role says not).
	TokenPolicies []string `json:"tokenPolicies,omitempty"`
	// LoginAs is the ServiceAccount ESO logs in as, when it can be told.
	LoginAs string `json:"loginAs,omitempty"`
}

// PolicyDetail is one policy the role's tokens carry.
type PolicyDetail struct {
	Name   string `json:"name"`
	Exists bool   `json:"exists"`
	// Decides are the requests (Link names) whose deciding rule this policy has a stanza in.
	Decides []string `json:"decides,omitempty"`
}

// VaultStatus says whether the Vault half was checked.
type VaultStatus struct {
	Checked bool   `json:"checked"`
	Address string `json:"address,omitempty"`
	// NotChecked is why not, when Checked is false.
	NotChecked string `json:"notChecked,omitempty"`
}

// Cause is the broken link that explains the chain's state.
type Cause struct {
	// Link is its index in Links.
	Link    int    `json:"link"`
	Message string `json:"message"`
}

// FixStep is one command of the fix.
type FixStep struct {
	// Why says what it repairs, and where a body came from.
	Why string `json:"why"`
	// Command is the shell command, exactly as printed (a here-document included).
	Command string `json:"command,omitempty"`
}
