# RDS PostgreSQL 17 for the system of record: private subnets only, encrypted storage, TLS required,
# automated backups and a final snapshot, the password write-only (never in the Terraform state).

resource "aws_db_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids
}

resource "aws_security_group" "this" {
  name        = "${var.name}-db"
  description = "priceintel database: PostgreSQL from the application tasks only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "clients" {
  for_each = var.client_security_groups # static keys: the ids may be unknown until the groups exist

  security_group_id            = aws_security_group.this.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = each.value
}

resource "aws_db_parameter_group" "this" {
  name   = "${var.name}-pg17"
  family = "postgres17"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = "1000" # ms: slow statements in the PostgreSQL log (CloudWatch)
  }
}

resource "aws_cloudwatch_log_group" "postgresql" {
  # the name RDS writes to; created here so that it gets a retention
  name              = "/aws/rds/instance/${var.name}/postgresql"
  retention_in_days = var.cloudwatch_log_retention
}

resource "aws_db_instance" "this" {
  identifier     = var.name
  engine         = "postgres"
  engine_version = var.settings.engine_version
  instance_class = var.settings.instance_class

  db_name             = var.settings.database_name
  username            = var.settings.username
  password_wo         = var.password
  password_wo_version = var.password_version

  allocated_storage     = var.settings.allocated_storage
  max_allocated_storage = var.settings.max_allocated_storage
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = var.settings.kms_key_arn

  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.this.id]
  publicly_accessible    = false
  multi_az               = var.settings.multi_az
  parameter_group_name   = aws_db_parameter_group.this.name

  backup_retention_period   = var.settings.backup_retention_days
  backup_window             = "02:00-03:00"
  maintenance_window        = "sun:03:30-sun:04:30"
  copy_tags_to_snapshot     = true
  delete_automated_backups  = false
  skip_final_snapshot       = false
  final_snapshot_identifier = "${var.name}-final"
  deletion_protection       = var.settings.deletion_protection

  auto_minor_version_upgrade      = true
  allow_major_version_upgrade     = false
  performance_insights_enabled    = true
  enabled_cloudwatch_logs_exports = ["postgresql", "upgrade"]

  depends_on = [aws_cloudwatch_log_group.postgresql]
}
