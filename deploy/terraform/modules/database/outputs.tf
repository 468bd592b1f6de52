output "endpoint" {
  description = "host:port of the instance."
  value       = aws_db_instance.this.endpoint
}

output "url" {
  description = "The owner's SQLAlchemy URL without a password (libpq reads PGPASSWORD), TLS required."
  value       = "postgresql+psycopg://${aws_db_instance.this.username}@${aws_db_instance.this.address}:${aws_db_instance.this.port}/${aws_db_instance.this.db_name}?sslmode=require"
}
