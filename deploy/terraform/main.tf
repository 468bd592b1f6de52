# priceintel on AWS: ECS Fargate services for the REST API and the Voila apps behind one HTTPS load balancer,
# the pipeline as a scheduled ECS task, RDS PostgreSQL 17, S3 for the raw page archive and logs, secrets in
# Secrets Manager (generated in AWS: their values never enter the Terraform state), CloudWatch logs.
# docs/deploy.md.

locals {
  name = "priceintel-${var.environment}"

  # every container's environment; DATABASE_URL (the owner's) carries no password: libpq reads PGPASSWORD (a secret
  # below); TLS required by the server
  environment = merge(
    {
      DATABASE_URL           = module.database.url
      PRICEINTEL_ARCHIVE_URL = "s3://${module.storage.bucket_name}" # objects/, index/ and logs/ at the root
      AWS_REGION             = var.region
      OMP_NUM_THREADS        = "1"
    },
    var.sentry_dsn == "" ? {} : { SENTRY_DSN = var.sentry_dsn },
  )

  secrets = merge(
    module.secrets.secret_arns, # PGPASSWORD, PRICEINTEL_API_SECRET, PRICEINTEL_TENANT_SECRET
    var.app_database_url_secret_arn == null ? {} : { PRICEINTEL_APP_DATABASE_URL = var.app_database_url_secret_arn },
  )

  # the servers behind the load balancer, routed by host name; both answer GET /ready when up (the apps: Voila up and
  # its database answering, priceintel.apps.login, no sign-in); a user's app kernel lives in one task (sticky)
  services = {
    api  = { port = 8000, host_header = var.api_hostname, listener_priority = 10, sticky_sessions = false, size = var.api, environment = {} }
    apps = { port = 8866, host_header = var.apps_hostname, listener_priority = 20, sticky_sessions = true, size = var.apps, environment = { PRICEINTEL_TRUSTED_PROXIES = local.trusted_proxies } }
  }
  trusted_proxies = var.trusted_proxies != "" ? var.trusted_proxies : data.aws_vpc.this.cidr_block # default: the VPC

  # where the services and the pipeline run: the cluster, the VPC, the private subnets, the tasks' security group
  ecs = {
    cluster_arn        = aws_ecs_cluster.this.arn
    vpc_id             = var.vpc_id
    subnet_ids         = var.private_subnet_ids
    security_group_ids = [aws_security_group.this["tasks"].id]
  }

  # every task definition (modules/task): the servers `priceintel <api|apps> --host 0.0.0.0 --port <port>`, the
  # scheduled pipeline and the schema migration, a one-off task run before each release (`migrate_command` output)
  tasks = merge(
    { for k, s in local.services : k => {
      command     = ["priceintel", k, "--host", "0.0.0.0", "--port", tostring(s.port)]
      port        = s.port
      cpu         = s.size.cpu
      memory      = s.size.memory
      environment = s.environment
    } },
    {
      pipeline = merge(var.pipeline, { command = ["priceintel", "schedule", "--once"], log_stream_prefix = "pipeline" })
      migrate  = { command = ["priceintel", "init-db"], cpu = 512, memory = 1024, init_process = false, log_stream_prefix = "migrate" }
    },
  )
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

  name           = local.name
  lifecycle_days = var.raw_archive
}

module "database" {
  source = "./modules/database"

  name                     = local.name
  vpc_id                   = var.vpc_id
  subnet_ids               = var.private_subnet_ids
  client_security_groups   = { tasks = aws_security_group.this["tasks"].id }
  settings                 = var.database
  password                 = module.secrets.db_password
  password_version         = var.db_password_version
  cloudwatch_log_retention = var.log_retention_days
}

# ------------------------------------------------------------------------------------------------ network

resource "aws_security_group" "this" {
  for_each = {
    alb   = "priceintel load balancer: HTTPS (and HTTP, redirected) from the allowed networks"
    tasks = "priceintel tasks: the load balancer in; the database, AWS APIs and the shops out"
  }

  name        = "${local.name}-${each.key}"
  description = each.value
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "alb" {
  for_each = { for pair in setproduct([80, 443], var.allowed_cidr_blocks) : "${pair[0]}-${pair[1]}" => pair }

  security_group_id = aws_security_group.this["alb"].id
  ip_protocol       = "tcp"
  from_port         = each.value[0]
  to_port           = each.value[0]
  cidr_ipv4         = each.value[1]
}

resource "aws_vpc_security_group_egress_rule" "alb_to_tasks" {
  for_each = local.services

  security_group_id            = aws_security_group.this["alb"].id
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
  referenced_security_group_id = aws_security_group.this["tasks"].id
}

# the other end of each rule above: the tasks accept what the load balancer may send them
resource "aws_vpc_security_group_ingress_rule" "tasks_from_alb" {
  for_each = aws_vpc_security_group_egress_rule.alb_to_tasks

  security_group_id            = each.value.referenced_security_group_id
  ip_protocol                  = each.value.ip_protocol
  from_port                    = each.value.from_port
  to_port                      = each.value.to_port
  referenced_security_group_id = each.value.security_group_id
}

resource "aws_vpc_security_group_egress_rule" "tasks" {
  security_group_id = aws_security_group.this["tasks"].id
  description       = "the database, ECR, Secrets Manager, S3, CloudWatch and the shops being watched"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_lb" "this" {
  name                       = local.name
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = var.public_subnet_ids
  security_groups            = [aws_security_group.this["alb"].id]
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

# the tasks' roles: `execution` is what ECS itself uses (pull the image, write the logs, read the secrets into the
# containers' environment), `task` what the application may do (the archive bucket only)
resource "aws_iam_role" "ecs" {
  for_each = toset(["execution", "task"])

  name               = "${local.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.ecs["execution"].name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "read_secrets" {
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = values(local.secrets)
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  name   = "read-secrets"
  role   = aws_iam_role.ecs["execution"].id
  policy = data.aws_iam_policy_document.read_secrets.json
}

resource "aws_iam_role_policy" "task_storage" {
  name   = "archive-bucket"
  role   = aws_iam_role.ecs["task"].id
  policy = module.storage.read_write_policy_json
}

module "task" {
  source   = "./modules/task"
  for_each = local.tasks

  name               = "${local.name}-${each.key}"
  container          = each.value
  image              = var.image
  region             = var.region
  environment        = local.environment
  secrets            = local.secrets
  execution_role_arn = aws_iam_role.ecs["execution"].arn
  task_role_arn      = aws_iam_role.ecs["task"].arn
  log_retention_days = var.log_retention_days
}

module "service" {
  source   = "./modules/service"
  for_each = local.services

  name                = "${local.name}-${each.key}"
  ecs                 = local.ecs
  task_definition_arn = module.task[each.key].task_definition.arn
  desired_count       = each.value.size.desired_count
  container_port      = each.value.port
  health_check_path   = "/ready"
  sticky_sessions     = each.value.sticky_sessions
  listener_arn        = aws_lb_listener.https.arn
  host_header         = each.value.host_header
  listener_priority   = each.value.listener_priority
}

module "scheduler" {
  source = "./modules/scheduler"

  name                = "${local.name}-pipeline"
  ecs                 = local.ecs
  task_definition     = module.task["pipeline"].task_definition
  schedule_expression = var.schedule_expression
  schedule_timezone   = var.schedule_timezone
}
