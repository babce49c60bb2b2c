output "log_group_name" {
  description = "Name of hqd's log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "log_group_arn" {
  description = "ARN of hqd's log group."
  value       = aws_cloudwatch_log_group.this.arn
}
