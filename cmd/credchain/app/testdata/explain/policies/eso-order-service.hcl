path "registry-creds/data/order-service" {
  capabilities = ["read"]
}
