path "secret/data/order-service/*" {
  capabilities = ["read"]
}
