output "fqdns" {
  description = "The records made."
  value       = [for r in aws_route53_record.api : r.fqdn]
}
