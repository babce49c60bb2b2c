data "aws_caller_identity" "this" {}
data "aws_region" "this" {}

# The account's customer-managed key: SSM SecureStrings, the uploads
# bucket, log groups, CloudTrail and the alerts topic.
resource "aws_kms_key" "this" {
  description             = "${var.name}: the account CMK"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
  tags                    = var.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}-cmk"
  target_key_id = aws_kms_key.this.key_id
}

data "aws_iam_policy_document" "key" {
  # tfsec:ignore:aws-iam-no-policy-wildcards A key policy's resource is the key itself ("*" means this key).
  statement {
    sid       = "AccountAdmin" # justification: the account root administers this key (AWS's default key policy); "*" is this key
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.this.account_id}:root"]
    }
  }
  # One statement per service, each with the condition that service's own
  # documentation gives for a customer managed key (a condition a service
  # does not send makes every use of the key fail).
  # CloudWatch Logs (the log groups): the log group's ARN is the encryption
  # context of every call (Logs' "Encrypt log data in CloudWatch Logs using
  # AWS KMS"); aws:SourceAccount is not what it documents.
  statement {
    sid       = "Logs" # justification: "*" is this key; the encryption context names this account's log groups in this region
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${data.aws_region.this.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:aws:logs:${data.aws_region.this.region}:${data.aws_caller_identity.this.account_id}:log-group:*"]
    }
  }
  # CloudTrail (the trail's files): "Configure AWS KMS key policies for
  # CloudTrail" — GenerateDataKey* for this account's trails, named by the
  # encryption context, from the one trail (aws:SourceArn); DescribeKey too.
  statement {
    sid       = "CloudTrailEncrypt" # justification: "*" is this key; the trail's ARN and the encryption context scope it
    actions   = ["kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceArn"
      values   = [local.trail_arn]
    }
    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:aws:cloudtrail:arn"
      values   = ["arn:aws:cloudtrail:*:${data.aws_caller_identity.this.account_id}:trail/*"]
    }
  }
  statement {
    sid       = "CloudTrailDescribe" # justification: "*" is this key; only the trail's own describe
    actions   = ["kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceArn"
      values   = [local.trail_arn]
    }
  }
  # The alerts topic is encrypted with this key: whoever publishes to it
  # needs GenerateDataKey* and Decrypt on it (SNS's "Enable compatibility
  # between event sources from AWS services and encrypted topics"):
  # CloudWatch for the alarms, Budgets for the budget's notifications. SNS
  # names the topic in the encryption context of both calls.
  statement {
    sid       = "AlertPublishers" # justification: "*" is this key; only for this account's SNS topics in this region
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com", "budgets.amazonaws.com"]
    }
    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:aws:sns:topicArn"
      values   = ["arn:aws:sns:${data.aws_region.this.region}:${data.aws_caller_identity.this.account_id}:*"]
    }
  }
}

locals {
  # The guardrails module's trail ("<name>-trail", in this region).
  trail_arn = "arn:aws:cloudtrail:${data.aws_region.this.region}:${data.aws_caller_identity.this.account_id}:trail/${var.name}-trail"
}
