output "schedule_arn" {
  description = "ARN of the EventBridge Scheduler schedule."
  value       = aws_scheduler_schedule.this.arn
}

output "task_definition_arn" {
  description = "ARN of the pipeline's task definition revision."
  value       = aws_ecs_task_definition.this.arn
}

output "command" {
  description = "The pipeline container's command."
  value       = local.command
}

output "log_group_name" {
  description = "CloudWatch log group of the pipeline runs."
  value       = aws_cloudwatch_log_group.this.name
}
