variable "name" {
  description = "Name prefix of the bucket (a unique suffix is added): 2-36 lower-case letters, digits or hyphens (the root module's `environment` validation keeps its names so)."
  type        = string
}

variable "kms_key_arn" {
  description = "Optional customer-managed KMS key for the objects (null: SSE-S3)."
  type        = string
  default     = null
}

variable "lifecycle_days" {
  description = "Days after which archived pages move to S3 Standard-IA (S3 requires at least 30) and to Glacier Instant Retrieval (at least 30 later), days an overwritten or deleted object's old version is kept, days the objects under logs/ are kept (more than the 30 to Standard-IA): the root module's `raw_archive`, validated there."
  type = object({
    days_to_infrequent_access = number
    days_to_glacier           = number
    noncurrent_version_days   = number
    log_retention_days        = number
  })
}
