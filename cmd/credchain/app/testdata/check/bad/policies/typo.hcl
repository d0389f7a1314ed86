path "secret/*" {
  capabilities = ["reed"]
}
