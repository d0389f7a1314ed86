variable "mount" {
  type = string
}

variable "team" {
  default = "billing"
}

resource "vault_auth_backend" "k8s" {
  type = "kubernetes"
  path = var.mount
}

resource "vault_kubernetes_auth_backend_role" "prod_reader" {
  backend                          = vault_auth_backend.k8s.path
  role_name                        = "prod-reader"
  token_policies                   = ["eso-order-service", "team-${var.team}"]
  token_no_default_policy          = true
  bound_service_account_names      = ["external-secrets"]
  bound_service_account_namespaces = ["external-secrets"]
}
