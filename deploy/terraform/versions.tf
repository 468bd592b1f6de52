terraform {
  # 1.11: write-only attributes (secret values that never reach the state)
  required_version = ">= 1.11.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # State: configure a remote backend (S3 with locking) per environment, e.g.
  #   terraform init -backend-config=backend.hcl
  # with backend "s3" {} uncommented here; it is left out so that `terraform validate` runs offline.
}
