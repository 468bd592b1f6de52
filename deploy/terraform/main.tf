# priceintel on AWS: ECS Fargate services for the REST API and the Voila apps behind one HTTPS load balancer,
# the pipeline as a scheduled ECS task, RDS PostgreSQL 17, S3 for the raw page archive and logs, secrets in
# Secrets Manager (generated in AWS: their values never enter the Terraform state), CloudWatch logs.
# docs/deploy.md.

locals {
  name = "priceintel-${var.environment}"

  # the owner's URL without a password: libpq reads PGPASSWORD (a secret below); TLS required by the server
  database_url = "postgresql+psycopg://${module.database.username}@${module.database.address}:${module.database.port}/${module.database.name}?sslmode=require"

  environment = merge(
    {
      DATABASE_URL           = local.database_url
      PRICEINTEL_ARCHIVE_URL = "s3://${module.storage.bucket_name}" # objects/, index/ and logs/ at the root
      AWS_REGION             = var.region
      OMP_NUM_THREADS        = "1"
    },
    var.sentry_dsn == "" ? {} : { SENTRY_DSN = var.sentry_dsn },
  )

  secrets = merge(
    {
      PGPASSWORD               = module.secrets.db_password_secret_arn
      PRICEINTEL_API_SECRET    = module.secrets.api_secret_arn
      PRICEINTEL_TENANT_SECRET = module.secrets.tenant_secret_arn
    },
    var.app_database_url_secret_arn == null ? {} : { PRICEINTEL_APP_DATABASE_URL = var.app_database_url_secret_arn },
  )
  secret_arns = values(local.secrets)
}

data "aws_vpc" "this" {
  id = var.vpc_id
}

# ------------------------------------------------------------------------------------------------ secrets

module "secrets" {
  source = "./modules/secrets"

  name                = local.name
  db_password_version = var.db_password_version
}

# ------------------------------------------------------------------------------------------------ storage, database

module "storage" {
  source = "./modules/storage"

  name                      = local.name
  days_to_infrequent_access = var.raw_archive.days_to_infrequent_access
  days_to_glacier           = var.raw_archive.days_to_glacier
  noncurrent_version_days   = var.raw_archive.noncurrent_version_days
  log_retention_days        = var.raw_archive.log_retention_days
}

module "database" {
  source = "./modules/database"

  name                      = local.name
  vpc_id                    = var.vpc_id
  subnet_ids                = var.private_subnet_ids
  client_security_group_ids = [aws_security_group.tasks.id]
  instance_class            = var.database.instance_class
  allocated_storage         = var.database.allocated_storage
  max_allocated_storage     = var.database.max_allocated_storage
  multi_az                  = var.database.multi_az
  backup_retention_days     = var.database.backup_retention_days
  deletion_protection       = var.database.deletion_protection
  password                  = module.secrets.db_password
  password_version          = var.db_password_version
  cloudwatch_log_retention  = var.log_retention_days
}

# ------------------------------------------------------------------------------------------------ network

resource "aws_security_group" "alb" {
  name        = "${local.name}-alb"
  description = "priceintel load balancer: HTTPS (and HTTP, redirected) from the allowed networks"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "alb" {
  for_each = { for pair in setproduct([80, 443], var.allowed_cidr_blocks) : "${pair[0]}-${pair[1]}" => pair }

  security_group_id = aws_security_group.alb.id
  ip_protocol       = "tcp"
  from_port         = each.value[0]
  to_port           = each.value[0]
  cidr_ipv4         = each.value[1]
}

resource "aws_vpc_security_group_egress_rule" "alb_to_tasks" {
  for_each = toset(["8000", "8866"])

  security_group_id            = aws_security_group.alb.id
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.key)
  to_port                      = tonumber(each.key)
  referenced_security_group_id = aws_security_group.tasks.id
}

resource "aws_security_group" "tasks" {
  name        = "${local.name}-tasks"
  description = "priceintel tasks: the load balancer in; the database, AWS APIs and the shops out"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "tasks_from_alb" {
  for_each = toset(["8000", "8866"])

  security_group_id            = aws_security_group.tasks.id
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.key)
  to_port                      = tonumber(each.key)
  referenced_security_group_id = aws_security_group.alb.id
}

resource "aws_vpc_security_group_egress_rule" "tasks" {
  security_group_id = aws_security_group.tasks.id
  description       = "the database, ECR, Secrets Manager, S3, CloudWatch and the shops being watched"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_lb" "this" {
  name                       = local.name
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = var.public_subnet_ids
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  idle_timeout               = 600 # the apps' kernel websockets stay open while a user works
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"
    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type = "fixed-response"
    fixed_response {
      content_type = "text/plain"
      message_body = "not found"
      status_code  = "404"
    }
  }
}

