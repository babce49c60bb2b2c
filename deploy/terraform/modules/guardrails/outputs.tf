output "boundary_arn" {
  description = "The permission boundary for every role."
  value       = aws_iam_policy.boundary.arn
}

output "alerts_topic_arn" {
  description = "The alerts topic."
  value       = aws_sns_topic.alerts.arn
}
