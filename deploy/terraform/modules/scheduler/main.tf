# The pipeline on a schedule: EventBridge Scheduler starts a Fargate task running `priceintel schedule --once`
# (one run under the run lock, retries of failed tasks with backoff, history in `schedule_run`, a summary sent),
# which then exits. Overlap is refused by the database run lock (an advisory lock), so no retry policy is set here.
# The task definition (the command, its `--set` settings, the log group) is modules/task's.

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = "${var.name}-scheduler"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

data "aws_iam_policy_document" "run_task" {
  statement {
    actions   = ["ecs:RunTask"]
    resources = ["${var.task_definition.arn_without_revision}:*"]
    condition {
      test     = "ArnLike"
      variable = "ecs:cluster"
      values   = [var.ecs.cluster_arn]
    }
  }
  statement {
    actions   = ["ecs:TagResource"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "ecs:CreateAction"
      values   = ["RunTask"]
    }
  }
  statement {
    actions   = ["iam:PassRole"]
    resources = [var.task_definition.execution_role_arn, var.task_definition.task_role_arn]
    condition {
      test     = "StringLike"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "run-pipeline-task"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.run_task.json
}

resource "aws_scheduler_schedule" "this" {
  name                         = var.name
  description                  = "priceintel pipeline: ${join(" ", var.task_definition.command)}"
  schedule_expression          = var.schedule_expression
  schedule_expression_timezone = var.schedule_timezone
  state                        = var.enabled ? "ENABLED" : "DISABLED"

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = var.ecs.cluster_arn
    role_arn = aws_iam_role.this.arn

    ecs_parameters {
      task_definition_arn     = var.task_definition.arn_without_revision # the latest revision
      launch_type             = "FARGATE"
      task_count              = 1
      enable_ecs_managed_tags = true
      propagate_tags          = "TASK_DEFINITION"

      network_configuration {
        subnets          = var.ecs.subnet_ids
        security_groups  = var.ecs.security_group_ids
        assign_public_ip = false
      }
    }

    retry_policy {
      maximum_retry_attempts       = 0 # the pipeline retries its own failed tasks
      maximum_event_age_in_seconds = 3600
    }
  }
}
