variable "name" {
  description = "Name of the task definition family and of its log group (/ecs/<name>): letters, digits, hyphens and underscores (the root module's `environment` validation keeps its names so)."
  type        = string
}

variable "container" {
  description = "What runs: the command (a priceintel subcommand) and `--set KEY=VALUE` settings appended to it, vCPU units (1024 = 1 vCPU), memory in MiB, task disk in GiB (21-200; null: the Fargate default), extra environment variables; for a server, the port it listens on and the path answering 200 when healthy; the init process; the log stream prefix."
  type = object({
    command           = list(string)
    settings          = optional(map(string), {})
    cpu               = number
    memory            = number
    ephemeral_storage = optional(number)
    environment       = optional(map(string), {})
    port              = optional(number)
    health_check_path = optional(string, "/ready")
    init_process      = optional(bool, true)
    log_stream_prefix = optional(string, "priceintel")
  })

  validation {
    condition     = length(var.container.command) >= 2 && var.container.command[0] == "priceintel"
    error_message = "The command must be a priceintel subcommand, e.g. [\"priceintel\", \"api\", ...]."
  }
  validation {
    condition     = alltrue([for k in keys(var.container.settings) : can(regex("^[a-z_]+$", k))])
    error_message = "Setting names are env.yaml keys: lower-case letters and underscores."
  }
  validation {
    condition     = var.container.ephemeral_storage == null || try(var.container.ephemeral_storage >= 21 && var.container.ephemeral_storage <= 200, false)
    error_message = "Fargate ephemeral storage is 21 to 200 GiB."
  }
  validation {
    condition     = var.container.port == null || try(var.container.port > 0 && var.container.port < 65536, false)
    error_message = "The port must be a TCP port."
  }
}

variable "image" {
  description = "Container image, by tag or digest."
  type        = string
}

variable "region" {
  description = "AWS region (for the awslogs driver)."
  type        = string
}

variable "environment" {
  description = "Plain environment variables of every container (no secrets); the container's own are added."
  type        = map(string)
  default     = {}
}

variable "secrets" {
  description = "Environment variables read from Secrets Manager at start: name => secret ARN."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for arn in values(var.secrets) : can(regex("^arn:aws[a-z-]*:(secretsmanager|ssm):", arn))])
    error_message = "Every secret must be a Secrets Manager secret or SSM parameter ARN."
  }
}

variable "execution_role_arn" {
  description = "Role ECS uses to pull the image, write the logs and read the secrets."
  type        = string
}

variable "task_role_arn" {
  description = "Role the application runs as."
  type        = string
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the container's logs."
  type        = number
  default     = 90
}
