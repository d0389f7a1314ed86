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

# Name how an actor logs in (its entity's auth mounts) in events.
path "identity/entity/id/*" {
  capabilities = ["read"]
}
