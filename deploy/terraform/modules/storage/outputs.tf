output "bucket_name" {
  description = "Name of the bucket."
  value       = aws_s3_bucket.this.id
}

output "read_write_policy_json" {
  description = "IAM policy for the application: list the bucket, read and add objects under objects/, index/ and logs/."
  value       = data.aws_iam_policy_document.read_write.json
}
