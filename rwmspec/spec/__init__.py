"""The spec language: attrs model, TOML loading, structuring and semantic checks."""
