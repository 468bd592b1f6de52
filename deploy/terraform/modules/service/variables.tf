variable "name" {
  description = "Name of the service, its task definition family and log group."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9][a-zA-Z0-9_-]{0,254}$", var.name))
    error_message = "The name must be letters, digits, hyphens and underscores (ECS)."
  }
}

variable "region" {
  description = "AWS region (for the awslogs driver)."
  type        = string
}

variable "cluster_arn" {
  description = "ECS cluster to run in."
  type        = string
}

variable "image" {
  description = "Container image, by tag or digest."
  type        = string
}

variable "command" {
  description = "The container's command: a priceintel server listening on 0.0.0.0 and container_port."
  type        = list(string)

  validation {
    condition     = length(var.command) >= 2 && var.command[0] == "priceintel"
    error_message = "The command must be a priceintel subcommand, e.g. [\"priceintel\", \"api\", ...]."
  }
}

variable "container_port" {
  description = "Port the server listens on."
  type        = number

  validation {
    condition     = var.container_port > 0 && var.container_port < 65536
    error_message = "The container_port must be a TCP port."
  }
}

variable "health_check_path" {
  description = "Path answering 200 when the service is healthy (the target group's and the container's check)."
  type        = string

  validation {
    condition     = startswith(var.health_check_path, "/")
    error_message = "The health_check_path must start with /."
  }
}

variable "desired_count" {
  description = "Number of tasks."
  type        = number
  default     = 1
}

variable "cpu" {
  description = "vCPU units of a task (1024 = 1 vCPU)."
  type        = number
  default     = 512
}

variable "memory" {
  description = "Memory of a task in MiB."
  type        = number
  default     = 1024
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

variable "vpc_id" {
  description = "VPC of the target group."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the tasks."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the tasks."
  type        = list(string)
}

variable "listener_arn" {
  description = "HTTPS listener of the load balancer."
  type        = string
}

variable "host_header" {
  description = "Host name routed to this service."
  type        = string
}

variable "listener_priority" {
  description = "Priority of the listener rule (unique per listener)."
  type        = number

  validation {
    condition     = var.listener_priority >= 1 && var.listener_priority <= 50000
    error_message = "The listener_priority must be between 1 and 50000."
  }
}

variable "sticky_sessions" {
  description = "Keep a client on one task (the apps: a user's kernel lives in one task)."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the logs."
  type        = number
  default     = 90
}
