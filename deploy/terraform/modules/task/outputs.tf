output "task_definition" {
  description = "The task definition: family, ARN of the revision in use and without the revision (the latest), its roles, the container's command and log group."
  value = {
    family               = aws_ecs_task_definition.this.family
    arn                  = aws_ecs_task_definition.this.arn
    arn_without_revision = aws_ecs_task_definition.this.arn_without_revision
    execution_role_arn   = aws_ecs_task_definition.this.execution_role_arn
    task_role_arn        = aws_ecs_task_definition.this.task_role_arn
    command              = local.command
    log_group_name       = aws_cloudwatch_log_group.this.name
  }
}
