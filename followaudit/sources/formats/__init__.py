"""Format readers behind ``followaudit.sources.files`` (one module per family of layouts)."""
