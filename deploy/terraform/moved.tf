# The resource addresses of the layout before the task module (edff89a: one security group, role and ALB rule
# resource each, module "api" and module "apps" with their own task definition and log group, the pipeline's in
# module "scheduler", the migration's in the root). Kept so that a stack applied with the old layout is updated in
# place, not destroyed and recreated (name collisions, lost logs). Every other address is unchanged but one: the
# database's ingress rule for the tasks was keyed by the tasks' security group id (unknown before that group exists,
# so a new stack could not be planned in one go) and is now keyed "tasks"; an old key cannot be named here, so
# that one rule is replaced (the tasks cannot reach the database for the seconds in between).

# ------------------------------------------------------------------------------------------------ network

moved {
  from = aws_security_group.alb
  to   = aws_security_group.this["alb"]
}

moved {
  from = aws_security_group.tasks
  to   = aws_security_group.this["tasks"]
}

# the load balancer <-> tasks rules, keyed by port before, by service now
moved {
  from = aws_vpc_security_group_egress_rule.alb_to_tasks["8000"]
  to   = aws_vpc_security_group_egress_rule.alb_to_tasks["api"]
}

moved {
  from = aws_vpc_security_group_egress_rule.alb_to_tasks["8866"]
  to   = aws_vpc_security_group_egress_rule.alb_to_tasks["apps"]
}

moved {
  from = aws_vpc_security_group_ingress_rule.tasks_from_alb["8000"]
  to   = aws_vpc_security_group_ingress_rule.tasks_from_alb["api"]
}

moved {
  from = aws_vpc_security_group_ingress_rule.tasks_from_alb["8866"]
  to   = aws_vpc_security_group_ingress_rule.tasks_from_alb["apps"]
}

# ------------------------------------------------------------------------------------------------ IAM

moved {
  from = aws_iam_role.execution
  to   = aws_iam_role.ecs["execution"]
}

moved {
  from = aws_iam_role.task
  to   = aws_iam_role.ecs["task"]
}

# ------------------------------------------------------------------------------------------------ the API

moved {
  from = module.api.aws_cloudwatch_log_group.this
  to   = module.task["api"].aws_cloudwatch_log_group.this
}

moved {
  from = module.api.aws_ecs_task_definition.this
  to   = module.task["api"].aws_ecs_task_definition.this
}

moved {
  from = module.api.aws_lb_target_group.this
  to   = module.service["api"].aws_lb_target_group.this
}

moved {
  from = module.api.aws_lb_listener_rule.this
  to   = module.service["api"].aws_lb_listener_rule.this
}

moved {
  from = module.api.aws_ecs_service.this
  to   = module.service["api"].aws_ecs_service.this
}

# ------------------------------------------------------------------------------------------------ the apps

moved {
  from = module.apps.aws_cloudwatch_log_group.this
  to   = module.task["apps"].aws_cloudwatch_log_group.this
}

moved {
  from = module.apps.aws_ecs_task_definition.this
  to   = module.task["apps"].aws_ecs_task_definition.this
}

moved {
  from = module.apps.aws_lb_target_group.this
  to   = module.service["apps"].aws_lb_target_group.this
}

moved {
  from = module.apps.aws_lb_listener_rule.this
  to   = module.service["apps"].aws_lb_listener_rule.this
}

moved {
  from = module.apps.aws_ecs_service.this
  to   = module.service["apps"].aws_ecs_service.this
}

# ------------------------------------------------------------------------------------------------ the pipeline, the migration

moved {
  from = module.scheduler.aws_cloudwatch_log_group.this
  to   = module.task["pipeline"].aws_cloudwatch_log_group.this
}

moved {
  from = module.scheduler.aws_ecs_task_definition.this
  to   = module.task["pipeline"].aws_ecs_task_definition.this
}

moved {
  from = aws_cloudwatch_log_group.migrate
  to   = module.task["migrate"].aws_cloudwatch_log_group.this
}

moved {
  from = aws_ecs_task_definition.migrate
  to   = module.task["migrate"].aws_ecs_task_definition.this
}
