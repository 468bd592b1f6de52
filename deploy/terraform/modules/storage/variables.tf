variable "name" {
  description = "Name prefix of the bucket (a unique suffix is added)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,35}$", var.name))
    error_message = "The name must be 2-36 lower-case letters, digits or hyphens (S3 bucket prefix)."
  }
}

variable "kms_key_arn" {
  description = "Optional customer-managed KMS key for the objects (null: SSE-S3)."
  type        = string
  default     = null
}

variable "days_to_infrequent_access" {
  description = "Days after which archived pages move to S3 Standard-IA (S3 requires at least 30)."
  type        = number
  default     = 30

  validation {
    condition     = var.days_to_infrequent_access >= 30
    error_message = "S3 Standard-IA transitions need at least 30 days."
  }
}

variable "days_to_glacier" {
  description = "Days after which archived pages move to S3 Glacier Instant Retrieval (at least 30 after Standard-IA)."
  type        = number
  default     = 180

  validation {
    condition     = var.days_to_glacier >= 60
    error_message = "Glacier Instant Retrieval must come at least 30 days after Standard-IA (so >= 60)."
  }
}

variable "noncurrent_version_days" {
  description = "Days an overwritten or deleted object's old version is kept."
  type        = number
  default     = 90

  validation {
    condition     = var.noncurrent_version_days >= 1
    error_message = "noncurrent_version_days must be at least 1."
  }
}

variable "log_retention_days" {
  description = "Days the objects under logs/ are kept."
  type        = number
  default     = 400

  validation {
    condition     = var.log_retention_days > 30
    error_message = "log_retention_days must exceed the 30-day move to Standard-IA."
  }
}
