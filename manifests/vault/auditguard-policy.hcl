# Least privilege for `credchain auditguard`: build the policy → Kubernetes auth role index, snapshot
# policies, and write a deleted one back. It cannot delete policies, read secrets or change roles.

# List auth mounts to find the kubernetes ones.
path "sys/auth" {
  capabilities = ["read"]
}

# List and read Kubernetes auth roles (their token_policies/policies), for mounts one path segment
# deep (auth/kubernetes/) and two (auth/clusters/prod/). Add a pair for deeper mounts: the guard
# reports a mount it cannot read (event guard.auth_mount_unreadable, metric
# credchain_auditguard_unreadable_auth_mounts) and guards the others.
path "auth/+/role" {
  capabilities = ["list"]
}
path "auth/+/role/*" {
  capabilities = ["read"]
}
path "auth/+/+/role" {
  capabilities = ["list"]
}
path "auth/+/+/role/*" {
  capabilities = ["read"]
}

# Snapshot every policy and restore deleted ones.
path "sys/policies/acl" {
  capabilities = ["list"]
}
path "sys/policies/acl/*" {
  capabilities = ["read", "create", "update"]
}

# List Vault's audit devices, to tell when only socket devices are enabled (a guard that is down
# would then stop Vault: it refuses requests no device records). Vault lists them only with sudo.
# This grants nothing else: enabling and disabling a device are sys/audit/<path>, which this exact
# path does not match (auditguard's TestVaultGuardPolicyListsAuditDevicesOnly checks both).
path "sys/audit" {
  capabilities = ["read", "sudo"]
}

# Name how an actor logs in (its entity's auth mounts) in events.
path "identity/entity/id/*" {
  capabilities = ["read"]
}

# Learn the Vault Enterprise namespaces to guard from Vault itself, never from audit lines (anyone
# who reaches the audit socket can write those). Two levels of nesting; add a pattern per deeper
# level. Community Edition has no namespaces: the listing answers 404 and only root is guarded.
path "sys/namespaces" {
  capabilities = ["list"]
}
path "+/sys/namespaces" {
  capabilities = ["list"]
}
