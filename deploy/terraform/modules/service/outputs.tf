output "service" {
  description = "The ECS service's name and its target group's ARN."
  value = {
    name             = aws_ecs_service.this.name
    target_group_arn = aws_lb_target_group.this.arn
  }
}
