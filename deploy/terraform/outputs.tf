output "alb_dns_name" {
  description = "DNS name of the load balancer: point api_hostname and apps_hostname at it (CNAME or alias)."
  value       = aws_lb.this.dns_name
}

output "api_url" {
  description = "The REST API (OpenAPI docs at /docs)."
  value       = "https://${var.api_hostname}"
}

output "apps_url" {
  description = "The Voila apps (sign-in page at /login)."
  value       = "https://${var.apps_hostname}"
}

output "cluster_name" {
  description = "The ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "bucket_name" {
  description = "S3 bucket of the raw page archive (objects/, index/) and logs (logs/)."
  value       = module.storage.bucket_name
}

output "database_endpoint" {
  description = "RDS endpoint (host:port), reachable from the private subnets only."
  value       = module.database.endpoint
}

output "database_password_secret_arn" {
  description = "Secrets Manager secret with the database owner's password (PGPASSWORD of the tasks)."
  value       = local.secrets["PGPASSWORD"]
}

output "secret_arns" {
  description = "Secrets Manager secrets the task definitions reference, by environment variable."
  value       = local.secrets
}

output "log_groups" {
  description = "CloudWatch log groups of the API, the apps, the pipeline and the migration."
  value       = { for k, t in module.task : k => t.task_definition.log_group_name }
}

output "migrate_command" {
  description = "Runs the schema migration (`priceintel init-db`) as a one-off task: before the first start and each release."
  value       = "aws ecs run-task --region ${var.region} --cluster ${aws_ecs_cluster.this.name} --launch-type FARGATE --task-definition ${module.task["migrate"].task_definition.family} --network-configuration 'awsvpcConfiguration={subnets=[${join(",", var.private_subnet_ids)}],securityGroups=[${aws_security_group.this["tasks"].id}],assignPublicIp=DISABLED}'"
}

output "pipeline_schedule_arn" {
  description = "The EventBridge Scheduler schedule that starts `priceintel schedule --once`."
  value       = module.scheduler.schedule_arn
}
