data "aws_caller_identity" "this" {}
data "aws_region" "this" {}

# Amazon Linux 2023 for arm64 (Graviton), the latest image.
data "aws_ssm_parameter" "al2023" {
  name = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
}

# The subnet's zone, where the instance and its lake volume live: the
# volume is made before the instance so that user-data can name it.
data "aws_subnet" "this" {
  id = var.subnet_id
}

locals {
  # s3://bucket/prefix/name.tar.gz: the instance role reads that prefix only.
  release        = regex("^s3://([^/]+)/(.+/)[^/]+$", var.hqd_release_s3_uri)
  release_prefix = "arn:aws:s3:::${local.release[0]}/${local.release[1]}*"

  # The CloudWatch agent's configuration (user-data writes it as JSON):
  # hqd's journal, bridged to a file (the agent reads files: see
  # user-data), into hqd's log group; disk use of / and the lake in the
  # hqd namespace (the one the instance role may publish to), rolled up
  # to exactly InstanceId and path: the dimensions guardrails' disk
  # alarms name.
  cloudwatch_agent = {
    agent = { metrics_collection_interval = 60, omit_hostname = true, run_as_user = "root" }
    metrics = {
      namespace              = "hqd"
      append_dimensions      = { InstanceId = "$${aws:InstanceId}" }
      aggregation_dimensions = [["InstanceId", "path"]]
      metrics_collected = {
        disk = { measurement = ["used_percent"], resources = ["/", "/srv/lake"], drop_device = true }
      }
    }
    logs = {
      logs_collected = {
        files = {
          collect_list = [{
            file_path       = "/var/log/hqd/journal.log"
            log_group_name  = var.log_group_name
            log_stream_name = "{instance_id}"
          }]
        }
      }
    }
  }
}

# The one instance: hqd terminates TLS itself on 443 (and 80 for HTTP-01).
resource "aws_instance" "this" {
  ami                     = data.aws_ssm_parameter.al2023.value
  instance_type           = var.instance_type
  subnet_id               = var.subnet_id
  vpc_security_group_ids  = [aws_security_group.this.id]
  iam_instance_profile    = aws_iam_instance_profile.this.name
  disable_api_termination = true
  monitoring              = true
  user_data = templatefile("${path.module}/user-data.sh.tftpl", {
    name             = var.name
    region           = data.aws_region.this.region
    release_s3_uri   = var.hqd_release_s3_uri
    release_sha256   = var.hqd_release_sha256
    lake_volume_id   = aws_ebs_volume.lake.id
    cloudwatch_agent = jsonencode(local.cloudwatch_agent)
  })
  user_data_replace_on_change = false

  # The AMI parameter moves to each new Amazon Linux release, and a new AMI
  # means a new instance: without this, an ordinary apply would destroy the
  # host and its root volume (the provider lifts termination protection to
  # do it). The host keeps its image until it is replaced on purpose
  # (-replace). User-data runs at first boot only, and the provider applies
  # a change to it by stopping and starting the instance, for nothing:
  # releases after the first are installed on the host
  # (hqd-install-release, see deploy/README.md).
  lifecycle {
    ignore_changes = [ami, user_data]
  }

  metadata_options {
    http_tokens                 = "required" # IMDSv2 only
    http_endpoint               = "enabled"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = 20
    encrypted   = true
    kms_key_id  = var.kms_key_arn
  }

  tags = merge(var.tags, { Name = "${var.name}-host" })
}

# The lake volume: toolchains, project builds and the result cache.
# It outlives the instance (a replaced host mounts it again: user-data
# formats it only when it has no file system) and is found by its id
# (/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol…), not by the
# order NVMe devices appear in.
resource "aws_ebs_volume" "lake" {
  availability_zone = data.aws_subnet.this.availability_zone
  size              = var.lake_volume_gb
  type              = "gp3"
  encrypted         = true
  kms_key_id        = var.kms_key_arn
  tags              = merge(var.tags, { Name = "${var.name}-lake" })
}

# When the host is replaced, the volume is detached from a stopped
# instance (not pulled from under a mounted file system).
resource "aws_volume_attachment" "lake" {
  device_name                    = "/dev/sdf"
  volume_id                      = aws_ebs_volume.lake.id
  instance_id                    = aws_instance.this.id
  stop_instance_before_detaching = true
}

resource "aws_eip" "this" {
  instance = aws_instance.this.id
  domain   = "vpc"
  tags     = var.tags
}

# 443 only (80 when HTTP-01 is wanted); no SSH: SSM Session Manager.
resource "aws_security_group" "this" {
  name        = "${var.name}-host"
  description = "hqd: HTTPS from anywhere, no SSH"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

# tfsec:ignore:aws-ec2-no-public-ingress-sgr A public API: browsers and the CLI reach hqd over HTTPS from anywhere.
resource "aws_vpc_security_group_ingress_rule" "https" {
  security_group_id = aws_security_group.this.id
  description       = "HTTPS to hqd"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

# tfsec:ignore:aws-ec2-no-public-ingress-sgr ACME HTTP-01 validation comes from the CA's servers anywhere; hqd only redirects here.
resource "aws_vpc_security_group_ingress_rule" "http" {
  count             = var.open_http ? 1 : 0
  security_group_id = aws_security_group.this.id
  description       = "HTTP for ACME HTTP-01 and redirects"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = "0.0.0.0/0"
}

# tfsec:ignore:aws-ec2-no-public-egress-sgr hqd calls AWS APIs, Cognito, the ACME CA and package mirrors over HTTPS; the default VPC has no NAT or endpoints.
resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.this.id
  description       = "HTTPS out: AWS APIs, ACME, packages"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_iam_instance_profile" "this" {
  name = "${var.name}-host"
  role = aws_iam_role.this.name
}

# The instance role: exactly what the daemon needs, nothing of IAM, EC2,
# Route 53 or CloudFront.
resource "aws_iam_role" "this" {
  name                 = "${var.name}-host"
  assume_role_policy   = data.aws_iam_policy_document.ec2.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

data "aws_iam_policy_document" "ec2" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.this.account_id]
    }
  }
}

resource "aws_iam_role_policy_attachment" "ssm" {
  role       = aws_iam_role.this.name
  policy_arn = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_role_policy" "daemon" {
  name   = "hqd"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.daemon.json
}

data "aws_iam_policy_document" "daemon" {
  statement {
    sid       = "Files"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${var.bucket_arn}/users/*"]
  }
  statement {
    sid       = "ListFiles"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arn]
  }
  statement {
    sid       = "UserSessions"
    actions   = ["sts:AssumeRole", "sts:SetSourceIdentity"]
    resources = ["arn:aws:iam::${data.aws_caller_identity.this.account_id}:role/${var.name}-user"]
  }
  statement {
    sid     = "Settings"
    actions = ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"]
    # GetParametersByPath is authorised on the path itself, Get(s) on each parameter.
    resources = [
      "arn:aws:ssm:${data.aws_region.this.region}:${data.aws_caller_identity.this.account_id}:parameter/${var.name}",
      "arn:aws:ssm:${data.aws_region.this.region}:${data.aws_caller_identity.this.account_id}:parameter/${var.name}/*",
    ]
  }
  statement {
    sid       = "Release"
    actions   = ["s3:GetObject"]
    resources = [local.release_prefix]
  }
  statement {
    sid       = "Key"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${var.log_group_arn}:*"]
  }
  statement {
    sid       = "Metrics" # justification: PutMetricData has no resource-level permissions; the namespace condition scopes it
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = ["hqd"]
    }
  }
}
