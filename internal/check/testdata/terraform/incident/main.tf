# The incident's Vault as its Terraform held it (devops/terraform/modules/vault/), trimmed to
# what `credchain check --terraform` reads, plus what it must read around.
terraform {
  required_providers {
    vault = {
      source = "hashicorp/vault"
    }
  }
}

variable "environment" {
  type    = string
  default = "prod"
}

resource "vault_auth_backend" "kubernetes" {
  type = "kubernetes"
}

resource "vault_mount" "secret" {
  path    = "secret"
  type    = "kv"
  options = { version = "2" }
}

# The policy alice deleted.
resource "vault_policy" "eso_order_service" {
  name   = "eso-order-service"
  policy = <<-EOT
    path "secret/data/order-service/*" {
      capabilities = ["read"]
    }
    path "secret/metadata/order-service/*" {
      capabilities = ["read", "list"]
    }
  EOT
}

resource "vault_policy" "eso_payments" {
  name   = "eso-payments"
  policy = file("${path.module}/policies/eso-payments.hcl")
}

resource "vault_policy" "team_billing" {
  name   = "team-billing"
  policy = templatefile("policies/team.hcl.tpl", { team = "billing" })
}

resource "vault_kubernetes_auth_backend_role" "eso" {
  backend                          = vault_auth_backend.kubernetes.path
  role_name                        = "external-secrets-operator"
  token_policies                   = [vault_policy.eso_order_service.name, vault_policy.eso_payments.name, "default"]
  bound_service_account_names      = ["external-secrets"]
  bound_service_account_namespaces = ["external-secrets"]
  token_ttl                        = 3600
}

# Written before token_policies existed; backend defaults to "kubernetes".
resource "vault_kubernetes_auth_backend_role" "legacy" {
  role_name                        = "legacy-reader"
  policies                         = ["eso-payments"]
  bound_service_account_names      = ["*"]
  bound_service_account_namespaces = ["payments"]
}

module "prod" {
  source = "./modules/prod"
  mount  = "k8s-prod"
}

# A registry module: not read.
module "network" {
  source  = "terraform-aws-modules/vpc/aws"
  version = "5.0.0"
}
