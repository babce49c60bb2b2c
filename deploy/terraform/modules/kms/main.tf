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
  statement {
    sid       = "Services" # justification: "*" is this key, used by CloudWatch Logs, CloudTrail and SNS of this account
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${data.aws_region.this.region}.amazonaws.com", "cloudtrail.amazonaws.com", "sns.amazonaws.com", "cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.this.account_id]
    }
  }
}
