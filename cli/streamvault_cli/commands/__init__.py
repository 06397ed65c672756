"""The CLI's commands, one module per concern (accounts and tokens, uploads, videos, traces)."""
