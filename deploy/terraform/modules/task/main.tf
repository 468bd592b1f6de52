# One priceintel container as a Fargate task definition, with its CloudWatch log group: a server behind the load
# balancer (a port and a container health check), the scheduled pipeline or the one-off migration. The container
# runs as the image's non-root user and gets its secrets from Secrets Manager, by ARN, at start.

locals {
  command = concat(
    var.container.command,
    flatten([for k in sort(keys(var.container.settings)) : ["--set", "${k}=${var.container.settings[k]}"]]),
  )
  port = var.container.port

  # attributes left null are left out of the definition
  container = {
    name        = "priceintel"
    image       = var.image
    essential   = true
    command     = local.command
    user        = "10001:10001"
    environment = [for k, v in merge(var.environment, var.container.environment) : { name = k, value = v }]
    secrets     = [for k, v in var.secrets : { name = k, valueFrom = v }]
    linuxParameters = var.container.init_process ? {
      initProcessEnabled = true # an init process reaps orphaned children (the apps' kernels, Chromium)
    } : null
    portMappings = local.port == null ? null : [{ containerPort = local.port, protocol = "tcp" }]
    healthCheck = local.port == null ? null : {
      command     = ["CMD", "python", "/app/deploy/healthcheck.py", "http://127.0.0.1:${local.port}${var.container.health_check_path}"]
      interval    = 30
      timeout     = 5
      retries     = 3
      startPeriod = 120
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.this.name
        awslogs-region        = var.region
        awslogs-stream-prefix = var.container.log_stream_prefix
      }
    }
  }
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
}

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.container.cpu
  memory                   = var.container.memory
  execution_role_arn       = var.execution_role_arn
  task_role_arn            = var.task_role_arn

  dynamic "ephemeral_storage" {
    for_each = var.container.ephemeral_storage == null ? [] : [var.container.ephemeral_storage]
    content {
      size_in_gib = ephemeral_storage.value
    }
  }

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([{ for k, v in local.container : k => v if v != null }])
}
