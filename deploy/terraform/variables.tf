variable "region" {
  description = "AWS region to deploy into, e.g. eu-west-1."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "The region must look like eu-west-1 or us-gov-west-1."
  }
}

variable "environment" {
  description = "Name of this deployment (prefix of every resource name), e.g. prod or staging."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.environment))
    error_message = "The environment must be 2-16 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

variable "vpc_id" {
  description = "The existing VPC to deploy into."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]+$", var.vpc_id))
    error_message = "The vpc_id must be a VPC id (vpc-...)."
  }
}

variable "public_subnet_ids" {
  description = "Public subnets (two or more availability zones) for the load balancer."
  type        = list(string)

  validation {
    condition     = length(var.public_subnet_ids) >= 2 && alltrue([for s in var.public_subnet_ids : can(regex("^subnet-[0-9a-f]+$", s))])
    error_message = "Give at least two subnet ids (subnet-...) in different availability zones."
  }
}

variable "private_subnet_ids" {
  description = "Private subnets (two or more availability zones, with a NAT route for ECR, the shops and AWS APIs) for the tasks and the database."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2 && alltrue([for s in var.private_subnet_ids : can(regex("^subnet-[0-9a-f]+$", s))])
    error_message = "Give at least two subnet ids (subnet-...) in different availability zones."
  }
}

variable "image" {
  description = "The priceintel container image (built from the repository's Dockerfile), by immutable tag or digest, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/priceintel:0.1.0."
  type        = string

  validation {
    condition     = can(regex("^[^:@]+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$", var.image)) && (strcontains(var.image, "@sha256:") || (can(regex(":[^/]+$", var.image)) && !endswith(var.image, ":latest")))
    error_message = "The image needs an explicit tag other than latest, or a @sha256 digest."
  }
}

variable "certificate_arn" {
  description = "ACM certificate for the load balancer's HTTPS listener (covering api_hostname and apps_hostname)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/.+$", var.certificate_arn))
    error_message = "The certificate_arn must be an ACM certificate ARN."
  }
}

variable "api_hostname" {
  description = "Host name the load balancer routes to the REST API, e.g. api.prices.example.com (point its DNS at the alb_dns_name output)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$", var.api_hostname))
    error_message = "The api_hostname must be a lower-case DNS name."
  }
}

variable "apps_hostname" {
  description = "Host name the load balancer routes to the Voila apps, e.g. prices.example.com."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$", var.apps_hostname))
    error_message = "The apps_hostname must be a lower-case DNS name."
  }
}

variable "allowed_cidr_blocks" {
  description = "Client networks allowed to reach the load balancer (HTTPS, and HTTP for the redirect)."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = alltrue([for c in var.allowed_cidr_blocks : can(cidrhost(c, 0))])
    error_message = "Every entry must be an IPv4 CIDR block, e.g. 203.0.113.0/24."
  }
}

variable "api" {
  description = "REST API service size: tasks, vCPU units (1024 = 1 vCPU) and memory in MiB (a valid Fargate pair)."
  type = object({
    desired_count = optional(number, 2)
    cpu           = optional(number, 512)
    memory        = optional(number, 1024)
  })
  default = {}

  validation {
    condition     = var.api.desired_count >= 0 && contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.api.cpu) && var.api.memory >= 512
    error_message = "desired_count >= 0; cpu one of 256, 512, 1024, 2048, 4096, 8192, 16384; memory >= 512 MiB."
  }
}

variable "apps" {
  description = "Voila apps service size: tasks, vCPU units and memory in MiB (each open app runs a kernel: size for concurrent users)."
  type = object({
    desired_count = optional(number, 1)
    cpu           = optional(number, 1024)
    memory        = optional(number, 4096)
  })
  default = {}

  validation {
    condition     = var.apps.desired_count >= 0 && contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.apps.cpu) && var.apps.memory >= 512
    error_message = "desired_count >= 0; cpu one of 256, 512, 1024, 2048, 4096, 8192, 16384; memory >= 512 MiB."
  }
}

