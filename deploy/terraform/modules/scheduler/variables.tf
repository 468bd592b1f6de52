variable "name" {
  description = "Name of the schedule, the task definition family and the log group."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9][a-zA-Z0-9_-]{0,54}$", var.name))
    error_message = "The name must be up to 55 letters, digits, hyphens and underscores."
  }
}

variable "region" {
  description = "AWS region (for the awslogs driver)."
  type        = string
}

variable "cluster_arn" {
  description = "ECS cluster the task runs in."
  type        = string
}

variable "image" {
  description = "Container image, by tag or digest."
  type        = string
}

variable "settings" {
  description = "Pipeline settings passed as `--set KEY=VALUE` (keys of env.yaml, e.g. source = live)."
  type        = map(string)
  default     = { source = "live" }

  validation {
    condition     = alltrue([for k in keys(var.settings) : can(regex("^[a-z_]+$", k))])
    error_message = "Setting names are env.yaml keys: lower-case letters and underscores."
  }
}

variable "cpu" {
  description = "vCPU units of the task (1024 = 1 vCPU)."
  type        = number
  default     = 2048
}

variable "memory" {
  description = "Memory of the task in MiB."
  type        = number
  default     = 8192
}

variable "ephemeral_storage" {
  description = "Task disk in GiB (21-200): the data directory of a run (pages go to S3)."
  type        = number
  default     = 50

  validation {
    condition     = var.ephemeral_storage >= 21 && var.ephemeral_storage <= 200
    error_message = "Fargate ephemeral storage is 21 to 200 GiB."
  }
}

variable "environment" {
  description = "Plain environment variables of the container (no secrets)."
  type        = map(string)
  default     = {}
}

variable "secrets" {
  description = "Environment variables read from Secrets Manager at start: name => secret ARN."
  type        = map(string)
  default     = {}
}

variable "execution_role_arn" {
  description = "Role ECS uses to pull the image, write the logs and read the secrets."
  type        = string
}

variable "task_role_arn" {
  description = "Role the pipeline runs as."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the task."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the task."
  type        = list(string)
}

variable "schedule_expression" {
  description = "EventBridge Scheduler expression, e.g. cron(0 6 * * ? *) or rate(1 day)."
  type        = string
  default     = "cron(0 6 * * ? *)"

  validation {
    condition     = can(regex("^(cron|rate|at)\\(.+\\)$", var.schedule_expression))
    error_message = "Use cron(...), rate(...) or at(...)."
  }
}

variable "schedule_timezone" {
  description = "IANA time zone of the schedule."
  type        = string
  default     = "UTC"
}

variable "enabled" {
  description = "Whether the schedule fires (false pauses the pipeline)."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the pipeline's logs."
  type        = number
  default     = 90
}
