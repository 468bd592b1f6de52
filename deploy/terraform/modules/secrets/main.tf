# The application's secrets in Secrets Manager, generated in AWS and written write-only: their values never
# enter the Terraform state or plan. The task definitions reference them by ARN; ECS injects them at start.

locals {
  keys      = toset(["api-secret", "tenant-secret"])
  env_names = { for k in local.keys : k => "PRICEINTEL_${upper(replace(k, "-", "_"))}" } # the variable each one fills
}

# the HMAC keys of the API's tokens and of the tenants' tokens (32+ characters; shared by the API and the apps)
resource "aws_secretsmanager_secret" "key" {
  for_each = local.keys

  name                    = "${var.name}/${each.key}"
  description             = "priceintel ${each.key} (${local.env_names[each.key]})"
  recovery_window_in_days = var.recovery_window_days
}

ephemeral "aws_secretsmanager_random_password" "key" {
  for_each = local.keys

  password_length     = 64
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret_version" "key" {
  for_each = local.keys

  secret_id                = aws_secretsmanager_secret.key[each.key].id
  secret_string_wo         = ephemeral.aws_secretsmanager_random_password.key[each.key].random_password
  secret_string_wo_version = 1
}

# the database owner's password: the same value goes to RDS (the `db_password` output) and to this secret
resource "aws_secretsmanager_secret" "db_password" {
  name                    = "${var.name}/db-password"
  description             = "priceintel database owner password (PGPASSWORD)"
  recovery_window_in_days = var.recovery_window_days
}

ephemeral "aws_secretsmanager_random_password" "db" {
  password_length     = 40
  exclude_punctuation = true # letters and digits: safe in any connection string
}

resource "aws_secretsmanager_secret_version" "db_password" {
  secret_id                = aws_secretsmanager_secret.db_password.id
  secret_string_wo         = ephemeral.aws_secretsmanager_random_password.db.random_password
  secret_string_wo_version = var.db_password_version
}
