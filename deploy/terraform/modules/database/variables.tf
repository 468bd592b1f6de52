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

variable "client_security_groups" {
  description = "Security groups allowed to connect on port 5432, by a name of the caller's choosing (a map with static keys, so a first plan works before the groups exist)."
  type        = map(string)
}

variable "settings" {
  description = "The instance: class (db.*), storage in GiB (initial and autoscaling maximum), a Multi-AZ standby, days of automated backups (point-in-time recovery, 1-35), deletion protection (turn off deliberately before a destroy): the root module's `database`, validated there. Optional: the PostgreSQL version, the major version 17 (RDS picks its default minor and upgrades it) or an exact 17.x; the database's name; the owner (master) role, for migrations, loads and the CLI, which creates the app and worker roles; a customer-managed KMS key for the storage (null: the AWS-managed aws/rds key)."
  type = object({
    instance_class        = string
    allocated_storage     = number
    max_allocated_storage = number
    multi_az              = bool
    backup_retention_days = number
    deletion_protection   = bool
    engine_version        = optional(string, "17")
    database_name         = optional(string, "priceintel")
    username              = optional(string, "priceintel")
    kms_key_arn           = optional(string)
  })

  validation {
    condition     = var.settings.backup_retention_days >= 1 && var.settings.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 1 and 35 (0 would disable backups)."
  }
  validation {
    condition     = can(regex("^17(\\.[0-9]+)?$", var.settings.engine_version))
    error_message = "priceintel is deployed on PostgreSQL 17: use 17 or 17.x."
  }
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

variable "cloudwatch_log_retention" {
  description = "Days CloudWatch keeps the PostgreSQL log."
  type        = number
  default     = 90
}
