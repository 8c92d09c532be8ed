"""lrbench train commands."""