variable "pipeline" {
  description = "The scheduled pipeline task: vCPU units, memory in MiB, ephemeral disk in GiB (21-200) and extra `--set KEY=VALUE` settings."
  type = object({
    cpu               = optional(number, 2048)
    memory            = optional(number, 8192)
    ephemeral_storage = optional(number, 50)
    settings          = optional(map(string), { source = "live" })
  })
  default = {}

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.pipeline.cpu) && var.pipeline.memory >= 512 && var.pipeline.ephemeral_storage >= 21 && var.pipeline.ephemeral_storage <= 200
    error_message = "cpu one of 256 ... 16384; memory >= 512 MiB; ephemeral_storage between 21 and 200 GiB."
  }
}

variable "schedule_expression" {
  description = "When the pipeline runs: an EventBridge Scheduler cron() or rate() expression (6 fields for cron)."
  type        = string
  default     = "cron(0 6 * * ? *)"

  validation {
    condition     = can(regex("^(cron\\(([^ ]+ ){5}[^ ]+\\)|rate\\([0-9]+ (minute|minutes|hour|hours|day|days)\\))$", var.schedule_expression))
    error_message = "Use cron(min hour day-of-month month day-of-week year) or rate(N unit), e.g. cron(0 6 * * ? *)."
  }
}

variable "schedule_timezone" {
  description = "IANA time zone of schedule_expression."
  type        = string
  default     = "UTC"
}

variable "database" {
  description = "RDS PostgreSQL settings: instance class, storage in GiB (initial and autoscaling maximum), Multi-AZ, days of automated backups, deletion protection."
  type = object({
    instance_class        = optional(string, "db.t4g.medium")
    allocated_storage     = optional(number, 50)
    max_allocated_storage = optional(number, 500)
    multi_az              = optional(bool, true)
    backup_retention_days = optional(number, 14)
    deletion_protection   = optional(bool, true)
  })
  default = {}

  validation {
    condition     = var.database.backup_retention_days >= 1 && var.database.backup_retention_days <= 35 && var.database.allocated_storage >= 20 && var.database.max_allocated_storage >= var.database.allocated_storage && startswith(var.database.instance_class, "db.")
    error_message = "backup_retention_days 1-35; allocated_storage >= 20 GiB and <= max_allocated_storage; instance_class db.*."
  }
}

variable "db_password_version" {
  description = "Increase to generate a new database owner password (written to RDS and Secrets Manager, never to the state); restart the services afterwards."
  type        = number
  default     = 1

  validation {
    condition     = var.db_password_version >= 1 && floor(var.db_password_version) == var.db_password_version
    error_message = "db_password_version must be a positive whole number."
  }
}

variable "app_database_url_secret_arn" {
  description = "Optional Secrets Manager secret holding PRICEINTEL_APP_DATABASE_URL (the apps' and API's least-privilege role, with its password); without it they connect as the owner (docs/deploy.md)."
  type        = string
  default     = null

  validation {
    condition     = var.app_database_url_secret_arn == null || can(regex("^arn:aws[a-z-]*:secretsmanager:", var.app_database_url_secret_arn))
    error_message = "app_database_url_secret_arn must be a Secrets Manager secret ARN, or null."
  }
}

variable "raw_archive" {
  description = "S3 lifecycle of the raw page archive and logs: days to Standard-IA, to Glacier Instant Retrieval, and days kept for old (noncurrent) versions and for logs."
  type = object({
    days_to_infrequent_access = optional(number, 30)
    days_to_glacier           = optional(number, 180)
    noncurrent_version_days   = optional(number, 90)
    log_retention_days        = optional(number, 400)
  })
  default = {}

  validation {
    condition     = var.raw_archive.days_to_infrequent_access >= 30 && var.raw_archive.days_to_glacier >= var.raw_archive.days_to_infrequent_access + 30 && var.raw_archive.noncurrent_version_days >= 1 && var.raw_archive.log_retention_days > 30
    error_message = "Standard-IA needs >= 30 days, Glacier IR at least 30 days after that; noncurrent_version_days >= 1; log_retention_days > 30."
  }
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the containers' logs."
  type        = number
  default     = 90

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}

variable "sentry_dsn" {
  description = "Optional Sentry DSN for error tracking (empty: off). A DSN only allows sending events, so it is passed as a plain variable."
  type        = string
  default     = ""
}

variable "trusted_proxies" {
  description = "PRICEINTEL_TRUSTED_PROXIES of the apps: the load balancer's subnets as CIDRs, so sign-in limits see the client address (empty: the VPC's CIDR block)."
  type        = string
  default     = ""
}
