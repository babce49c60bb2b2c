output "distribution_id" {
  description = "For invalidations on deploy."
  value       = aws_cloudfront_distribution.site.id
}

output "bucket" {
  description = "Where the site's files are synced."
  value       = aws_s3_bucket.site.id
}
