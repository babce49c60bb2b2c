output "role_arn" {
  description = "The role the workflow assumes."
  value       = aws_iam_role.deploy.arn
}
