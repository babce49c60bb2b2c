# The API hostnames point straight at the host's Elastic IP: SSE streams
# do not pass cleanly through CloudFront (the seed's Phase 5).
resource "aws_route53_record" "api" {
  for_each = toset(var.hostnames)
  zone_id  = var.zone_id
  name     = each.value
  type     = "A"
  ttl      = 300
  records  = [var.ip]
}
