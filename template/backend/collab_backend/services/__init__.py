"""What the API does, apart from HTTP: each function checks, then hands the record a builder."""
