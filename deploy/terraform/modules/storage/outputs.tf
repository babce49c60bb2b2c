output "bucket" {
  description = "HQD_BUCKET."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the uploads bucket."
  value       = aws_s3_bucket.this.arn
}
