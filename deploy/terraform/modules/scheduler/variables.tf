variable "name" {
  description = "Name of the schedule and prefix of its role's: up to 55 letters, digits, hyphens and underscores (the root module's `environment` validation keeps its names so)."
  type        = string
}

variable "ecs" {
  description = "Where the task runs: the ECS cluster, private subnets and security groups."
  type = object({
    cluster_arn        = string
    subnet_ids         = list(string)
    security_group_ids = list(string)
  })
}

variable "task_definition" {
  description = "The pipeline's task definition (modules/task's `task_definition` output): started at its latest revision, its roles passed to ECS."
  type = object({
    arn_without_revision = string
    command              = list(string)
    execution_role_arn   = string
    task_role_arn        = string
  })
}

variable "schedule_expression" {
  description = "EventBridge Scheduler expression, e.g. cron(0 6 * * ? *) or rate(1 day)."
  type        = string
  default     = "cron(0 6 * * ? *)"
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
