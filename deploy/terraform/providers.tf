provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, {
      Application = "priceintel"
      Environment = var.environment
      ManagedBy   = "terraform"
    })
  }
}
