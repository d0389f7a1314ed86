package auditguard

import "strings"

// What an audited path is about, for the processing loop.
type Kind int

const (
	KindIrrelevant Kind = iota
	KindPolicy          // sys/policies/acl/<name> or the legacy sys/policy/<name>
	KindRole            // auth/<mount>/role/<name>
	KindAuthMount       // sys/auth/<path>
	KindAudit           // sys/audit/<path>
	KindRemount         // sys/remount (a mount moved; its body, from and to, is HMACed)
)

// PolicyName is a policy name as Vault's policy store keys it: surrounding whitespace trimmed,
// then lower-cased. Vault applies this to the name of every set, read and delete (its
// PolicyStore.sanitizeName), so DELETE sys/policies/acl/ESO-Order-Service%20 deletes
// eso-order-service; comparing the raw name would report that delete as one of an unreferenced
// policy. '/' is kept: it is part of the name (team/eso), and a trailing one names another policy.
// Every name from an audit path, a role or the API goes through here (one home for the rule).
func PolicyName(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// Classify returns what path is about and the object's name (for a role: "<mount>/<role>").
// Policy names are normalised as Vault's policy store does (PolicyName), and may contain '/'
// (Vault's route is policies/acl/(?P<name>.+)). The Kubernetes auth plugin lower-cases role names
// (it stores and deletes role/<lower-cased name>, and LIST returns them so), so they are
// lower-cased here too: a write to auth/kubernetes/role/ESO-Role must update the index entry the
// resync made for "eso-role", not add a second one beside it. Mount and audit device paths are
// case-sensitive in Vault and kept as they are, without the trailing '/' Vault adds before looking
// one up (DELETE sys/audit/guard/ disables device "guard"); both may be nested (clusters/prod).
func Classify(path string) (Kind, string) {
	switch {
	case strings.HasPrefix(path, "sys/policies/acl/"):
		return named(KindPolicy, PolicyName(strings.TrimPrefix(path, "sys/policies/acl/")))
	case strings.HasPrefix(path, "sys/policy/"):
		return named(KindPolicy, PolicyName(strings.TrimPrefix(path, "sys/policy/")))
	case strings.HasPrefix(path, "sys/auth/"):
		return named(KindAuthMount, strings.TrimSuffix(strings.TrimPrefix(path, "sys/auth/"), "/"))
	case path == "sys/remount" || path == "sys/remount/":
		return KindRemount, ""
	case strings.HasPrefix(path, "sys/audit/"):
		return named(KindAudit, strings.TrimSuffix(strings.TrimPrefix(path, "sys/audit/"), "/"))
	case strings.HasPrefix(path, "auth/"):
		rest := strings.TrimPrefix(path, "auth/")
		i := strings.Index(rest, "/role/")
		if i <= 0 {
			return KindIrrelevant, ""
		}
		mount, role := rest[:i], rest[i+len("/role/"):]
		if role == "" || strings.Contains(role, "/") {
			return KindIrrelevant, ""
		}
		return KindRole, mount + "/" + strings.ToLower(role)
	}
	return KindIrrelevant, ""
}

func named(k Kind, name string) (Kind, string) {
	if name == "" {
		return KindIrrelevant, ""
	}
	return k, name
}
