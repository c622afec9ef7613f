"""dialects stage."""
