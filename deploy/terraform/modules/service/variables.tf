variable "name" {
  description = "Name of the ECS service."
  type        = string
}

variable "ecs" {
  description = "Where the tasks run: the ECS cluster, the VPC (of the target group), private subnets and security groups."
  type = object({
    cluster_arn        = string
    vpc_id             = string
    subnet_ids         = list(string)
    security_group_ids = list(string)
  })
}

variable "task_definition_arn" {
  description = "The task definition revision to run (modules/task)."
  type        = string
}

variable "desired_count" {
  description = "Number of tasks."
  type        = number
  default     = 1
}

variable "container_port" {
  description = "Port the server listens on (the target group's and the load balancer's)."
  type        = number
}

variable "health_check_path" {
  description = "Path answering 200 when the service is healthy (the target group's check)."
  type        = string

  validation {
    condition     = startswith(var.health_check_path, "/")
    error_message = "The health_check_path must start with /."
  }
}

variable "sticky_sessions" {
  description = "Keep a client on one task (the apps: a user's kernel lives in one task)."
  type        = bool
  default     = false
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
