# hqd's settings as SSM parameters under /<name>/; the host's user-data
# writes them to /etc/hqd/hqd.env. SecureStrings under the CMK.
resource "aws_ssm_parameter" "setting" {
  for_each = var.settings
  name     = "/${var.name}/${each.key}"
  type     = "SecureString"
  key_id   = var.kms_key_arn
  value    = each.value
  tags     = var.tags
}
