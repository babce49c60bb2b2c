output "instance_id" {
  description = "The host."
  value       = aws_instance.this.id
}

output "public_ip" {
  description = "The Elastic IP the API hostnames point at."
  value       = aws_eip.this.public_ip
}

output "role_arn" {
  description = "The instance role (trusted by the user role)."
  value       = aws_iam_role.this.arn
}
