resource "vault_auth_backend" "kubernetes" {
  type = "kubernetes"
}

resource "vault_policy" "eso_order_service" {
  name   = "eso-order-service"
  policy = <<-EOT
    path "secret/data/order-service/*" {
      capabilities = ["read"]
    }
  EOT
}

resource "vault_policy" "eso_shared" {
  name   = "eso-shared"
  policy = <<-EOT
    path "secret/data/shared/*" {
      capabilities = ["read"]
    }
  EOT
}

resource "vault_kubernetes_auth_backend_role" "eso" {
  backend                          = vault_auth_backend.kubernetes.path
  role_name                        = "external-secrets-operator"
  token_policies                   = [vault_policy.eso_order_service.name, vault_policy.eso_shared.name]
  bound_service_account_names      = ["external-secrets"]
  bound_service_account_namespaces = ["external-secrets"]
}
