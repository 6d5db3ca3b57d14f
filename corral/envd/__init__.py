"""The in-sandbox daemon: an envd-compatible Connect/HTTP server (process, filesystem, files)."""
