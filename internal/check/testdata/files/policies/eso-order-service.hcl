# ESO reads order-service's registry credentials (KV v2).
path "secret/data/order-service/*" {
  capabilities = ["read"]
}
path "secret/metadata/order-service/*" {
  capabilities = ["read", "list"]
}
