"""GraphQL types, one file per domain type."""
