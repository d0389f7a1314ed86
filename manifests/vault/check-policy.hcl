# Least privilege for `credchain check` reading Vault live (VAULT_ADDR, VAULT_TOKEN): the auth
# mounts, the Kubernetes auth roles and the ACL policies, which is all it evaluates. Read-only: it
# grants no secret reads, no writes, and nothing under sys/ beyond the two listings below.
#
#   vault policy write credchain-check manifests/vault/check-policy.hcl
#   vault token create -policy=credchain-check -no-default-policy -ttl=15m
#
# check reads each role and policy once (O(mounts + roles + policies) requests), never per
# ExternalSecret. internal/check's TestReadVaultWithTheShippedPolicy runs it with a token that
# holds only this policy.

# The auth mounts, to find the kubernetes ones.
path "sys/auth" {
  capabilities = ["read"]
}

# List and read the Kubernetes auth roles (token_policies, policies, token_no_default_policy, the
# bound ServiceAccounts) of mounts one path segment deep (auth/kubernetes/) and two
# (auth/clusters/prod/). For a deeper mount add a pair; check names the path it cannot read.
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

# List and read the ACL policies.
path "sys/policies/acl" {
  capabilities = ["list"]
}
path "sys/policies/acl/*" {
  capabilities = ["read"]
}
