path "secret/data/teams/${team}/*" {
  capabilities = ["read", "list"]
}
path "secret/data/users/{{identity.entity.name}}/*" {
  capabilities = ["read"]
}
