output "api_secret_arn" {
  description = "Secret of PRICEINTEL_API_SECRET."
  value       = aws_secretsmanager_secret.key["api-secret"].arn
}

output "tenant_secret_arn" {
  description = "Secret of PRICEINTEL_TENANT_SECRET."
  value       = aws_secretsmanager_secret.key["tenant-secret"].arn
}

output "db_password_secret_arn" {
  description = "Secret of the database owner's password (PGPASSWORD)."
  value       = aws_secretsmanager_secret.db_password.arn
}

output "db_password" {
  description = "The database owner's password, for RDS's write-only password (ephemeral: never stored)."
  value       = ephemeral.aws_secretsmanager_random_password.db.random_password
  ephemeral   = true
}
