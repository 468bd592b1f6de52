variable "name" {
  description = "Identifier of the instance and prefix of its companions."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,54}$", var.name)) && !endswith(var.name, "-")
    error_message = "The name must start with a letter and have up to 55 lower-case letters, digits or hyphens."
  }
}

variable "vpc_id" {
  description = "VPC of the database."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (two or more availability zones) of the database."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "RDS needs subnets in at least two availability zones."
  }
}

variable "client_security_group_ids" {
  description = "Security groups allowed to connect on port 5432."
  type        = list(string)
}

variable "engine_version" {
  description = "PostgreSQL version: the major version 17 (RDS picks its default minor and upgrades it) or an exact 17.x."
  type        = string
  default     = "17"

  validation {
    condition     = can(regex("^17(\\.[0-9]+)?$", var.engine_version))
    error_message = "priceintel is deployed on PostgreSQL 17: use 17 or 17.x."
  }
}

variable "instance_class" {
  description = "RDS instance class, e.g. db.t4g.medium."
  type        = string
  default     = "db.t4g.medium"

  validation {
    condition     = startswith(var.instance_class, "db.")
    error_message = "The instance_class must be an RDS class (db.*)."
  }
}

variable "database_name" {
  description = "Name of the database."
  type        = string
  default     = "priceintel"
}

variable "username" {
  description = "The owner (master) role: migrations, loads and the CLI; it creates the app and worker roles."
  type        = string
  default     = "priceintel"
}

variable "password" {
  description = "The owner's password (write-only: sent to RDS, never stored in the state)."
  type        = string
  ephemeral   = true
}

variable "password_version" {
  description = "Increase to send a new password."
  type        = number
  default     = 1
}

variable "allocated_storage" {
  description = "Initial storage in GiB."
  type        = number
  default     = 50

  validation {
    condition     = var.allocated_storage >= 20
    error_message = "gp3 storage starts at 20 GiB."
  }
}

variable "max_allocated_storage" {
  description = "Storage autoscaling limit in GiB."
  type        = number
  default     = 500
}

variable "kms_key_arn" {
  description = "Optional customer-managed KMS key for the storage (null: the AWS-managed aws/rds key)."
  type        = string
  default     = null
}

variable "multi_az" {
  description = "A standby in a second availability zone."
  type        = bool
  default     = true
}

variable "backup_retention_days" {
  description = "Days of automated backups (point-in-time recovery), 1-35."
  type        = number
  default     = 14

  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 1 and 35 (0 would disable backups)."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the instance (turn off deliberately before a destroy)."
  type        = bool
  default     = true
}

variable "cloudwatch_log_retention" {
  description = "Days CloudWatch keeps the PostgreSQL log."
  type        = number
  default     = 90
}
