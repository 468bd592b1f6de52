# Offline plans against a mocked AWS provider (`terraform test`: no account, no network). Terraform 1.11's mock
# cannot open ephemeral resources (the root module generates its secrets with one), so the modules are planned
# one by one; the root module itself is covered by `terraform validate`. A run passes the variables its module
# declares, from this block and its own.

mock_provider "aws" {
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
  mock_resource "aws_ecs_task_definition" {
    defaults = {
      arn                  = "arn:aws:ecs:eu-west-1:123456789012:task-definition/priceintel-test:1"
      arn_without_revision = "arn:aws:ecs:eu-west-1:123456789012:task-definition/priceintel-test"
    }
  }
}

variables {
  name               = "priceintel-test"
  region             = "eu-west-1"
  image              = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/priceintel:0.1.0"
  execution_role_arn = "arn:aws:iam::123456789012:role/priceintel-test-execution"
  task_role_arn      = "arn:aws:iam::123456789012:role/priceintel-test-task"
  vpc_id             = "vpc-0123456789abcdef0"
  subnet_ids         = ["subnet-1a", "subnet-1b"]
  ecs = {
    cluster_arn        = "arn:aws:ecs:eu-west-1:123456789012:cluster/priceintel-test"
    vpc_id             = "vpc-0123456789abcdef0"
    subnet_ids         = ["subnet-1a", "subnet-1b"]
    security_group_ids = ["sg-0123456789abcdef0"]
  }
  secrets = {
    PGPASSWORD            = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:priceintel-test/db-password-AbCdEf"
    PRICEINTEL_API_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:priceintel-test/api-secret-AbCdEf"
  }
  # the root module's defaults of `database`
  settings = {
    instance_class        = "db.t4g.medium"
    allocated_storage     = 50
    max_allocated_storage = 500
    multi_az              = true
    backup_retention_days = 14
    deletion_protection   = true
  }
  client_security_groups = { tasks = "sg-0123456789abcdef0" }
  password               = "not-a-real-password"
}

run "apps_task" {
  command = plan
  module {
    source = "./modules/task"
  }
  variables {
    name        = "priceintel-test-apps"
    environment = { DATABASE_URL = "postgresql+psycopg://priceintel@db.internal:5432/priceintel" }
    container = {
      command     = ["priceintel", "apps", "--host", "0.0.0.0", "--port", "8866"]
      cpu         = 1024
      memory      = 4096
      port        = 8866
      environment = { PRICEINTEL_TRUSTED_PROXIES = "10.0.0.0/16" }
    }
  }

  assert {
    condition = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].healthCheck.command == [
    "CMD", "python", "/app/deploy/healthcheck.py", "http://127.0.0.1:8866/ready"]
    error_message = "The container's health check must call deploy/healthcheck.py on the sign-in page."
  }
  assert {
    condition     = toset([for s in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].secrets : s.name]) == toset(["PGPASSWORD", "PRICEINTEL_API_SECRET"])
    error_message = "Secrets must reach the container from Secrets Manager, by ARN."
  }
  assert {
    condition     = toset([for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment : e.name]) == toset(["DATABASE_URL", "PRICEINTEL_TRUSTED_PROXIES"])
    error_message = "The container gets the shared environment and its own."
  }
  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].user == "10001:10001"
    error_message = "The container must run as the image's non-root user."
  }
}

run "pipeline_task" {
  command = plan
  module {
    source = "./modules/task"
  }
  variables {
    name = "priceintel-test-pipeline"
    container = {
      command           = ["priceintel", "schedule", "--once"]
      settings          = { source = "live", product_limit = "0" }
      cpu               = 2048
      memory            = 8192
      ephemeral_storage = 50
      log_stream_prefix = "pipeline"
    }
  }

  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].command == ["priceintel", "schedule", "--once", "--set", "product_limit=0", "--set", "source=live"]
    error_message = "The scheduled task must make one pipeline run with the given settings."
  }
  assert {
    condition     = !can(jsondecode(aws_ecs_task_definition.this.container_definitions)[0].portMappings) && aws_ecs_task_definition.this.ephemeral_storage[0].size_in_gib == 50
    error_message = "The pipeline listens on no port and gets its own disk."
  }
}

run "apps_service" {
  command = plan
  module {
    source = "./modules/service"
  }
  variables {
    name                = "priceintel-test-apps"
    task_definition_arn = "arn:aws:ecs:eu-west-1:123456789012:task-definition/priceintel-test-apps:1"
    container_port      = 8866
    health_check_path   = "/ready"
    listener_arn        = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/priceintel-test/0/1"
    host_header         = "prices.example.com"
    listener_priority   = 20
    sticky_sessions     = true
  }

  assert {
    condition     = aws_lb_target_group.this.health_check[0].path == "/ready" && aws_lb_target_group.this.stickiness[0].enabled
    error_message = "The apps' target group must check the sign-in page and keep a user on one task."
  }
  assert {
    condition     = aws_ecs_service.this.deployment_circuit_breaker[0].rollback && !aws_ecs_service.this.network_configuration[0].assign_public_ip
    error_message = "A failed deployment must roll back; tasks get no public address."
  }
}

run "scheduled_pipeline" {
  command = plan
  module {
    source = "./modules/scheduler"
  }
  variables {
    name = "priceintel-test-pipeline"
    task_definition = {
      arn_without_revision = "arn:aws:ecs:eu-west-1:123456789012:task-definition/priceintel-test-pipeline"
      command              = ["priceintel", "schedule", "--once", "--set", "source=live"]
      execution_role_arn   = var.execution_role_arn
      task_role_arn        = var.task_role_arn
    }
  }

  assert {
    condition     = aws_scheduler_schedule.this.schedule_expression == "cron(0 6 * * ? *)" && aws_scheduler_schedule.this.target[0].ecs_parameters[0].launch_type == "FARGATE"
    error_message = "The schedule must start a Fargate task daily at 06:00 by default."
  }
}

run "database" {
  command = plan
  module {
    source = "./modules/database"
  }

  assert {
    condition     = aws_db_instance.this.storage_encrypted && !aws_db_instance.this.publicly_accessible && aws_db_instance.this.backup_retention_period == 14
    error_message = "The database must be encrypted, private and backed up."
  }
  assert {
    condition     = aws_db_instance.this.engine == "postgres" && startswith(aws_db_instance.this.engine_version, "17")
    error_message = "The database must be PostgreSQL 17."
  }
}

run "database_backups_cannot_be_turned_off" {
  command = plan
  module {
    source = "./modules/database"
  }
  variables {
    settings = merge(var.settings, { backup_retention_days = 0 })
  }
  expect_failures = [var.settings]
}

run "archive_bucket" {
  command = plan
  module {
    source = "./modules/storage"
  }
  variables {
    # the root module's defaults of `raw_archive`
    lifecycle_days = { days_to_infrequent_access = 30, days_to_glacier = 180, noncurrent_version_days = 90, log_retention_days = 400 }
  }

  assert {
    condition = alltrue([
      aws_s3_bucket_public_access_block.this.block_public_acls,
      aws_s3_bucket_public_access_block.this.block_public_policy,
      aws_s3_bucket_public_access_block.this.ignore_public_acls,
      aws_s3_bucket_public_access_block.this.restrict_public_buckets,
    ])
    error_message = "Public access to the archive must be blocked."
  }
  assert {
    condition     = aws_s3_bucket_versioning.this.versioning_configuration[0].status == "Enabled"
    error_message = "The archive must be versioned."
  }
}
