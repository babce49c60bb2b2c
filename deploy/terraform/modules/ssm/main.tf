# hqd's settings as SSM parameters under /<name>/; the host's hqd.service
# writes them to /etc/hqd/hqd.env before every start (hqd ssm-settings).
# SecureStrings under the CMK. for_each iterates over the names only:
# Terraform refuses a sensitive value as for_each (the values stay
# sensitive; the names are not secret).
resource "aws_ssm_parameter" "setting" {
  for_each = nonsensitive(toset(keys(var.settings)))
  name     = "/${var.name}/${each.key}"
  type     = "SecureString"
  key_id   = var.kms_key_arn
  value    = var.settings[each.key]
  tags     = var.tags
}
