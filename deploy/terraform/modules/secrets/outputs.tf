output "secret_arns" {
  description = "The secrets by the environment variable they fill: PGPASSWORD (the database owner's password), PRICEINTEL_API_SECRET, PRICEINTEL_TENANT_SECRET."
  value = merge(
    { PGPASSWORD = aws_secretsmanager_secret.db_password.arn },
    { for k, s in aws_secretsmanager_secret.key : local.env_names[k] => s.arn },
  )
}

output "db_password" {
  description = "The database owner's password, for RDS's write-only password (ephemeral: never stored)."
  value       = ephemeral.aws_secretsmanager_random_password.db.random_password
  ephemeral   = true
}
