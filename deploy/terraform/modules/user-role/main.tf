# The role hqd assumes for each user on /api/auth/refresh. hqd narrows
# every session with the inline policy of SPEC §5.2 (users/{sub}/hq/*
# only); this role is the outer bound: the users/ tree of one bucket,
# trusted by the host's role alone, one hour at most.
data "aws_region" "this" {}

resource "aws_iam_role" "this" {
  name                 = "${var.name}-user"
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = 3600
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRole", "sts:SetSourceIdentity"]
    principals {
      type        = "AWS"
      identifiers = [var.host_role_arn]
    }
  }
}

resource "aws_iam_role_policy" "files" {
  name   = "users-files"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.files.json
}

data "aws_iam_policy_document" "files" {
  statement {
    sid     = "UsersObjects"
    actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    # tfsec:ignore:aws-iam-no-policy-wildcards justification: every user's prefix is under users/; each session is narrowed to users/{sub}/hq/* by hqd's session policy (SPEC §5.2)
    resources = ["${var.bucket_arn}/users/*"]
  }
  statement {
    sid       = "ListUsers"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["users/*"]
    }
  }
  # The bucket is SSE-KMS: S3 asks KMS for a data key on each PUT and to
  # decrypt it on each GET, with the caller's rights. Only through S3 in
  # the bucket's region, as hqd's session policy also says.
  statement {
    sid       = "BucketKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${data.aws_region.this.region}.amazonaws.com"]
    }
  }
}
