path "secret/data/payments/*" {
  capabilities = ["read"]
}
