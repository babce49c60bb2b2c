data "aws_caller_identity" "this" {}
data "aws_region" "this" {}

# The permission boundary of every role made here: whatever a policy
# grants, these are denied.
resource "aws_iam_policy" "boundary" {
  name   = "${var.name}-boundary"
  policy = data.aws_iam_policy_document.boundary.json
}

data "aws_iam_policy_document" "boundary" {
  # tfsec:ignore:aws-iam-no-policy-wildcards justification: a permission boundary's allow is a ceiling, not a grant; roles get their narrow policies elsewhere
  statement {
    sid       = "AllowWithinBoundary" # justification: a boundary's allow is the ceiling; the denies below carve it
    actions   = ["s3:*", "sts:*", "ssm:Get*", "kms:Decrypt", "kms:GenerateDataKey", "logs:*", "cloudwatch:PutMetricData", "cloudfront:CreateInvalidation", "cloudfront:GetDistribution", "ec2messages:*", "ssmmessages:*", "ssm:UpdateInstanceInformation"]
    resources = ["*"]
  }
  statement {
    sid       = "NoIdentityChanges" # justification: an explicit deny of IAM, EC2 and Route 53 everywhere (the seed's "Deny iam:* / r53:*", "Deny ec2:*")
    effect    = "Deny"
    actions   = ["iam:*", "ec2:*", "organizations:*", "account:*", "route53:*", "cloudtrail:Stop*", "cloudtrail:Delete*", "guardduty:Delete*", "kms:ScheduleKeyDeletion", "kms:DisableKey"]
    resources = ["*"]
  }
}

# Budget: $50 a month, alerts at 80, 100 and 120 %.
resource "aws_sns_topic" "alerts" {
  name              = "${var.name}-alerts"
  kms_master_key_id = var.kms_key_arn
  tags              = var.tags
}

# Who may publish to the topic. A topic policy replaces SNS's default one,
# so the owner's statement is kept; CloudWatch alarms and Budgets publish as
# their service principals, each limited to this account's alarms and
# budgets (the conditions Budgets documents in "Creating an Amazon SNS
# topic for budget notifications"). The CMK lets both use the key.
resource "aws_sns_topic_policy" "alerts" {
  arn    = aws_sns_topic.alerts.arn
  policy = data.aws_iam_policy_document.alerts.json
}

data "aws_iam_policy_document" "alerts" {
  statement {
    sid       = "Owner"
    actions   = ["SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission", "SNS:RemovePermission", "SNS:DeleteTopic", "SNS:Subscribe", "SNS:ListSubscriptionsByTopic", "SNS:Publish"]
    resources = [aws_sns_topic.alerts.arn]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.this.account_id}:root"]
    }
  }
  statement {
    sid       = "Budgets"
    actions   = ["SNS:Publish"]
    resources = [aws_sns_topic.alerts.arn]
    principals {
      type        = "Service"
      identifiers = ["budgets.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.this.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:aws:budgets::${data.aws_caller_identity.this.account_id}:*"]
    }
  }
  statement {
    sid       = "Alarms"
    actions   = ["SNS:Publish"]
    resources = [aws_sns_topic.alerts.arn]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.this.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:aws:cloudwatch:${data.aws_region.this.region}:${data.aws_caller_identity.this.account_id}:alarm:*"]
    }
  }
}

resource "aws_sns_topic_subscription" "email" {
  for_each  = toset(var.alert_emails)
  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = each.value
}

resource "aws_budgets_budget" "monthly" {
  name         = "${var.name}-monthly"
  budget_type  = "COST"
  limit_amount = var.monthly_budget_usd
  limit_unit   = "USD"
  time_unit    = "MONTHLY"

  dynamic "notification" {
    for_each = [80, 100, 120]
    content {
      comparison_operator       = "GREATER_THAN"
      threshold                 = notification.value
      threshold_type            = "PERCENTAGE"
      notification_type         = "ACTUAL"
      subscriber_sns_topic_arns = [aws_sns_topic.alerts.arn]
    }
  }
}

resource "aws_guardduty_detector" "this" {
  enable = true
  tags   = var.tags
}

# CloudTrail in every region, files validated, into a KMS-encrypted bucket.
# tfsec:ignore:aws-s3-enable-bucket-logging The trail's own bucket: logging it to itself would loop; CloudTrail validates its files.
resource "aws_s3_bucket" "trail" {
  bucket = "${var.name}-trail-${data.aws_caller_identity.this.account_id}"
  tags   = var.tags
}

