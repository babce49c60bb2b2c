output "path" {
  description = "The parameter path the host reads."
  value       = "/${var.name}/"
}