# ------------------------------------------------------------------------------------------------ ECS

resource "aws_ecs_cluster" "this" {
  name = local.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# what ECS itself uses: pull the image, write the logs, read the secrets into the containers' environment
resource "aws_iam_role" "execution" {
  name               = "${local.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "read_secrets" {
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = local.secret_arns
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  name   = "read-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.read_secrets.json
}

# what the application may do: the archive bucket only
resource "aws_iam_role" "task" {
  name               = "${local.name}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy" "task_storage" {
  name   = "archive-bucket"
  role   = aws_iam_role.task.id
  policy = module.storage.read_write_policy_json
}

module "api" {
  source = "./modules/service"

  name               = "${local.name}-api"
  region             = var.region
  cluster_arn        = aws_ecs_cluster.this.arn
  image              = var.image
  command            = ["priceintel", "api", "--host", "0.0.0.0", "--port", "8000"]
  container_port     = 8000
  health_check_path  = "/ready"
  desired_count      = var.api.desired_count
  cpu                = var.api.cpu
  memory             = var.api.memory
  environment        = local.environment
  secrets            = local.secrets
  execution_role_arn = aws_iam_role.execution.arn
  task_role_arn      = aws_iam_role.task.arn
  vpc_id             = var.vpc_id
  subnet_ids         = var.private_subnet_ids
  security_group_ids = [aws_security_group.tasks.id]
  listener_arn       = aws_lb_listener.https.arn
  host_header        = var.api_hostname
  listener_priority  = 10
  log_retention_days = var.log_retention_days
}

module "apps" {
  source = "./modules/service"

  name              = "${local.name}-apps"
  region            = var.region
  cluster_arn       = aws_ecs_cluster.this.arn
  image             = var.image
  command           = ["priceintel", "apps", "--host", "0.0.0.0", "--port", "8866"]
  container_port    = 8866
  health_check_path = "/ready" # Voila up and its database answering (priceintel.apps.login, no sign-in)
  desired_count     = var.apps.desired_count
  cpu               = var.apps.cpu
  memory            = var.apps.memory
  environment = merge(local.environment, {
    PRICEINTEL_TRUSTED_PROXIES = var.trusted_proxies != "" ? var.trusted_proxies : data.aws_vpc.this.cidr_block
  })
  secrets            = local.secrets
  execution_role_arn = aws_iam_role.execution.arn
  task_role_arn      = aws_iam_role.task.arn
  vpc_id             = var.vpc_id
  subnet_ids         = var.private_subnet_ids
  security_group_ids = [aws_security_group.tasks.id]
  listener_arn       = aws_lb_listener.https.arn
  host_header        = var.apps_hostname
  listener_priority  = 20
  sticky_sessions    = true # a user's app kernel lives in one task
  log_retention_days = var.log_retention_days
}

module "scheduler" {
  source = "./modules/scheduler"

  name                = "${local.name}-pipeline"
  region              = var.region
  cluster_arn         = aws_ecs_cluster.this.arn
  image               = var.image
  settings            = var.pipeline.settings
  cpu                 = var.pipeline.cpu
  memory              = var.pipeline.memory
  ephemeral_storage   = var.pipeline.ephemeral_storage
  environment         = local.environment
  secrets             = local.secrets
  execution_role_arn  = aws_iam_role.execution.arn
  task_role_arn       = aws_iam_role.task.arn
  subnet_ids          = var.private_subnet_ids
  security_group_ids  = [aws_security_group.tasks.id]
  schedule_expression = var.schedule_expression
  schedule_timezone   = var.schedule_timezone
  log_retention_days  = var.log_retention_days
}

# the schema migration: a one-off task run before each release (`migrate_command` output)
resource "aws_cloudwatch_log_group" "migrate" {
  name              = "/ecs/${local.name}-migrate"
  retention_in_days = var.log_retention_days
}

resource "aws_ecs_task_definition" "migrate" {
  family                   = "${local.name}-migrate"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 512
  memory                   = 1024
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([{
    name        = "priceintel"
    image       = var.image
    essential   = true
    command     = ["priceintel", "init-db"]
    user        = "10001:10001"
    environment = [for k, v in local.environment : { name = k, value = v }]
    secrets     = [for k, v in local.secrets : { name = k, valueFrom = v }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.migrate.name
        awslogs-region        = var.region
        awslogs-stream-prefix = "migrate"
      }
    }
  }])
}
