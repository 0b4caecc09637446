"""Term functions: pure torch functions of a named-state view, shared by real backends and imagination."""
