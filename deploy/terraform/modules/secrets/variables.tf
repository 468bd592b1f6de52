variable "name" {
  description = "Prefix of the secrets' names (name/api-secret, name/tenant-secret, name/db-password)."
  type        = string
}

variable "db_password_version" {
  description = "Increase to generate a new database password (written to RDS and the secret together)."
  type        = number
  default     = 1
}

variable "recovery_window_days" {
  description = "Days a deleted secret can still be restored (0 deletes at once; else 7-30)."
  type        = number
  default     = 7

  validation {
    condition     = var.recovery_window_days == 0 || (var.recovery_window_days >= 7 && var.recovery_window_days <= 30)
    error_message = "The recovery window is 0 or 7-30 days."
  }
}
