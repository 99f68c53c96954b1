"""The media store: uploaded bytes, content-addressed, on local disk or in an S3 bucket."""