resource "aws_s3_bucket_public_access_block" "trail" {
  bucket                  = aws_s3_bucket.trail.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "trail" {
  bucket = aws_s3_bucket.trail.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
  }
}

resource "aws_s3_bucket_versioning" "trail" {
  bucket = aws_s3_bucket.trail.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_policy" "trail" {
  bucket     = aws_s3_bucket.trail.id
  policy     = data.aws_iam_policy_document.trail.json
  depends_on = [aws_s3_bucket_public_access_block.trail]
}

data "aws_iam_policy_document" "trail" {
  statement {
    sid       = "CloudTrailAcl"
    actions   = ["s3:GetBucketAcl"]
    resources = [aws_s3_bucket.trail.arn]
    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }
  }
  statement {
    sid       = "CloudTrailWrite"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.trail.arn}/AWSLogs/${data.aws_caller_identity.this.account_id}/*"]
    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "s3:x-amz-acl"
      values   = ["bucket-owner-full-control"]
    }
  }
}

resource "aws_cloudwatch_log_group" "trail" {
  name              = "/aws/${var.name}/cloudtrail"
  retention_in_days = 90
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_iam_role" "trail" {
  name               = "${var.name}-cloudtrail"
  assume_role_policy = data.aws_iam_policy_document.trail_assume.json
}

data "aws_iam_policy_document" "trail_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "trail" {
  name = "logs"
  role = aws_iam_role.trail.id
  # tfsec:ignore:aws-iam-no-policy-wildcards justification: CloudTrail names its log streams itself; the resource is this one log group's streams
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = ["logs:CreateLogStream", "logs:PutLogEvents"], Resource = "${aws_cloudwatch_log_group.trail.arn}:*" }]
  })
}

resource "aws_cloudtrail" "this" {
  name                          = "${var.name}-trail"
  s3_bucket_name                = aws_s3_bucket.trail.id
  is_multi_region_trail         = true
  include_global_service_events = true
  enable_log_file_validation    = true
  kms_key_id                    = var.kms_key_arn
  cloud_watch_logs_group_arn    = "${aws_cloudwatch_log_group.trail.arn}:*"
  cloud_watch_logs_role_arn     = aws_iam_role.trail.arn
  depends_on                    = [aws_s3_bucket_policy.trail]
  tags                          = var.tags

  # Management events, and S3 data events (who read, wrote or deleted which
  # key) for the buckets named: the uploads bucket in the prod env.
  event_selector {
    read_write_type           = "All"
    include_management_events = true
    dynamic "data_resource" {
      for_each = length(var.data_event_bucket_arns) > 0 ? [1] : []
      content {
        type   = "AWS::S3::Object"
        values = [for b in var.data_event_bucket_arns : "${b}/"]
      }
    }
  }
}

# Alarms: the host's status checks and hqd's own health.
resource "aws_cloudwatch_metric_alarm" "host_status" {
  alarm_name          = "${var.name}-host-status"
  namespace           = "AWS/EC2"
  metric_name         = "StatusCheckFailed"
  dimensions          = { InstanceId = var.instance_id }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  alarm_actions       = [aws_sns_topic.alerts.arn]
}

resource "aws_cloudwatch_metric_alarm" "host_cpu" {
  alarm_name          = "${var.name}-host-cpu"
  namespace           = "AWS/EC2"
  metric_name         = "CPUUtilization"
  dimensions          = { InstanceId = var.instance_id }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  threshold           = 90
  comparison_operator = "GreaterThanThreshold"
  alarm_actions       = [aws_sns_topic.alerts.arn]
}

# Disk use of the root and lake file systems, as the host's CloudWatch
# agent publishes it (modules/host, local.cloudwatch_agent): metric
# disk_used_percent in the hqd namespace, rolled up to exactly the
# dimensions InstanceId and path.
resource "aws_cloudwatch_metric_alarm" "disk" {
  for_each            = toset(var.disk_paths)
  alarm_name          = "${var.name}-disk-${each.value == "/" ? "root" : trim(replace(each.value, "/", "-"), "-")}"
  namespace           = "hqd"
  metric_name         = "disk_used_percent"
  dimensions          = { InstanceId = var.instance_id, path = each.value }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 2
  threshold           = var.disk_used_percent_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
}

# hqd's /readyz, published by the host as hqd.Ready (1 ready, 0 not).
resource "aws_cloudwatch_metric_alarm" "hqd_ready" {
  alarm_name          = "${var.name}-hqd-ready"
  namespace           = "hqd"
  metric_name         = "Ready"
  dimensions          = { InstanceId = var.instance_id }
  statistic           = "Minimum"
  period              = 60
  evaluation_periods  = 5
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
}
