output "key_arn" {
  description = "ARN of the account CMK."
  value       = aws_kms_key.this.arn
}

output "alias" {
  description = "Alias of the account CMK."
  value       = aws_kms_alias.this.name
}
