# hqd's log group: journald lines shipped by the CloudWatch agent.
resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/${var.name}/hqd"
  retention_in_days = var.retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}
