output "role_arn" {
  description = "HQD_STS_ROLE_ARN."
  value       = aws_iam_role.this.arn
}
