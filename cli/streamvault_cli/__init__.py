"""streamvault: the StreamVault API from the command line (cli/README.md)."""
__version__ = "0.1.0"
