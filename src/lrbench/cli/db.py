"""lrbench db commands."""
