"""``lrbench functions``, ``lrbench values``, ``lrbench plot``."""
